import Testing
@testable import WispCore

@Suite("Session state machine: connect, publish, receive, stop")
struct SessionTests {
    @Test func connectsOverWebSocketAndSendsConnect() throws {
        var h = Harness(subscriptions: [.init(topic: "/sys/pk/dn/thing/event/property/post_reply", qos: .atLeastOnce)])
        h.run()
        #expect(h.opens == 1)
        h.upgrade()
        #expect(h.events == [.upgraded])
        let expectedConnect = try encoded { try MQTTEncoder.encodeConnect(h.connect, into: &$0) }
        #expect(h.takePackets() == [expectedConnect])
        h.deliver(serverFrame(connackOK))
        #expect(h.events.last == .online(sessionPresent: false, resent: 0))
        let subscribe = try encoded { try MQTTEncoder.encodeSubscribe([.init(topic: "/sys/pk/dn/thing/event/property/post_reply", qos: .atLeastOnce)], packetId: 1, into: &$0) }
        #expect(h.takePackets() == [subscribe])
    }

    /// Eight topics of a device with a 32-character name make a SUBSCRIBE larger than any
    /// post the outbound buffers are sized for: it is still sent, whole (eleven go out as
    /// eight and three).
    @Test func aSubscribeLargerThanTheLargestPostIsSent() throws {
        let base = "/sys/a1B2c3D4e5F/" + String(repeating: "d", count: 32)
        let topics = ["/thing/event/property/post_reply", "/thing/service/property/set", "/thing/service/+", "/rrpc/request/+",
                      "/thing/config/push", "/thing/config/get_reply", "/thing/event/+/post_reply", "/thing/ota/firmware/get_reply",
                      "/thing/event/property/history/post_reply", "/thing/a", "/thing/b"]
        let subscriptions = topics.map { MQTTEncoder.Subscription(topic: base + $0, qos: .atMostOnce) }
        var h = Harness(subscriptions: subscriptions) { $0.maxOutboundPacket = 300 }
        h.goOnline()
        let first = try encoded { try MQTTEncoder.encodeSubscribe(subscriptions[0..<8], packetId: 1, into: &$0) }
        let second = try encoded { try MQTTEncoder.encodeSubscribe(subscriptions[8...], packetId: 2, into: &$0) }
        #expect(first.count > 600)
        #expect(h.takePackets().suffix(2) == [first, second])
        h.run()
        #expect(h.session.isOnline)
    }

    @Test func upgradeResponseAndConnackInOneReadByteByByte() {
        var h = Harness()
        h.run()
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        for b in Array(response.utf8) + serverFrame(connackOK) { h.deliver([b]) }
        #expect(h.session.isOnline)
    }

    @Test func plainTCPSession() throws {
        var h = Harness(webSocket: false)
        h.run()
        let expectedConnect = try encoded { try MQTTEncoder.encodeConnect(h.connect, into: &$0) }
        #expect(h.takePackets(webSocket: false) == [expectedConnect])
        h.deliver(connackOK)
        #expect(h.session.isOnline)
        _ = try h.session.publish(topic: "t", payload: Array("x".utf8), qos: .atMostOnce)
        h.run()
        #expect(h.takePackets(webSocket: false) == [hex("30 04 0001 74 78")])
    }

