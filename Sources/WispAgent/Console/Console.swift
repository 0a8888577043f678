import WispCore

/// What the console sees of the device besides its telemetry: wisp's own log lines
/// (`LogUpload`), the link's health (`Health`) and the board's facts and tags
/// (`DeviceInfo`), platform devices only. The device hands it the link's events and steps
/// it with the other features.
struct Console {
    var logs: LogUpload?
    var health: Health?
    var deviceInfo: DeviceInfo?
    let clock: Clock
    let log: Log

    init(_ device: DeviceConfig, board: Board, platform: Bool, clock: Clock, log: Log) {
        self.clock = clock
        self.log = log
        logs = platform ? log.sink.map { LogUpload(sink: $0, log: log) } : nil
        health = platform ? Health(intervalSeconds: device.healthInterval, now: clock.monotonic(), log: log) : nil
        deviceInfo = platform ? DeviceInfo(device, board: board, log: log) : nil
    }

    var deadline: UInt64 { min(logs?.deadline ?? .max, health?.deadline ?? .max) }

    mutating func note<T>(_ event: Driver<T>.Event) {
        if case .session(.offline) = event { logs?.linkUp = false }
        health?.note(event, now: clock.monotonic())
    }

    /// The platform's reply to a post, an event or a log post (logged when refused; a
    /// property post's reply times the uplink), or to a device-info update (its feature's):
    /// the reply's code.
    mutating func reply(_ kind: AlinkTopics.Inbound, _ inbound: ByteBuffer, _ range: Range<Int>, _ payload: UnsafeRawBufferPointer,
                        newest: (seq: UInt64, time: UInt64)?, wallNow: UInt64, out: inout Outbox) -> Int? {
        if kind == .deviceInfoReply {
            deviceInfo?.handle(payload, out: &out)
            return PropertyPost.replyCode(inbound, range)
        }
        if kind == .postReply { health?.postReply(inbound, range, newest: newest, wallNow: wallNow, now: clock.monotonic()) }
        return LinkLog.reply(to: kind, inbound, range, log: log)
    }

    mutating func online(out: inout Outbox) {
        logs?.online(out: &out)
        deviceInfo?.online(out: &out)
    }

    mutating func advance(now: UInt64, telemetry: borrowing Telemetry, clockSync: ClockSync, session: borrowing Session, out: inout Outbox) {
        let wallNow = clockSync.wallClock(monotonic: now)
        logs?.advance(now: now, wallNow: wallNow, online: session.isOnline, out: &out)
        guard health?.advance(now: now, session: session) == true, let health else { return }
        let ring = telemetry.backlog.ring
        // The platform's clock less the board's (0 until the platform has answered).
        let offset = clockSync.offset != nil ? Int64(truncatingIfNeeded: wallNow &- clock.realtime()) : 0
        var fields = health.linkFields(now: now)
        fields.append(.number("backlog", Int64(ring.count)))
        fields.append(.number("backlog_oldest_s", ring.count > 0 && wallNow >= ring.time(0) ? Int64((wallNow - ring.time(0)) / 1000) : 0))
        fields.append(.number("dropped", Int64(ring.dropped)))
        fields.append(.number("private_dirty_kb", Console.privateDirtyKiB() ?? -1))
        fields.append(.number("clock_offset_ms", offset))
        fields.append(.number("uptime_s", Int64(now / 1000)))
        out.event("health", fields, time: wallNow)
    }

    /// `Private_Dirty` of this process in KiB (/proc/self/smaps_rollup), or nil.
    static func privateDirtyKiB() -> Int64? {
        guard case .success(let bytes) = System.readFile("/proc/self/smaps_rollup", limit: 4096) else { return nil }
        let key = Array("Private_Dirty:".utf8)
        var i = 0
        while i + key.count <= bytes.count {
            if bytes[i..<(i + key.count)].elementsEqual(key) {
                var p = i + key.count
                while p < bytes.count && bytes[p] == 0x20 { p += 1 }
                return DecimalScan.digits(bytes, from: p, maxDigits: 12)?.value
            }
            i += 1
        }
        return nil
    }
}
