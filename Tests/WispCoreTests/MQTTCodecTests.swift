import TestSupport
import Testing
@testable import WispCore

@Suite("MQTT 3.1.1 encoder: bytes spelled out")
struct MQTTEncoderTests {
    @Test func connectWithUsernameAndPassword() throws {
        let c = MQTTEncoder.Connect(clientId: "wisp", username: "u", password: "p", keepAlive: 60)
        let out = try encoded { try MQTTEncoder.encodeConnect(c, into: &$0) }
        // §3.1: "MQTT", level 4, flags user|password|clean, keep-alive 60, then the payload.
        #expect(out == hex("10 16 0004 4d515454 04 c2 003c 0004 77697370 0001 75 0001 70"))
    }

    @Test func connectWithWill() throws {
        let c = MQTTEncoder.Connect(clientId: "wisp", keepAlive: 300, will: Will(topic: "t", payload: "x"))
        let out = try encoded { try MQTTEncoder.encodeConnect(c, into: &$0) }
        // flags: will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean 0x02
        #expect(out == hex("10 16 0004 4d515454 04 2e 012c 0004 77697370 0001 74 0001 78"))
    }

    static let vectors: [(name: String, bytes: String, encode: @Sendable (inout ByteBuffer) throws -> Void)] = [
        ("PUBLISH QoS 0", "30 07 0003 612f62 6869", { try MQTTEncoder.encodePublish(topic: "a/b", payload: Array("hi".utf8), qos: .atMostOnce, into: &$0) }),
        ("PUBLISH QoS 1", "32 09 0003 612f62 000a 6869", { try MQTTEncoder.encodePublish(topic: "a/b", payload: Array("hi".utf8), qos: .atLeastOnce, packetId: 10, into: &$0) }),
        ("PUBLISH QoS 1 DUP retain", "3b 09 0003 612f62 000a 6869", { try MQTTEncoder.encodePublish(topic: "a/b", payload: Array("hi".utf8), qos: .atLeastOnce, packetId: 10, retain: true, dup: true, into: &$0) }),
        ("PUBACK", "40 02 0005", { try MQTTEncoder.encodePuback(packetId: 5, into: &$0) }),
        ("SUBSCRIBE", "82 08 0001 0003 612f23 01", { try MQTTEncoder.encodeSubscribe([.init(topic: "a/#", qos: .atLeastOnce)], packetId: 1, into: &$0) }),
        ("UNSUBSCRIBE", "a2 05 0002 0001 61", { try MQTTEncoder.encodeUnsubscribe(["a"], packetId: 2, into: &$0) }),
        ("PINGREQ", "c0 00", { try $0.append(MQTTEncoder.pingreq) }),
        ("DISCONNECT", "e0 00", { try $0.append(MQTTEncoder.disconnect) }),
    ]

    @Test(arguments: vectors)
    func encodes(name: String, bytes: String, encode: @Sendable (inout ByteBuffer) throws -> Void) throws {
        #expect(try encoded(encode) == hex(bytes), "\(name)")
    }

    @Test func publishThatDoesNotFitWritesNothing() {
        var buffer = ByteBuffer(capacity: 8)
        #expect(throws: MQTTEncodeError.bufferTooSmall(needed: 9, available: 8)) {
            try MQTTEncoder.encodePublish(topic: "a/b", payload: Array("hi".utf8), qos: .atMostOnce, into: &buffer)
        }
        #expect(buffer.count == 0)
    }

    @Test func publishLargePayloadUsesLongRemainingLength() throws {
        let payload = [UInt8](repeating: 7, count: 20_000)
        let out = try encoded { try MQTTEncoder.encodePublish(topic: "t", payload: payload, qos: .atMostOnce, into: &$0) }
        #expect(Array(out[0..<4]) == hex("30 a3 9c 01"))  // 20003 = 0x4E23
        let (packets, decoder) = try decodeAll(out, capacity: 32_768)
        guard case .publish(let p) = packets.first else { Issue.record("no publish"); return }
        #expect(p.payload.count == 20_000)
        #expect(decoder.packet[p.payload.lowerBound] == 7)
    }

    @Test(arguments: ["", "a/+", "a/#"])
    func refusesBadPublishTopics(_ topic: String) {
        #expect(throws: MQTTEncodeError.invalidTopic) { try encoded { try MQTTEncoder.encodePublish(topic: topic, payload: [UInt8](), qos: .atMostOnce, into: &$0) } }
    }

    @Test func refusesPacketIdZeroForQoS1() {
        #expect(throws: MQTTEncodeError.zeroPacketIdentifier) { try encoded { try MQTTEncoder.encodePublish(topic: "t", payload: [UInt8](), qos: .atLeastOnce, into: &$0) } }
    }
}

@Suite("MQTT 3.1.1 decoder: incremental, strict")
struct MQTTDecoderTests {
    @Test(arguments: ConnectReturnCode.allCases)
    func everyConnackCode(_ code: ConnectReturnCode) throws {
        let (packets, _) = try decodeAll([0x20, 0x02, 0x00, code.rawValue])
        #expect(packets == [.connack(sessionPresent: false, returnCode: code)])
        #expect(!code.message.isEmpty)
        #expect(code.isCredentialRefusal == (code.rawValue == 2 || code.rawValue == 4 || code.rawValue == 5))
    }

    @Test func credentialRefusalsSayWhatToCheck() {
        for code in [ConnectReturnCode.badUsernameOrPassword, .notAuthorized] {
            #expect(code.message.hasPrefix("credentials refused: check device_secret, sign_method and the clock"))
        }
    }

