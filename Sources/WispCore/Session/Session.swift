/// The MQTT session over WebSocket (or bare TCP), as a sans-IO state machine.
///
/// Bytes and `now` (monotonic milliseconds) go in; actions come out of `poll`. The loop:
/// 1. calls `poll(now:)` until it returns `.wait(until:)` (or `.stopped`),
///    performing `.openTransport`, `.closeTransport` and handling `.event`s;
/// 2. writes `output` when it is not empty and reports it with `didWrite`;
/// 3. sleeps in poll(2) until the deadline, readable or writable, and feeds what it
///    reads with `receive` — or `receiveEOF` when the stream ended; what was read before
///    the end is parsed first (a broker that refuses credentials sends CONNACK and closes
///    in the same breath).
/// Keep-alive, timeouts and backoff are judged here, so they are tested with a
/// simulated clock in microseconds.
///
/// This file holds the state, the loop's inputs, the step function and its timers; the
/// rest is in extensions beside it: SessionHandshake.swift (CONNECT, CONNACK, the
/// SUBSCRIBEs), SessionInbound.swift (input through the framing to MQTT, each packet
/// dispatched), SessionOutbound.swift (publishing, packet ids, framing into `output`).
public struct Session {
    public enum State: Equatable, Sendable {
        case waiting(until: UInt64)
        case opening
        case upgrading(deadline: UInt64)
        case awaitingConnack(deadline: UInt64)
        case online
        case closing(deadline: UInt64)
        case stopped
    }

    public internal(set) var state: State
    public let config: SessionConfig
    /// Bytes read from the transport and not yet parsed (the session's own: the loop
    /// reads into it through `receive`).
    let input: InputBuffer
    /// The stream ended (or failed) after the bytes in `input`: reported once they are parsed.
    var pendingEOF: DisconnectReason?
    /// Bytes to write to the transport.
    public internal(set) var output: ByteBuffer
    var inputPosition = 0
    var pendingData: Range<Int>?      // a WebSocket data range not yet fed to MQTT

    var connectPacket: MQTTEncoder.Connect?
    /// The layer below: WebSocket (upgrade, frames, pings, close, masks) or none.
    var framing: Framing
    var mqtt: MQTTDecoder
    var scratch: ByteBuffer
    var inflight: InflightWindow
    var events = EventQueue()
    /// Backoff jitter: needs spread, not secrecy; seeded from the CSPRNG pool.
    var random: SplitMix64
    public private(set) var backoff: Backoff

    var lastReceived: UInt64 = 0
    var lastSent: UInt64 = 0
    var pingSentAt: UInt64?
    /// The last keep-alive's round trip (PINGREQ to PINGRESP, ms), and how many were measured.
    public internal(set) var pingRoundTrip: UInt64?
    public internal(set) var pingRounds: UInt32 = 0
    var onlineSince: UInt64 = 0
    var stableReported = false
    var transportOpen = false
    var nextPacketId: UInt16 = 1
    /// This connection's SUBSCRIBE packet ids, one per chunk of `filtersPerSubscribe`
    /// filters (chunk k holds subscriptions k·8 ..< k·8 + 8); 0 once its SUBACK came.
    var subscribeIds: [UInt16]
    /// SUBACKs still awaited, and the refusals their predecessors reported (bit i:
    /// subscription i); `.subscribed` is said once, when the last one arrives.
    var subacksPending = 0
    var refusedSoFar: UInt64 = 0
    /// A failure found while queuing, reported at the next `poll` (e.g. a CONNECT that
    /// does not fit): the attempt ends with this reason.
    var pendingFailure: DisconnectReason?

    /// Output bytes kept for PINGREQ, DISCONNECT and the WebSocket close (8 + 8 + 8 at
    /// most): nothing else may take them, so a stop always says goodbye and a backed-up
    /// link still gets its keep-alive probe.
    static let controlReserve = 32
    /// Room needed before parsing more input, so the answer an inbound packet needs (a
    /// PUBACK of 10 bytes, a pong of up to 131) always fits: when output is this full the
    /// session stops reading and lets TCP push back, instead of dropping anything.
    static let answerReserve = controlReserve + 6 + 125 + 8
    /// Topic filters per SUBSCRIBE: some brokers cap them per request (AWS IoT Core at 8),
    /// so more go out as several SUBSCRIBEs, each answered by its own SUBACK.
    public static let filtersPerSubscribe = 8

