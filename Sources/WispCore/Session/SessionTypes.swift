/// Fixed sizes and timings of a session, chosen at start-up.
public struct SessionConfig: Sendable {
    /// Where a WebSocket upgrade goes; nil for MQTT straight over TCP/TLS.
    public struct WebSocketTarget: Sendable, Equatable {
        public var hostHeader: String
        public var path: String
        public init(hostHeader: String, path: String) {
            self.hostHeader = hostHeader
            self.path = path
        }
    }

    public var keepAlive: UInt16
    public var webSocket: WebSocketTarget?
    /// Subscribed again after every CONNACK (wisp always asks for a clean session), at
    /// most `Session.filtersPerSubscribe` filters per SUBSCRIBE.
    public var subscriptions: [MQTTEncoder.Subscription] = []
    /// Largest packet the broker may send us; larger PUBLISHes are skipped (and said so).
    /// The platform's messages to a device — property sets, replies, NTP answers — are a
    /// few hundred bytes.
    public var maxInboundPacket = 2048
    /// Largest packet we send; the agent sizes it from the key file (the largest property
    /// post with its topic, or a reply).
    public var maxOutboundPacket = 1024
    /// QoS 1 messages awaiting PUBACK at once.
    public var inflightWindow = 4
    /// Milliseconds allowed for the WebSocket upgrade plus CONNACK.
    public var connectTimeout: UInt64 = 15_000
    public var backoff = Backoff()

    public init(keepAlive: UInt16, webSocket: WebSocketTarget?) {
        self.keepAlive = keepAlive
        self.webSocket = webSocket
    }

    /// Keep-alive in milliseconds.
    public var keepAliveMillis: UInt64 { UInt64(keepAlive) * 1000 }
    /// A PINGREQ goes out this long after the last byte sent or received, whichever is
    /// older: the keep-alive less a margin, so the broker never sees a silent period.
    public var pingAfter: UInt64 { keepAliveMillis - max(1000, keepAliveMillis / 10) }
    /// How long a PINGRESP may take before the link is judged dead.
    public var pingTimeout: UInt64 { min(30_000, keepAliveMillis / 2) }
}

/// What the I/O loop must do next. The session never touches a socket or a clock.
public enum SessionAction: Equatable, Sendable {
    /// Open the transport (TCP or TLS, through the proxy if any), then call
    /// `transportOpened` or `transportFailed`.
    case openTransport
    /// Write what `output` holds if you can, then close the transport.
    case closeTransport(DisconnectReason)
    /// Something to tell the application (log it, handle a message, …).
    case event(SessionEvent)
    /// Nothing to do before this monotonic time (ms) unless bytes arrive or can be written.
    case wait(until: UInt64)
    /// `stop` finished; the transport is closed.
    case stopped
}

/// What happened, for the application and the log.
public enum SessionEvent: Equatable, Sendable {
    /// The WebSocket upgrade succeeded; CONNECT is on its way.
    case upgraded
    /// CONNACK accepted; `resent` QoS 1 messages went out again with DUP set.
    case online(sessionPresent: Bool, resent: Int)
    /// A PUBLISH arrived; its bytes are in `Session.inbound` until the next `poll`.
    case message(InboundPublish)
    /// The broker acknowledged a QoS 1 message.
    case delivered(packetId: UInt16)
    /// The SUBACKs of all our SUBSCRIBEs arrived (the filters go out 8 per SUBSCRIBE):
    /// bit i is set when the broker refused subscription i of `SessionConfig.subscriptions`
    /// (return code 0x80); they are asked for again at the next connect.
    case subscribed(refused: UInt64)
    /// A PUBLISH too big for the inbound buffer was skipped unread.
    case skippedOversized(length: Int)
    /// The connection is gone; the next attempt starts in `retryIn` ms.
    case offline(DisconnectReason, retryIn: UInt64)
}

/// Why a connection ended.
public enum DisconnectReason: Equatable, Sendable {
    case transportClosed
    case connectFailed
    case transportError(Int32)
    case handshake(WebSocketHandshakeError)
    case refused(ConnectReturnCode)
    case connectTimeout
    case pingTimeout
    case mqttProtocol(MQTTDecodeError)
    case unexpectedPacket(PacketType)
    case webSocketProtocol(WebSocketFrameError)
    case serverClosed(code: UInt16?)
    case textMessage
    case outputOverflow
    case cannotEncode(MQTTEncodeError)
    case cannotSubscribe
    case unexpectedSuback(packetId: UInt16, codes: Int)
    case stopped

    /// The platform said no to this device (CONNACK refusal, HTTP 401/403 at the
    /// upgrade): retrying will not help until the credentials or the console change.
    public var isRefusal: Bool {
        switch self {
        case .refused: true
        case .handshake(let e): e == .unauthorized || e == .forbidden
        default: false
        }
    }

    public var message: String {
        switch self {
        case .transportClosed: "the connection was closed by the other end"
        case .connectFailed: "could not connect"
        case .transportError(let code): "transport error \(code)"
        case .handshake(let e): e.message
        case .refused(let code): code.message
        case .connectTimeout: "no CONNACK (or WebSocket upgrade) within the connect timeout"
        case .pingTimeout: "no PINGRESP in time: the link is dead (half-open or black-holed)"
        case .mqttProtocol(let e): "protocol error from the broker: " + e.message
        case .unexpectedPacket(let t): "protocol error from the broker: unexpected " + t.name
        case .webSocketProtocol(let e): "WebSocket protocol error: " + e.message
        case .serverClosed(let code): code.map { "the server closed the WebSocket (status \($0))" } ?? "the server closed the WebSocket"
        case .textMessage: "the server sent a WebSocket text message (MQTT needs binary frames)"
        case .outputOverflow: "the output buffer overflowed: the network is not draining"
        case .cannotEncode(let e): "cannot encode CONNECT: " + e.message
        case .cannotSubscribe: "the SUBSCRIBE for the thing model's topics does not fit the output buffer"
        case .unexpectedSuback(let id, let n):
            "protocol error from the broker: SUBACK \(id) with \(n) return code(s) does not answer a SUBSCRIBE of ours"
        case .stopped: "stopped"
        }
    }
}

/// Why `publish` did not take a message. Nothing was queued; keep the sample and retry.
public enum PublishError: Error, Equatable, Sendable {
    case notConnected
    case windowFull
    case outputFull
    case encode(MQTTEncodeError)

    public var message: String {
        switch self {
        case .notConnected: "not connected"
        case .windowFull: "all QoS 1 slots await PUBACK"
        case .outputFull: "the output buffer is full"
        case .encode(let e): e.message
        }
    }
}
