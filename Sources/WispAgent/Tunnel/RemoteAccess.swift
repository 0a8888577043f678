import CWispPlatform
import WispCore

/// Remote access: the device side of the platform's secure tunnel. The console's user gets
/// a terminal on this board: the platform tells of a tunnel (a notify, or the reply to the
/// request wisp sends at every connect), wisp connects out to it (`TunnelLink`), and each
/// session the console opens becomes a connection to a loopback service of this board
/// (`TunnelSession`): `_SSH` is 127.0.0.1:22, other service types only those the board
/// settings declare. sshd still authenticates the user.
///
/// Opt-in: only when root's board settings say `remote_access = true`, and never over a
/// link anyone on the path could write to (ws://, tls_insecure): `isAllowed`. Everything
/// runs in the device's one poll loop, bounded per turn, so a tunnel never delays a post;
/// at most `maxSessions` sessions, with buffers made at start-up (about 60 KiB in all).
final class RemoteAccess<T: Transport> {
    static var maxSessions: Int { 4 }
    static var maxBackoff: UInt64 { 64_000 }
    /// Frames (or local reads) handled per loop turn before the loop goes round again.
    static var turnsPerLoop: Int { 16 }
    static var stallLimit: UInt64 { 10_000 }
    static var maxBadFrames: Int { 8 }
    static var askAgain: UInt64 { 30_000 }

    let board: BoardSettings
    let log: Log
    let connect: (Endpoint) -> T
    let loopback: (UInt16) -> T
    let link = TunnelLink<T>()
    let sessions: [TunnelSession<T>]
    /// The tunnel the platform told of, and where it is; nil when there is none.
    var tunnel: TunnelEndpoint?
    var target: Endpoint?
    /// The endpoint refused the token: no reconnect until the platform gives a new one.
    var tokenExpired = false
    var askDue = false
    var retryAt: UInt64 = 0
    var backoff: UInt64 = 0
    /// A frame whose session cannot take it yet: the link is not read until it can (at
    /// most `stallLimit` ms: then that session is let go).
    var pending: TunnelFrame?
    var pendingSince: UInt64 = 0
    /// When the connection was upgraded (the pause restarts only after one that lasted).
    var openedAt: UInt64?
    /// Messages on this connection that were not frames; past `maxBadFrames` it is dropped.
    var badFrames = 0
    /// The session served first next turn.
    var nextServed = 0
    /// Where a draining session's service's bytes are read and let go (made once).
    var scratch = [UInt8](repeating: 0, count: 512)
    /// Whether the MQTT link was up at the last turn.
    var linkOnline = false
    /// When the tunnel was last asked for after an expired token.
    var askedAt: UInt64 = 0
    /// More may be waiting (the turn's bound was reached): look again at once.
    var busy = false

    /// Remote access for this key file and board, or nil (with the reason logged when the
    /// board settings asked for it and the link does not allow it).
    static func make(_ loaded: LoadedConfig, platform: Bool, log: Log, connect: @escaping (Endpoint) -> T,
                     loopback: ((UInt16) -> T)?) -> RemoteAccess? {
        guard loaded.board.settings.remoteAccess, platform, let loopback else { return nil }
        if let why = TunnelPolicy.refusal(loaded.device) {
            log.error("remote_access = true in the board settings is refused: " + why)
            return nil
        }
        return RemoteAccess(board: loaded.board.settings, log: log, connect: connect, loopback: loopback)
    }

    init(board: BoardSettings, log: Log, connect: @escaping (Endpoint) -> T, loopback: @escaping (UInt16) -> T) {
        self.board = board
        self.log = log
        self.connect = connect
        self.loopback = loopback
        var made: [TunnelSession<T>] = []
        for _ in 0..<RemoteAccess.maxSessions { made.append(TunnelSession<T>()) }
        sessions = made
    }

    // MARK: the platform's side (MQTT)

    /// At every CONNACK: asks for the tunnel (one may have been opened while offline).
    func online(out: inout Outbox) {
        askDue = false
        guard let topic = out.topics.tunnelRequest else { return }
        TunnelRequest.write(id: out.nextId(), into: &out.json)
        out.send(topic, qos: .atMostOnce)
    }

