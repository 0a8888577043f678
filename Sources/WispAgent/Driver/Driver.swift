import CWispPlatform
import WispCore

/// The one poll loop: drives a `Session` over a `Transport`, opening transports without
/// blocking, writing what the session queues, reading what arrives, and waking for the
/// session's timers, the caller's deadline, and signals — all in one poll(2).
///
/// The caller (the device, `wisp check --online`, the benchmark) asks for the next thing
/// that concerns it with `next(until:)` and reacts; the driver knows nothing of telemetry.
public struct Driver<T: Transport> {
    public enum Event {
        /// A transport is being opened (log it).
        case connecting
        /// The transport is open; the WebSocket upgrade or CONNECT is on its way.
        case opened
        /// Opening failed or timed out; the session backs off (an `.offline` follows).
        case openFailed(String)
        case session(SessionEvent)
        /// The transport was closed, for `reason`.
        case closed(DisconnectReason)
        /// The signal descriptor is readable.
        case signal
        /// A descriptor of `extra` is ready as it asked.
        case extra
        /// The caller's deadline passed.
        case deadline
        /// `Session.stop` finished.
        case stopped
        case pollFailed(SystemError)
    }

    public var session: Session
    /// poll(2)'s descriptors: the caller adds its own (downloads) before each `next`.
    public var extra = PollSlots()
    var ready = [Int32](repeating: 0, count: PollSlots.first + PollSlots.capacity)
    public let clock: Clock
    var transport: T?
    var opening = false
    var waitEvents: Int32 = 0
    var inputClosed = false
    let makeTransport: () -> T
    let makeConnect: () -> MQTTEncoder.Connect
    let makeKey: () -> WebSocketKey
    let signals: Int32

    /// `transport` makes a fresh transport for each attempt; `connect` the CONNECT for it
    /// (the platform's signature may carry the time); `signals` is polled too (-1: none).
    public init(session: Session, signals: Int32, clock: Clock = .system, transport: @escaping () -> T,
                connect: @escaping () -> MQTTEncoder.Connect, webSocketKey: @escaping () -> WebSocketKey) {
        self.session = session
        self.clock = clock
        self.signals = signals
        makeTransport = transport
        makeConnect = connect
        makeKey = webSocketKey
    }

    /// Works until something for the caller happens, or monotonic `deadline` passes.
    public mutating func next(until deadline: UInt64) -> Event {
        while true {
            let now = clock.monotonic()
            switch session.poll(now: now) {
            case .openTransport:
                transport = makeTransport()
                opening = true
                inputClosed = false
                return .connecting
            case .closeTransport(let reason):
                _ = writeOutput(now: now)  // a DISCONNECT or close frame, if the socket takes it
                drop()
                return .closed(reason)
            case .event(let e):
                return .session(e)
            case .stopped:
                drop()
                return .stopped
            case .wait(let until):
                if opening {
                    if let event = advanceOpen(now: now) { return event }
                } else if transport != nil {
                    if writeOutput(now: now) > 0 { continue }
                    // Read before every poll: TLS may hold decrypted bytes poll() cannot see.
                    if readInput(now: now) { continue }
                }
                if now >= deadline { return .deadline }
                var wake = min(until, deadline)
                if opening, let t = transport { wake = min(wake, t.openDeadline) }
                let timeout = wake <= now ? 0 : Int32(min(wake - now, 3_600_000))
                let fd = transport?.descriptor ?? -1
                var events: Int32 = 0
                if fd >= 0 {
                    events = opening ? waitEvents
                        : ((session.canReceive && !inputClosed) ? 1 : 0) | (session.output.isEmpty ? 0 : 2)
                }
                extra.fds[0] = fd
                extra.events[0] = events
                extra.fds[1] = signals
                extra.events[1] = 1
                let n = Int32(extra.count)
                let r = extra.fds.withUnsafeBufferPointer { f in
                    extra.events.withUnsafeBufferPointer { e in
                        ready.withUnsafeMutableBufferPointer { w in wisp_poll(f.baseAddress, e.baseAddress, w.baseAddress, n, timeout) }
                    }
                }
                if r < 0 { return .pollFailed(SystemError(errno: -r)) }
                if r == 0 { continue }
                if ready[1] != 0 { return .signal }
                for i in PollSlots.first..<extra.count where ready[i] != 0 { return .extra }
                let mask = ready[0]
                if !opening && mask & 5 != 0 { _ = readInput(now: clock.monotonic()) }
            }
        }
    }

    /// One open step; an event when the caller should hear of it.
    mutating func advanceOpen(now: UInt64) -> Event? {
        guard let t = transport else { return nil }
        if now >= t.openDeadline { return openFailed(t.openTimedOut(), now: now) }
        switch t.open(now: now) {
        case .waitReadable:
            waitEvents = 1
            return nil
        case .waitWritable:
            waitEvents = 2
            return nil
        case .failed(let message):
            return openFailed(message, now: now)
        case .open:
            opening = false
            session.transportOpened(now: clock.monotonic(), connect: makeConnect(), webSocketKey: makeKey())
            return .opened
        }
    }

    mutating func openFailed(_ message: String, now: UInt64) -> Event {
        drop()
        session.transportFailed(now: clock.monotonic(), .connectFailed)
        return .openFailed(message)
    }

    mutating func drop() {
        transport = nil
        opening = false
    }

    /// Writes what the session has queued, as far as the transport takes it.
    mutating func writeOutput(now: UInt64) -> Int {
        guard let t = transport, !opening, !session.output.isEmpty else { return 0 }
        let n = session.output.withBytes { t.send($0) }
        if n < 0 {
            drop()
            session.transportFailed(now: now, .transportError(Int32(-n)))
            return 0
        }
        session.didWrite(Int(n), now: now)
        return Int(n)
    }

    /// Reads what is there straight into the session's input. True when anything
    /// happened (bytes, or the end of the stream).
    mutating func readInput(now: UInt64) -> Bool {
        guard let t = transport, !opening, !inputClosed else { return false }
        var total = 0
        while session.canReceive {
            let n = session.receive(now: now) { Int(t.receive($0)) }
            if n > 0 {
                total += n
                continue
            }
            if n == 0 { break }
            inputClosed = true
            session.receiveEOF(now: now, n == Int(WISP_IO_CLOSED) ? .transportClosed : .transportError(Int32(-n)))
            return true
        }
        return total > 0
    }
}