    /// `random` fills a buffer with CSPRNG bytes (the agent passes getrandom; it must not
    /// return without filling it).
    public init(config: SessionConfig, now: UInt64, random fill: @escaping MaskPool.Fill) {
        self.config = config
        state = .waiting(until: now)
        let frameSlack = 14
        let out = config.inflightWindow * (config.maxOutboundPacket + frameSlack) + config.maxOutboundPacket + 1024
        input = InputBuffer(capacity: config.maxInboundPacket + 512)  // a largest packet, its frame header, the next ones' start
        output = ByteBuffer(capacity: out)
        mqtt = MQTTDecoder(capacity: config.maxInboundPacket)
        // Scratch also takes each SUBSCRIBE: eight of the thing model's topics can be longer
        // than any post for a device with a long name (fixed header ≤ 5, id 2, per topic
        // 2 + it + QoS 1), so it is sized for the largest chunk.
        let chunks = Session.subscribeChunkCount(config.subscriptions.count)
        var subscribe = 0
        for k in 0..<chunks {
            let chunk = Session.subscribeChunk(k, of: config.subscriptions.count)
            subscribe = max(subscribe, config.subscriptions[chunk].reduce(7) { $0 + 3 + $1.topic.utf8.count })
        }
        scratch = ByteBuffer(capacity: max(config.maxOutboundPacket, subscribe))
        subscribeIds = [UInt16](repeating: 0, count: chunks)
        inflight = InflightWindow(slots: config.inflightWindow, capacity: config.maxOutboundPacket)
        var masks = MaskPool(fill: fill)
        random = SplitMix64(seed: masks.next64())
        framing = Framing(webSocket: config.webSocket.map { WebSocketConnection(target: $0, masks: masks) })
        backoff = config.backoff
    }

    /// The body of the last received packet; `.message` ranges index it.
    public var inbound: ByteBuffer { mqtt.packet }

    public var isOnline: Bool { state == .online }

    /// Whether `input` has room: false while the session holds back reading because the
    /// output is full (backpressure), so the loop must not poll for readable then.
    public var canReceive: Bool { input.available > 0 }

    /// QoS 1 messages sent and not yet acknowledged.
    public var inflightCount: Int { inflight.count }

    // MARK: inputs from the loop

    /// The transport is up. `connect` carries this attempt's credentials (the platform's
    /// signature may include the time); `webSocketKey` is a fresh key and its accept value.
    public mutating func transportOpened(now: UInt64, connect: MQTTEncoder.Connect, webSocketKey: WebSocketKey) {
        guard state == .opening else { return }
        transportOpen = true
        resetStreams()
        lastReceived = now
        lastSent = now
        pingSentAt = nil
        connectPacket = connect
        let deadline = now + config.connectTimeout
        if framing.upgrades {
            if !framing.start(key: webSocketKey, into: &output) {
                pendingFailure = .outputOverflow  // a Host and path of kilobytes: said, not hidden
            }
            state = .upgrading(deadline: deadline)
        } else {
            state = .awaitingConnack(deadline: deadline)
            if let error = sendConnect() { pendingFailure = .cannotEncode(error) }
        }
    }

    /// Opening the transport failed, or an open one failed or closed.
    public mutating func transportFailed(now: UInt64, _ reason: DisconnectReason) {
        switch state {
        case .stopped, .waiting: return
        case .closing:
            transportOpen = false
            state = .stopped
        default:
            transportOpen = false
            disconnected(now: now, reason)
        }
    }

    /// Lets `read` append transport bytes to the session's input (no copy: `read` fills
    /// the free space directly); returns what it returned.
    public mutating func receive(now: UInt64, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let n = input.append(read)
        if n > 0 { lastReceived = now }
        return n
    }

    /// The transport's input ended: `reason` is reported (and the transport closed) once
    /// everything received before it is parsed.
    public mutating func receiveEOF(now: UInt64, _ reason: DisconnectReason) {
        if pendingEOF == nil { pendingEOF = reason }
    }

    /// `n` bytes of `output` were written to the transport.
    public mutating func didWrite(_ n: Int, now: UInt64) {
        guard n > 0 else { return }
        output.removeFirst(n)
        lastSent = now
    }

