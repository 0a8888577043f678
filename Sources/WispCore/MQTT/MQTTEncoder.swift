/// MQTT 3.1.1 encoders over a caller's fixed buffer (as coreMQTT's serializer):
/// each packet has a `…Size` function and an `encode…` that reserves that size first,
/// so a packet that does not fit is a thrown `.bufferTooSmall` and nothing is written.
public enum MQTTEncoder {
    /// A topic filter and the QoS asked for it (MQTT 3.1.1 §3.8.3).
    public struct Subscription: Sendable, Equatable {
        public var topic: String
        public var qos: QoS
        public init(topic: String, qos: QoS) {
            self.topic = topic
            self.qos = qos
        }
    }

    /// What CONNECT carries (MQTT 3.1.1 §3.1). wisp always asks for a clean session.
    public struct Connect: Sendable, Equatable {
        public var clientId: String
        public var username: String?
        public var password: String?
        public var keepAlive: UInt16
        public var cleanSession: Bool
        public var will: Will?

        public init(clientId: String, username: String? = nil, password: String? = nil,
                    keepAlive: UInt16, cleanSession: Bool = true, will: Will? = nil) {
            self.clientId = clientId
            self.username = username
            self.password = password
            self.keepAlive = keepAlive
            self.cleanSession = cleanSession
            self.will = will
        }
    }

    // MARK: sizes

    /// Bytes of a whole packet whose remaining length is `remaining`.
    public static func packetSize(remaining: Int) -> Int {
        1 + RemainingLength.size(of: remaining) + remaining
    }

    static func stringSize(_ s: String) throws(MQTTEncodeError) -> Int {
        let n = s.utf8.count
        if n > 65_535 { throw .stringTooLong(n) }
        return 2 + n
    }

    public static func connectRemaining(_ c: Connect) throws(MQTTEncodeError) -> Int {
        var n = 10 + (try stringSize(c.clientId))
        if let will = c.will { n += try stringSize(will.topic) + stringSize(will.payload) }
        if let u = c.username { n += try stringSize(u) }
        if let p = c.password { n += try stringSize(p) }
        return n
    }

    public static func publishRemaining<P: Collection>(topic: String, payload: P, qos: QoS) throws(MQTTEncodeError) -> Int
    where P.Element == UInt8 {
        try stringSize(topic) + (qos == .atMostOnce ? 0 : 2) + payload.count
    }

    // MARK: encoders

    public static func encodeConnect(_ c: Connect, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        let remaining = try connectRemaining(c)
        try begin(0x10, remaining: remaining, into: &buffer)
        buffer.put16(4)
        buffer.put(utf8: "MQTT")
        buffer.put(4)  // protocol level 4 = 3.1.1 (§3.1.2.2)
        var flags: UInt8 = c.cleanSession ? 0x02 : 0
        if let will = c.will {
            flags |= 0x04 | (will.qos.rawValue << 3) | (will.retain ? 0x20 : 0)
        }
        if c.password != nil { flags |= 0x40 }
        if c.username != nil { flags |= 0x80 }
        buffer.put(flags)
        buffer.put16(c.keepAlive)
        putString(c.clientId, into: &buffer)
        if let will = c.will {
            putString(will.topic, into: &buffer)
            putString(will.payload, into: &buffer)
        }
        if let u = c.username { putString(u, into: &buffer) }
        if let p = c.password { putString(p, into: &buffer) }
    }

