/// A packet the broker sent, as the incremental decoder hands it out.
///
/// Byte ranges (`topic`, `payload`, SUBACK `returnCodes`) point into `MQTTDecoder.packet`
/// and stay valid until the next call to `decode`: nothing is copied out.
public enum MQTTInbound: Equatable, Sendable {
    case connack(sessionPresent: Bool, returnCode: ConnectReturnCode)
    case publish(InboundPublish)
    case puback(packetId: UInt16)
    case suback(packetId: UInt16, returnCodes: Range<Int>)
    case unsuback(packetId: UInt16)
    case pingresp
    /// A packet longer than the decoder's buffer: announced once, then skipped unread.
    case oversized(PacketType, length: Int)
}

/// A received PUBLISH (MQTT 3.1.1 §3.3); ranges index `MQTTDecoder.packet`.
public struct InboundPublish: Equatable, Sendable {
    public var qos: QoS
    public var dup: Bool
    public var retain: Bool
    public var packetId: UInt16
    public var topic: Range<Int>
    public var payload: Range<Int>
}

/// Incremental decoder for what a broker sends a client (MQTT 3.1.1 §2–3).
///
/// Feed it any split of the stream — one byte at a time works — and it returns a packet
/// each time one completes. The body is copied into one fixed buffer sized at start-up;
/// a packet larger than that is reported as `.oversized` and skipped, never overflowed.
/// Malformed input is a thrown `MQTTDecodeError`; after one, call `reset()` (the
/// connection is being closed anyway).
public struct MQTTDecoder {
    enum State {
        case fixedHeader
        case remainingLength(header: UInt8, value: Int, index: Int)
        case body(header: UInt8, remaining: Int)
        case skipping(remaining: Int)
    }

    /// The body (variable header and payload) of the packet last returned.
    public private(set) var packet: ByteBuffer
    var state: State = .fixedHeader

    public init(capacity: Int) {
        packet = ByteBuffer(capacity: capacity)
    }

    public mutating func reset() {
        state = .fixedHeader
        packet.removeAll()
    }

