/// MQTT 3.1.1 control packet types (MQTT 3.1.1 §2.2.1).
public enum PacketType: UInt8, Sendable {
    case connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp
    case subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect

    public var name: String {
        switch self {
        case .connect: "CONNECT"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        case .pubcomp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .pingreq: "PINGREQ"
        case .pingresp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        }
    }
}

/// Quality of service wisp speaks: at most once and at least once. QoS 2 is refused.
public enum QoS: UInt8, Sendable {
    case atMostOnce = 0
    case atLeastOnce = 1
}

/// A Last Will (MQTT 3.1.1 §3.1.2.5): what the broker publishes when the device vanishes.
public struct Will: Sendable, Equatable {
    public var topic: String
    public var payload: String
    public var qos: QoS
    public var retain: Bool

    public init(topic: String, payload: String, qos: QoS = .atLeastOnce, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// The CONNECT return codes (MQTT 3.1.1 §3.2.2.3), each with what a user should do.
public enum ConnectReturnCode: UInt8, Sendable, Equatable, CaseIterable {
    case accepted = 0
    case unacceptableProtocolVersion = 1
    case identifierRejected = 2
    case serverUnavailable = 3
    case badUsernameOrPassword = 4
    case notAuthorized = 5

    /// One sentence: what happened and what to do.
    public var message: String {
        switch self {
        case .accepted: "connection accepted"
        case .unacceptableProtocolVersion: "broker refused MQTT 3.1.1 (return code 1): the endpoint is not an MQTT 3.1.1 broker"
        case .identifierRejected: "broker refused the client id (return code 2): check client_id (at most 64 characters, letters, digits, '-', '_', ':')"
        case .serverUnavailable: "broker unavailable (return code 3): the platform is busy or down; wisp will retry"
        case .badUsernameOrPassword: "credentials refused: check device_secret, sign_method and the clock (CONNACK 4, bad user name or password)"
        case .notAuthorized: "credentials refused: check device_secret, sign_method and the clock (CONNACK 5, not authorized)"
        }
    }

    /// True for refusals that retrying soon will not fix.
    public var isCredentialRefusal: Bool {
        self == .badUsernameOrPassword || self == .notAuthorized || self == .identifierRejected
    }
}