    /// PUBLISH (MQTT 3.1.1 §3.3). `packetId` is required (non-zero) for QoS 1.
    public static func encodePublish<P: Collection>(
        topic: String, payload: P, qos: QoS, packetId: UInt16 = 0, retain: Bool = false, dup: Bool = false,
        into buffer: inout ByteBuffer
    ) throws(MQTTEncodeError) where P.Element == UInt8 {
        if topic.utf8.isEmpty { throw .invalidTopic }
        for byte in topic.utf8 where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") || byte == 0 {
            throw .invalidTopic
        }
        if qos == .atLeastOnce && packetId == 0 { throw .zeroPacketIdentifier }
        let remaining = try publishRemaining(topic: topic, payload: payload, qos: qos)
        var header: UInt8 = 0x30 | (qos.rawValue << 1)
        if retain { header |= 0x01 }
        if dup && qos == .atLeastOnce { header |= 0x08 }
        try begin(header, remaining: remaining, into: &buffer)
        putString(topic, into: &buffer)
        if qos == .atLeastOnce { buffer.put16(packetId) }
        buffer.put(contentsOf: payload)
    }

    /// PUBACK (MQTT 3.1.1 §3.4).
    public static func encodePuback(packetId: UInt16, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        try begin(0x40, remaining: 2, into: &buffer)
        buffer.put16(packetId)
    }

    /// SUBSCRIBE (MQTT 3.1.1 §3.8): one packet for all `subscriptions` (an array, or a
    /// slice of one: the session sends its filters in chunks without copying them).
    public static func encodeSubscribe<C: Collection>(_ subscriptions: C, packetId: UInt16, into buffer: inout ByteBuffer) throws(MQTTEncodeError)
    where C.Element == Subscription {
        if subscriptions.isEmpty { throw .emptySubscription }
        if packetId == 0 { throw .zeroPacketIdentifier }
        var remaining = 2
        for s in subscriptions { remaining += try stringSize(s.topic) + 1 }
        try begin(0x82, remaining: remaining, into: &buffer)
        buffer.put16(packetId)
        for s in subscriptions {
            putString(s.topic, into: &buffer)
            buffer.put(s.qos.rawValue)
        }
    }

    /// UNSUBSCRIBE (MQTT 3.1.1 §3.10).
    public static func encodeUnsubscribe(_ topics: [String], packetId: UInt16, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        if topics.isEmpty { throw .emptySubscription }
        if packetId == 0 { throw .zeroPacketIdentifier }
        var remaining = 2
        for t in topics { remaining += try stringSize(t) }
        try begin(0xA2, remaining: remaining, into: &buffer)
        buffer.put16(packetId)
        for t in topics { putString(t, into: &buffer) }
    }

    /// PINGREQ (MQTT 3.1.1 §3.12) and DISCONNECT (§3.14): two fixed bytes each, no
    /// variable part, so they are constants the session frames from its reserve.
    public static let pingreq: [UInt8] = [0xC0, 0x00]
    public static let disconnect: [UInt8] = [0xE0, 0x00]

    // MARK: pieces

    /// Checks the whole packet fits, then writes the fixed header.
    static func begin(_ header: UInt8, remaining: Int, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        if remaining > RemainingLength.maximum { throw .packetTooLarge(remaining) }
        let total = packetSize(remaining: remaining)
        if total > buffer.available { throw .bufferTooSmall(needed: total, available: buffer.available) }
        buffer.put(header)
        RemainingLength.put(remaining, into: &buffer)
    }

    static func putString(_ s: String, into buffer: inout ByteBuffer) {
        buffer.put16(UInt16(s.utf8.count))
        buffer.put(utf8: s)
    }
}

/// Why a packet could not be encoded.
public enum MQTTEncodeError: Error, Equatable {
    case bufferTooSmall(needed: Int, available: Int)
    case stringTooLong(Int)
    case packetTooLarge(Int)
    case invalidTopic
    case zeroPacketIdentifier
    case emptySubscription

    public var message: String {
        switch self {
        case .bufferTooSmall(let needed, let available):
            "MQTT packet of \(needed) bytes does not fit the \(available) bytes left in the output buffer"
        case .stringTooLong(let n): "MQTT string of \(n) bytes is longer than 65535"
        case .packetTooLarge(let n): "MQTT packet remaining length \(n) exceeds 268435455"
        case .invalidTopic: "topic is empty or holds a wildcard ('+', '#') or NUL"
        case .zeroPacketIdentifier: "packet identifier 0 is not allowed"
        case .emptySubscription: "SUBSCRIBE/UNSUBSCRIBE needs at least one topic"
        }
    }
}