    /// Consumes bytes of `input` from `position` until one packet is complete (returned)
    /// or the input runs out (nil). `position` is advanced past what was consumed.
    public mutating func decode(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(MQTTDecodeError) -> MQTTInbound? {
        while position < input.count {
            switch state {
            case .fixedHeader:
                let header = input[position]
                position += 1
                try Self.checkHeader(header)
                state = .remainingLength(header: header, value: 0, index: 0)

            case .remainingLength(let header, var value, let index):
                let byte = input[position]
                position += 1
                if try RemainingLength.accumulate(byte, index: index, into: &value) {
                    packet.removeAll()
                    if value > packet.capacity {
                        state = .skipping(remaining: value)
                        return .oversized(PacketType(rawValue: header >> 4)!, length: value)
                    }
                    if value == 0 { return try finish(header) }
                    state = .body(header: header, remaining: value)
                } else {
                    state = .remainingLength(header: header, value: value, index: index + 1)
                }

            case .body(let header, let remaining):
                let n = min(remaining, input.count - position)
                packet.put(contentsOf: UnsafeRawBufferPointer(rebasing: input[position..<(position + n)]))
                position += n
                if n == remaining { return try finish(header) }
                state = .body(header: header, remaining: remaining - n)

            case .skipping(let remaining):
                let n = min(remaining, input.count - position)
                position += n
                state = n == remaining ? .fixedHeader : .skipping(remaining: remaining - n)
            }
        }
        return nil
    }

    /// Rejects packet types a client must never receive and reserved flag bits
    /// (MQTT 3.1.1 §2.2.2) as soon as the first byte arrives.
    static func checkHeader(_ header: UInt8) throws(MQTTDecodeError) {
        guard let type = PacketType(rawValue: header >> 4) else { throw .reservedPacketType(header >> 4) }
        let flags = header & 0x0F
        switch type {
        case .publish:
            let qos = (flags >> 1) & 0x03
            if qos == 3 { throw .invalidQoS }
            if qos == 2 { throw .unsupportedQoS2 }
            if qos == 0 && flags & 0x08 != 0 { throw .reservedFlags(type) }  // DUP with QoS 0, §3.3.1.1
        case .connack, .puback, .suback, .unsuback, .pingresp:
            if flags != 0 { throw .reservedFlags(type) }
        case .pubrec, .pubrel, .pubcomp:
            throw .unsupportedQoS2
        case .connect, .subscribe, .unsubscribe, .pingreq, .disconnect:
            throw .unexpectedPacket(type)
        }
    }

    mutating func finish(_ header: UInt8) throws(MQTTDecodeError) -> MQTTInbound {
        state = .fixedHeader
        let type = PacketType(rawValue: header >> 4)!
        let n = packet.count
        switch type {
        case .connack:
            if n != 2 { throw .badLength(type, n) }
            if packet[0] & 0xFE != 0 { throw .reservedFlags(type) }
            guard let code = ConnectReturnCode(rawValue: packet[1]) else { throw .unknownReturnCode(packet[1]) }
            return .connack(sessionPresent: packet[0] & 1 == 1, returnCode: code)
        case .puback, .unsuback:
            if n != 2 { throw .badLength(type, n) }
            let id = UInt16(packet[0]) << 8 | UInt16(packet[1])
            if id == 0 { throw .zeroPacketIdentifier }
            return type == .puback ? .puback(packetId: id) : .unsuback(packetId: id)
        case .suback:
            if n < 3 { throw .badLength(type, n) }
            for i in 2..<n {
                let code = packet[i]
                if code > 2 && code != 0x80 { throw .badSubackCode(code) }
            }
            let id = UInt16(packet[0]) << 8 | UInt16(packet[1])
            if id == 0 { throw .zeroPacketIdentifier }
            return .suback(packetId: id, returnCodes: 2..<n)
        case .pingresp:
            if n != 0 { throw .badLength(type, n) }
            return .pingresp
        case .publish:
            let qos: QoS = (header >> 1) & 0x03 == 1 ? .atLeastOnce : .atMostOnce
            if n < 2 { throw .badLength(type, n) }
            let topicLength = Int(packet[0]) << 8 | Int(packet[1])
            let idLength = qos == .atLeastOnce ? 2 : 0
            if 2 + topicLength + idLength > n { throw .topicLengthPastPacket }
            if topicLength == 0 { throw .invalidTopic }
            for i in 2..<(2 + topicLength) {
                let b = packet[i]
                if b == 0 || b == UInt8(ascii: "+") || b == UInt8(ascii: "#") { throw .invalidTopic }
            }
            var id: UInt16 = 0
            if qos == .atLeastOnce {
                id = UInt16(packet[2 + topicLength]) << 8 | UInt16(packet[3 + topicLength])
                if id == 0 { throw .zeroPacketIdentifier }
            }
            return .publish(InboundPublish(
                qos: qos, dup: header & 0x08 != 0, retain: header & 0x01 != 0, packetId: id,
                topic: 2..<(2 + topicLength), payload: (2 + topicLength + idLength)..<n))
        default:
            throw .unexpectedPacket(type)  // unreachable: checkHeader refused it
        }
    }
}

/// Why the broker's byte stream could not be decoded. Each is a protocol violation
/// that ends the connection (MQTT 3.1.1 §4.8).
public enum MQTTDecodeError: Error, Equatable, Sendable {
    case reservedPacketType(UInt8)
    case reservedFlags(PacketType)
    case invalidQoS
    case unsupportedQoS2
    case unexpectedPacket(PacketType)
    case remainingLengthTooLong
    case remainingLengthNotMinimal
    case badLength(PacketType, Int)
    case unknownReturnCode(UInt8)
    case badSubackCode(UInt8)
    case topicLengthPastPacket
    case invalidTopic
    case zeroPacketIdentifier

    public var message: String {
        switch self {
        case .reservedPacketType(let t): "MQTT packet type \(t) is reserved"
        case .reservedFlags(let t): "MQTT \(t.name) has reserved flag bits set"
        case .invalidQoS: "MQTT PUBLISH with QoS 3"
        case .unsupportedQoS2: "MQTT QoS 2 flow from the broker (wisp subscribes with QoS 0 or 1 only)"
        case .unexpectedPacket(let t): "MQTT \(t.name) is never sent by a broker"
        case .remainingLengthTooLong: "MQTT remaining length longer than 4 bytes"
        case .remainingLengthNotMinimal: "MQTT remaining length not minimally encoded"
        case .badLength(let t, let n): "MQTT \(t.name) with a remaining length of \(n)"
        case .unknownReturnCode(let c): "MQTT CONNACK with unknown return code \(c)"
        case .badSubackCode(let c): "MQTT SUBACK with invalid return code \(c)"
        case .topicLengthPastPacket: "MQTT PUBLISH topic length runs past the packet"
        case .invalidTopic: "MQTT PUBLISH topic is empty or holds a wildcard or NUL"
        case .zeroPacketIdentifier: "MQTT packet identifier 0"
        }
    }
}