    @Test func qos1IsResentWithDupAfterReconnectAndResubscribes() throws {
        let sub = MQTTEncoder.Subscription(topic: "down", qos: .atLeastOnce)
        var h = Harness(subscriptions: [sub])
        h.goOnline()
        _ = h.takePackets()
        let id = try h.session.publish(topic: "t", payload: Array("42".utf8), qos: .atLeastOnce)
        h.run()
        let first = h.takePackets()
        #expect(first == [hex("32 07 0001 74") + [UInt8(id >> 8), UInt8(id & 0xFF)] + Array("42".utf8)])
        h.session.transportFailed(now: h.now, .transportClosed)
        h.run()
        guard case .waiting(let until) = h.session.state else { Issue.record("not waiting"); return }
        h.advance(to: until)
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.events.last == .online(sessionPresent: false, resent: 1))
        let packets = h.takePackets()
        #expect(packets.count == 3)  // CONNECT, SUBSCRIBE, PUBLISH with DUP
        #expect(packets[1][0] == 0x82)
        var dup = first[0]
        dup[0] |= 0x08
        #expect(packets[2] == dup)
        h.deliver(serverFrame(hex("40 02") + [UInt8(id >> 8), UInt8(id & 0xFF)]))
        #expect(h.events.last == .delivered(packetId: id))
        #expect(h.session.inflightCount == 0)
    }

    @Test func inflightWindowFillsThenRefuses() throws {
        var h = Harness { $0.inflightWindow = 2 }
        h.goOnline()
        _ = try h.session.publish(topic: "t", payload: [UInt8](), qos: .atLeastOnce)
        _ = try h.session.publish(topic: "t", payload: [UInt8](), qos: .atLeastOnce)
        #expect(throws: PublishError.windowFull) { try h.session.publish(topic: "t", payload: [UInt8](), qos: .atLeastOnce) }
    }

    @Test func publishWhileOfflineIsRefusedNotLost() {
        var h = Harness()
        h.run()
        #expect(throws: PublishError.notConnected) { try h.session.publish(topic: "t", payload: [UInt8](), qos: .atLeastOnce) }
    }

    @Test func inboundQoS1PublishIsAcknowledgedAndReadable() {
        var h = Harness()
        h.goOnline()
        _ = h.takePackets()
        h.deliver(serverFrame(hex("32 09 0003 612f62 000a 6869")))
        guard case .message(let p)? = h.events.last else { Issue.record("no message"); return }
        #expect(p.packetId == 10)
        #expect(h.takePackets() == [hex("40 02 000a")])
    }

    @Test func serverPingGetsAPongWithTheSamePayload() {
        var h = Harness()
        h.goOnline()
        _ = h.takePackets()
        h.deliver([0x89, 0x02, 0x61, 0x62])
        #expect(h.takePackets() == [[0xFF, 0x8A, 0x61, 0x62]])
    }

    @Test func serverCloseIsAnsweredAndReconnects() {
        var h = Harness()
        h.goOnline()
        _ = h.takePackets()
        h.deliver([0x88, 0x02, 0x03, 0xE9])
        #expect(h.closes == [.serverClosed(code: 1001)])
        #expect(h.takePackets() == [[0xFF, 0x88, 0x03, 0xE9]])
        guard case .waiting = h.session.state else { Issue.record("not waiting"); return }
    }

    @Test func malformedMQTTClosesWithProtocolError() {
        var h = Harness()
        h.goOnline()
        _ = h.takePackets()
        h.deliver(serverFrame(hex("36 05 0001 61 0001")))
        #expect(h.closes == [.mqttProtocol(.invalidQoS)])
        #expect(h.takePackets() == [[0xFF, 0x88, 0x03, 0xEA]])
    }

    @Test func oversizedInboundPublishIsSkippedAndTheSessionStays() {
        var h = Harness { $0.maxInboundPacket = 64 }
        h.goOnline()
        var frame: [UInt8] = [0x82, 126, 0x00, 200]
        frame += hex("30 c5 01 0001 74") + [UInt8](repeating: 0x55, count: 194)
        h.deliver(frame + serverFrame(pingresp))
        #expect(h.events.contains(.skippedOversized(length: 197)))
        #expect(h.session.isOnline)
    }

    @Test func textFrameIsRefused() {
        var h = Harness()
        h.goOnline()
        h.deliver(serverFrame(pingresp, opcode: 0x81))
        #expect(h.closes == [.textMessage])
    }

    @Test func stopSendsDisconnectAndCloses() {
        var h = Harness()
        h.goOnline()
        _ = h.takePackets()
        h.session.stop(now: h.now)
        #expect(h.run() == .stopped)
        #expect(h.takePackets() == [hex("e0 00"), [0xFF, 0x88, 0x03, 0xE8]])
        #expect(h.closes == [.stopped])
    }

    @Test func handshake404IsExplainedAndBacksOffLong() {
        var h = Harness()
        h.run()
        h.deliver(Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(h.closes == [.handshake(.notFound)])
        guard case .offline(_, let delay)? = h.events.last else { Issue.record("no offline"); return }
        #expect(delay >= 60_000)
        #expect(DisconnectReason.handshake(.notFound).message.contains("check the endpoint path"))
    }
}
