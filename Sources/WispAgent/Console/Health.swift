import WispCore

/// The link's health, as Link SDK's diagnostics measure it and more: how long connecting
/// took, the keep-alive's round trip, how long the platform took to answer a post,
/// reconnects and the last disconnect's reason. A `health` event every `health_interval`
/// (platform devices; the fields in README), and a log line (module `DiagMqttConnection`,
/// `DiagMqttHeartbeat`, `DiagAlinkUplink`) when one of the three times passes Link SDK's
/// thresholds, at most one per 30 s each.
struct Health {
    /// Milliseconds between events; nil: none.
    let interval: UInt64?
    var nextEvent: UInt64
    var connectingSince: UInt64?
    var connectTime: UInt64?
    var roundTrip: UInt64?
    var pingRounds: UInt32 = 0
    var replyLatency: UInt64?
    var onlineSince: UInt64?
    var connects = 0
    var lastDisconnect = ""
    /// When each diagnostic last logged (connection, heartbeat, uplink).
    var lastDiag: (UInt64?, UInt64?, UInt64?) = (nil, nil, nil)
    let log: Log

    /// Link SDK's thresholds (warning, error), ms.
    static let connectLimits: (UInt64, UInt64) = (200, 500)
    static let heartbeatLimits: (UInt64, UInt64) = (800, 1500)
    static let uplinkLimits: (UInt64, UInt64) = (600, 1000)
    static let diagSpacing: UInt64 = 30_000

    init(intervalSeconds: Int, now: UInt64, log: Log) {
        interval = intervalSeconds > 0 ? UInt64(intervalSeconds) * 1000 : nil
        nextEvent = now + (interval ?? 0)
        self.log = log
    }

    var deadline: UInt64? { interval == nil ? nil : nextEvent }

    /// What the link did: connect time, reconnects, the last disconnect's reason.
    mutating func note<T>(_ event: Driver<T>.Event, now: UInt64) {
        switch event {
        case .connecting: connectingSince = now
        case .session(.online):
            connects += 1
            onlineSince = now
            if let start = connectingSince, now >= start {
                connectTime = now - start
                diagnose(0, now - start, Health.connectLimits, "MQTT connect took", now: now)
            }
            connectingSince = nil
        case .session(.offline(let reason, _)):
            onlineSince = nil
            lastDisconnect = String(decoding: reason.message.utf8.prefix(96), as: UTF8.self)
        default: break
        }
    }

    /// A post's reply (`…/post_reply`): its latency when it answers the newest sample.
    mutating func postReply(_ inbound: ByteBuffer, _ payload: Range<Int>, newest: (seq: UInt64, time: UInt64)?, wallNow: UInt64, now: UInt64) {
        guard let newest, let id = PropertyPost.replyId(inbound, payload), id == newest.seq, wallNow >= newest.time else { return }
        replyLatency = wallNow - newest.time
        diagnose(2, wallNow - newest.time, Health.uplinkLimits, "property post answered after", now: now)
    }

    /// Each step: a new keep-alive round trip noted; true when the event is due.
    mutating func advance(now: UInt64, session: borrowing Session) -> Bool {
        if session.pingRounds != pingRounds, let rtt = session.pingRoundTrip {
            pingRounds = session.pingRounds
            roundTrip = rtt
            diagnose(1, rtt, Health.heartbeatLimits, "keep-alive round trip", now: now)
        }
        guard let interval, now >= nextEvent else { return false }
        nextEvent = now + interval
        return true
    }

    /// The link's own fields of the event (the device adds the backlog's, memory, clock).
    func linkFields(now: UInt64) -> [EventPost.Field] {
        [.number("connect_ms", connectTime.map { Int64($0) } ?? -1),
         .number("rtt_ms", roundTrip.map { Int64($0) } ?? -1),
         .number("reply_ms", replyLatency.map { Int64($0) } ?? -1),
         .number("reconnects", Int64(max(0, connects - 1))),
         .text("last_disconnect", lastDisconnect),
         .number("online_s", onlineSince.map { Int64((now - $0) / 1000) } ?? -1)]
    }

    /// A log line for the console when `value` passes the limits (at most one per 30 s per kind).
    mutating func diagnose(_ kind: Int, _ value: UInt64, _ limits: (UInt64, UInt64), _ what: String, now: UInt64?) {
        guard value > limits.0 else { return }
        let at = now ?? 0
        let last = kind == 0 ? lastDiag.0 : kind == 1 ? lastDiag.1 : lastDiag.2
        if let last, now != nil, at < last + Health.diagSpacing { return }
        if now != nil {
            if kind == 0 { lastDiag.0 = at } else if kind == 1 { lastDiag.1 = at } else { lastDiag.2 = at }
        }
        let level: Severity = value > limits.1 ? .error : .warning
        log.write(level, "diagnostics: " + what + " \(value) ms (over \(value > limits.1 ? limits.1 : limits.0) ms)", module: UInt8(kind + 1))
    }
}