    /// A notify, or the reply to the request.
    func handle(_ payload: UnsafeRawBufferPointer, reply: Bool, now: UInt64) {
        switch TunnelNotify.parse(payload) {
        case .invalid(let why):
            guard reply else { return log.warning("remote access: the platform's tunnel notify is refused: " + why) }
            log.debug("remote access: no tunnel to open (" + why + ")")
            if let old = tunnel, isClosed {  // closed while this board was offline
                log.info("remote access: the platform has no tunnel open; forgetting tunnel " + old.tunnelId)
                forget()
            }
        case .close(let id, let reason):
            guard let current = tunnel, current.tunnelId.equals(id) else {
                log.debug("remote access: tunnel " + id + " closed; it was not this board's open tunnel")
                return
            }
            log.info("remote access: the console closed tunnel " + id + (reason.isEmpty ? "" : ": " + reason))
            endAll(code: 0, "the console closed the tunnel", tell: false)  // the platform ended them already
            if isUpgraded, let target {
                link.close(WebSocketCloseCode.normal)
                _ = link.pump(now: now, target: target, token: current.token)
            }
            forget()
        case .open(let next):
            // A bracketed IPv6 literal is the notify's way of writing it; the endpoint wants it bare.
            var host = next.host
            if host.startsWith("[") { host = String(decoding: host.utf8.dropFirst().dropLast(), as: UTF8.self) }
            guard board.tunnelHostAllowed(host) else {
                return log.warning("remote access: a tunnel at " + host + " is refused: not a host the board settings' tunnel_hosts allow"
                                   + " (if it is the platform's, root adds it: tunnel_hosts = " + host + " in /etc/wisp/board.conf)")
            }
            let same = tunnel.map { $0.tunnelId.equals(next.tunnelId) } ?? false
            let wasExpired = tokenExpired
            tunnel = next
            target = Endpoint(scheme: .wss, host: host, port: next.port, path: next.path)
            tokenExpired = false
            if same, !isClosed {
                log.debug("remote access: new details for the open tunnel " + next.tunnelId + "; used at its next connect")
                return
            }
            if !same, !isClosed {
                endAll(code: 0, "the console opened another tunnel")
                dropLink()
            }
            log.info("remote access: " + next.description + (wasExpired ? " (a new token)" : ""))
            // Another tunnel starts afresh; the same one (a repeated notify, a reply at every
            // CONNACK, a new token) keeps the pause it has, so repeats cannot make a storm.
            if !same {
                backoff = 0
                retryAt = now
            }
        }
    }

    /// No tunnel any more: nothing to connect to.
    func forget() {
        dropLink()
        tunnel = nil
        target = nil
        tokenExpired = false
        askDue = false
        backoff = 0
    }

    /// Drops the connection and the frame that waited on it.
    func dropLink() {
        link.drop()
        pending = nil
    }

    var isClosed: Bool { if case .closed = link.phase { true } else { false } }

    /// The upgrade request has gone out: a close frame may follow it.
    var isUpgraded: Bool {
        switch link.phase {
        case .upgrading, .open: true
        case .closed, .opening: false
        }
    }

    // MARK: the loop

    /// Connects, reads and writes what is ready, within this turn's bound.
    func advance(now: UInt64, online: Bool, out: inout Outbox) {
        busy = false
        linkOnline = online
        work(now: now)
        // An expired token: ask, no sooner than the pause says (offline, the next CONNACK
        // asks); a request whose reply was lost (QoS 0) is asked again after 30 s.
        if tokenExpired, !askDue, now >= askedAt + RemoteAccess.askAgain { askDue = true }
        if askDue, online, now >= retryAt {
            self.online(out: &out)
            askedAt = now
        }
    }

    func work(now: UInt64) {
        guard let tunnel, let target else { return }
        if isClosed {
            guard !tokenExpired, now >= retryAt else { return }
            log.info("remote access: connecting to wss://" + target.hostHeader + target.path)
            link.start(connect(target), now: now)
            badFrames = 0
            openedAt = nil
        }
        if let why = link.pump(now: now, target: target, token: tunnel.token) { return fail(why, now: now, expired: false) }
        var turns = 0
        reading: while turns < RemoteAccess.turnsPerLoop {
            turns += 1
            if let frame = pending {
                guard deliver(frame, now: now) else { break reading }
                pending = nil
            }
            switch link.next(now: now) {
            case .none:
                break reading
            case .opened:
                log.info("remote access: tunnel " + tunnel.tunnelId + " open; sessions go to 127.0.0.1")
                openedAt = now
            case .frame(let frame):
                badFrames = 0  // consecutive ones count: an odd frame now and then is skipped
                if !deliver(frame, now: now) {
                    pending = frame
                    pendingSince = now
                }
            case .badFrame(let why):
                badFrames += 1
                if badFrames > RemoteAccess.maxBadFrames { return fail("the tunnel's endpoint sent \(badFrames) messages that are not frames (the last: " + why + ")", now: now, expired: false) }
                log.warning("remote access: " + why + " (ignored)")
            case .ended(let why, let expired):
                return fail(why, now: now, expired: expired)
            }
        }
        if turns >= RemoteAccess.turnsPerLoop || link.capped { busy = true }
        guard case .open = link.phase else { return }
        // Round robin: each turn another session goes first, so one bulk transfer cannot
        // take every turn's room in the output.
        var last = nextServed - 1
        for i in 0..<sessions.count {
            let index = (i + nextServed) % sessions.count
            if serve(sessions[index], now: now) { last = index }
        }
        nextServed = (last + 1 + sessions.count) % sessions.count  // after the last that sent
        if let frame = pending {
            // It may fit now that the sessions wrote: nothing else would wake the loop for it
            // (the link is not polled for reading meanwhile). A service that has not read for
            // 10 s is let go, so one stuck service does not stall every session.
            if deliver(frame, now: now) {
                pending = nil
                busy = true
            } else if frame.type == .dataTransport {
                // Any service taking bytes restarts the 10 s (`serve`).
                let sid = link.reader.bytes(frame.sessionId)
                if let s = sessions.first(where: { $0.named(sid) }), now >= pendingSince + RemoteAccess.stallLimit {
                    pending = nil
                    release(s, code: 3, "the service did not read for 10 s")
                    busy = true
                }
            }
        }
        if let why = link.pump(now: now, target: target, token: tunnel.token) { fail(why, now: now, expired: false) }
    }