    @Test func connackSessionPresentAndUnknownCode() throws {
        #expect(try decodeAll(hex("20 02 01 00")).packets == [.connack(sessionPresent: true, returnCode: .accepted)])
        #expect(throws: MQTTDecodeError.unknownReturnCode(6)) { try decodeAll(hex("20 02 00 06")) }
        #expect(throws: MQTTDecodeError.reservedFlags(.connack)) { try decodeAll(hex("20 02 02 00")) }
        #expect(throws: MQTTDecodeError.badLength(.connack, 3)) { try decodeAll(hex("20 03 00 00 00")) }
    }

    /// A stream of every packet kind a broker sends; each split gives the same packets.
    static let stream = hex("20 02 00 00") + hex("32 09 0003 612f62 000a 6869") + hex("30 07 0003 612f62 6869")
        + hex("40 02 0005") + hex("90 04 0007 01 80") + hex("b0 02 0008") + hex("d0 00")

    @Test func decodesEveryKind() throws {
        let (packets, _) = try decodeAll(Self.stream)
        #expect(packets == [
            .connack(sessionPresent: false, returnCode: .accepted),
            .publish(InboundPublish(qos: .atLeastOnce, dup: false, retain: false, packetId: 10, topic: 2..<5, payload: 7..<9)),
            .publish(InboundPublish(qos: .atMostOnce, dup: false, retain: false, packetId: 0, topic: 2..<5, payload: 5..<7)),
            .puback(packetId: 5),
            .suback(packetId: 7, returnCodes: 2..<4),
            .unsuback(packetId: 8),
            .pingresp,
        ])
    }

    @Test(arguments: 1...12)
    func anySplitGivesTheSamePackets(chunk: Int) throws {
        #expect(try decodeAll(Self.stream, chunk: chunk).packets == decodeAll(Self.stream).packets)
    }

    @Test func subackFailureCodeIsVisible() throws {
        let (packets, decoder) = try decodeAll(hex("90 04 0007 01 80"))
        guard case .suback(_, let codes) = packets[0] else { Issue.record("no suback"); return }
        #expect(codes.map { decoder.packet[$0] } == [0x01, 0x80])
        #expect(throws: MQTTDecodeError.badSubackCode(3)) { try decodeAll(hex("90 03 0007 03")) }
    }

    static let malformed: [(String, String, MQTTDecodeError)] = [
        ("reserved type 0", "00 00", .reservedPacketType(0)),
        ("reserved type 15", "f0 00", .reservedPacketType(15)),
        ("CONNACK flags", "21 02 00 00", .reservedFlags(.connack)),
        ("PUBACK flags", "42 02 00 01", .reservedFlags(.puback)),
        ("PUBLISH QoS 3", "36 05 0001 61 0001", .invalidQoS),
        ("PUBLISH DUP with QoS 0", "38 03 0001 61", .reservedFlags(.publish)),
        ("PUBLISH QoS 2", "34 05 0001 61 0001", .unsupportedQoS2),
        ("topic length past packet", "30 03 0005 61", .topicLengthPastPacket),
        ("topic + packet id past packet", "32 04 0002 6162", .topicLengthPastPacket),
        ("empty topic", "30 02 0000", .invalidTopic),
        ("wildcard topic", "30 03 0001 23", .invalidTopic),
        ("PUBLISH packet id 0", "32 05 0001 61 0000", .zeroPacketIdentifier),
        ("PUBLISH shorter than a topic length", "30 01 00", .badLength(.publish, 1)),
        ("PINGRESP with a body", "d0 01 00", .badLength(.pingresp, 1)),
        ("CONNECT from a broker", "10 00", .unexpectedPacket(.connect)),
        ("SUBSCRIBE from a broker", "82 00", .unexpectedPacket(.subscribe)),
        ("PUBREL", "62 02 0001", .unsupportedQoS2),
    ]

    @Test(arguments: malformed)
    func refusesMalformed(name: String, bytes: String, error: MQTTDecodeError) {
        #expect(throws: error, "\(name)") { try decodeAll(hex(bytes)) }
        #expect(throws: error, "\(name), byte by byte") { try decodeAll(hex(bytes), chunk: 1) }
    }

    /// CVE-2021-41036 class: a remaining length larger than the buffer must not be
    /// trusted; the packet is reported, skipped unread, and the stream goes on.
    @Test func oversizedPacketIsSkippedAndTheStreamContinues() throws {
        var big = hex("30 a3 9c 01")  // 20003 bytes
        big += [UInt8](repeating: 0x41, count: 20_003)
        let stream = big + hex("d0 00")
        for chunk in [1, 7, 4096, Int.max] {
            let (packets, _) = try decodeAll(stream, chunk: chunk, capacity: 64)
            #expect(packets == [.oversized(.publish, length: 20_003), .pingresp], "chunk \(chunk)")
        }
    }

    /// A length check must hold however the packet arrives: a packet delivered across many
    /// reads is checked against the buffer once, up front.
    @Test func lengthHoldsAcrossManyReads() throws {
        let packet = hex("30 0a 0003 612f62") + Array("12345".utf8)
        let (packets, _) = try decodeAll(packet + packet, chunk: 1, capacity: 10)
        #expect(packets.count == 2)
        let (small, _) = try decodeAll(packet, chunk: 1, capacity: 9)
        #expect(small == [.oversized(.publish, length: 10)])
    }
}