    /// Sends DISCONNECT (and a WebSocket close) when online, then `.stopped`.
    public mutating func stop(now: UInt64) {
        switch state {
        case .online:
            // Two bytes, framed in eight, taken from `controlReserve`: cannot fail.
            enqueueControl(MQTTEncoder.disconnect)
            sendClose(WebSocketCloseCode.normal)
            state = .closing(deadline: now + 2_000)
        case .upgrading, .awaitingConnack, .opening:
            state = .closing(deadline: now)
        case .waiting:
            state = .stopped
        case .closing, .stopped:
            break
        }
    }

    // MARK: the step function

    public mutating func poll(now: UInt64) -> SessionAction {
        while true {
            if let event = events.pop() { return .event(event) }
            if let action = parseInput(now: now) { return action }
            if events.count > 0 { continue }
            if pendingEOF != nil && inputPosition >= input.count && pendingData == nil, let action = endOfStream(now: now) {
                return action
            }
            return timers(now: now)
        }
    }

    /// The stream ended after everything it carried was parsed.
    mutating func endOfStream(now: UInt64) -> SessionAction? {
        guard let reason = pendingEOF else { return nil }
        pendingEOF = nil
        switch state {
        case .closing:
            state = .stopped
            transportOpen = false
            return .closeTransport(.stopped)
        case .upgrading, .awaitingConnack, .online:
            transportOpen = false
            return fail(now: now, reason)
        case .waiting, .opening, .stopped:
            return nil
        }
    }

    mutating func timers(now: UInt64) -> SessionAction {
        if let reason = pendingFailure {
            pendingFailure = nil
            return fail(now: now, reason)
        }
        switch state {
        case .waiting(let until):
            if now < until { return .wait(until: until) }
            state = .opening
            return .openTransport
        case .opening:
            return .wait(until: UInt64.max)
        case .upgrading(let deadline), .awaitingConnack(let deadline):
            if now >= deadline { return fail(now: now, .connectTimeout) }
            return .wait(until: deadline)
        case .online:
            if let sent = pingSentAt {
                if now >= sent + config.pingTimeout { return fail(now: now, .pingTimeout) }
            } else if now >= min(lastSent, lastReceived) + config.pingAfter {
                // From `controlReserve`, which holds one PINGREQ whatever else is queued:
                // cannot fail (a link so backed up that it stays full ends in pingTimeout).
                enqueueControl(MQTTEncoder.pingreq)
                pingSentAt = now
            }
            if !stableReported && now >= onlineSince + backoff.stableAfter {
                stableReported = true
                backoff.reset()
            }
            var next = pingSentAt.map { $0 + config.pingTimeout } ?? (min(lastSent, lastReceived) + config.pingAfter)
            if !stableReported { next = min(next, onlineSince + backoff.stableAfter) }
            return .wait(until: next)
        case .closing(let deadline):
            if output.isEmpty || now >= deadline {
                state = .stopped
                if transportOpen {
                    transportOpen = false
                    return .closeTransport(.stopped)
                }
                return .stopped
            }
            return .wait(until: deadline)
        case .stopped:
            return .stopped
        }
    }

    // MARK: the end of a link

    /// Ends the connection: close the transport, schedule the next attempt, tell the app.
    mutating func fail(now: UInt64, _ reason: DisconnectReason) -> SessionAction {
        disconnected(now: now, reason)
        return .closeTransport(reason)
    }

    mutating func disconnected(now: UInt64, _ reason: DisconnectReason) {
        var refused = false
        if case .refused(let code) = reason { refused = code.isCredentialRefusal }
        if case .handshake(let e) = reason, e == .unauthorized || e == .forbidden || e == .notFound { refused = true }
        let delay = backoff.nextDelay(refused: refused, random: &random)
        state = .waiting(until: now + delay)
        pendingData = nil
        pendingEOF = nil
        clearInput()
        events.push(.offline(reason, retryIn: delay))
    }

    mutating func resetStreams() {
        output.removeAll()
        clearInput()
        pendingEOF = nil
        pendingData = nil
        mqtt.reset()
    }

    mutating func clearInput() {
        input.removeAll()
        inputPosition = 0
    }
}