    /// The connection failed: its sessions end; an expired token waits for a new one
    /// (asked for after the pause), anything else is retried after the pause. The pause
    /// doubles up to 64 s, and starts again at 1 s only after a connection that lasted 60 s.
    func fail(_ why: String, now: UInt64, expired: Bool) {
        endAll(code: 1, "the tunnel's connection ended")
        if isUpgraded, let tunnel, let target { _ = link.pump(now: now, target: target, token: tunnel.token) }  // a close frame, if one waits
        dropLink()
        if let openedAt, now >= openedAt + 60_000 { backoff = 0 }
        openedAt = nil
        backoff = min(max(backoff * 2, 1000), RemoteAccess.maxBackoff)
        retryAt = now + backoff
        if expired {
            tokenExpired = true
            askDue = true
            log.info("remote access: " + why + "; asking the platform for a new token in \(backoff / 1000) s")
        } else {
            log.warning("remote access: " + why + "; reconnecting in \(backoff / 1000) s")
        }
    }

    /// Puts the link's and the sessions' descriptors into the driver's poll: only those
    /// waited on for something (a socket left out is not read, and its hang-up would
    /// otherwise wake the loop for nothing, again and again).
    func register(into slots: inout PollSlots) {
        let linkEvents = link.events(reading: pending == nil)
        if linkEvents != 0 { slots.add(link.descriptor, events: linkEvents) }
        let room: Bool
        if case .open = link.phase { room = link.hasRoom } else { room = false }
        let replyRoom = link.hasRoomForReply
        for s in sessions where !s.isFree {
            // A connect is looked at only when its answer can be written (else it would wake
            // the loop, writable, with nothing to do).
            let events = s.events(tunnelHasRoom: room, connectWants: replyRoom ? s.wants : 0)
            if events != 0 { slots.add(s.local?.descriptor ?? -1, events: events) }
        }
    }

    /// The nearest time something must be looked at though nothing is ready.
    var deadline: UInt64 {
        if busy { return 0 }
        guard tunnel != nil else { return UInt64.max }
        // An expired token waits for the platform: a deadline only for asking, and only
        // while the MQTT link is up to ask on (offline, the next CONNACK asks).
        var d = isClosed ? (tokenExpired ? (!linkOnline ? UInt64.max : askDue ? retryAt : askedAt + RemoteAccess.askAgain) : retryAt) : link.deadline
        if let frame = pending, frame.type == .dataTransport { d = min(d, pendingSince + RemoteAccess.stallLimit) }
        for s in sessions {
            if case .connecting(_, let until) = s.phase { d = min(d, until, s.local?.openDeadline ?? UInt64.max) }
            if case .draining(let until) = s.phase { d = min(d, until) }
        }
        return d
    }
}

/// Whether a key file and board take tunnels: what `RemoteAccess.make` and the
/// subscriptions (`Agent.sessionConfig`) both ask.
enum TunnelPolicy {
    static func isAllowed(_ loaded: LoadedConfig, platform: Bool) -> Bool {
        loaded.board.settings.remoteAccess && platform && refusal(loaded.device) == nil
    }

    /// Why the link cannot carry remote access: anyone on the path of a ws:// link, or of
    /// a TLS link whose certificate is not checked, could open a tunnel to sshd.
    static func refusal(_ device: DeviceConfig) -> String? {
        if device.endpoint.scheme != .wss { return "the link is not wss:// (anyone on the path could open the tunnel)" }
        if device.tlsInsecure { return "tls_insecure = true (the platform's certificate is not checked: anyone on the path could open the tunnel)" }
        return nil
    }
}
