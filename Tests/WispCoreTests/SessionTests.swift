import TestSupport
import Testing
@testable import WispCore

/// Drives a Session on a simulated clock and plays the broker's side in bytes.
struct Harness {
    var session: Session
    var now: UInt64 = 1_000_000
    var written: [UInt8] = []      // everything the session wrote since the last take
    var events: [SessionEvent] = []
    var closes: [DisconnectReason] = []
    var opens = 0
    var transportUp = false
    let key = WebSocketKey.rfcExample
    let connect = MQTTEncoder.Connect(clientId: "c1", username: "device&pk", password: "pw", keepAlive: 60)
    var autoOpen = true
    /// The socket takes nothing while true (a peer that stopped reading).
    var blocked = false

    init(keepAlive: UInt16 = 60, webSocket: Bool = true, subscriptions: [MQTTEncoder.Subscription] = [], configure: (inout SessionConfig) -> Void = { _ in }) {
        var config = SessionConfig(keepAlive: keepAlive, webSocket: webSocket ? .init(hostHeader: "broker", path: "/mqtt") : nil)
        config.subscriptions = subscriptions
        configure(&config)
        session = Session(config: config, now: 1_000_000, random: counterRandom())
    }

    /// Polls until the session waits; opens the transport when asked and writes all output.
    @discardableResult
    mutating func run() -> SessionAction {
        while true {
            let action = session.poll(now: now)
            switch action {
            case .openTransport:
                opens += 1
                if autoOpen {
                    transportUp = true
                    session.transportOpened(now: now, connect: connect, webSocketKey: key)
                }
            case .closeTransport(let reason):
                flush()
                transportUp = false
                closes.append(reason)
            case .event(let e):
                events.append(e)
            case .wait, .stopped:
                if !session.output.isEmpty && transportUp && !blocked {
                    flush()  // as the loop does: write, then poll again
                    continue
                }
                flush()
                return action
            }
            flush()
        }
    }

    mutating func flush() {
        let out = session.output.bytes
        if !out.isEmpty && !(blocked && transportUp) {
            if transportUp { written += out }
            session.didWrite(out.count, now: now)
        }
    }

    mutating func deliver(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = session.receive(now: now) { buffer in
                let n = min(buffer.count, bytes.count - offset)
                for i in 0..<n { buffer[i] = bytes[offset + i] }
                return n
            }
            offset += n
            run()
        }
        run()
    }

    mutating func advance(to time: UInt64) {
        now = time
        run()
    }

    /// The link drops; after the backoff the session connects again and is accepted: the
    /// MQTT packets it sent on the new link.
    mutating func reconnect() -> [[UInt8]] {
        session.transportFailed(now: now, .transportClosed)
        transportUp = false
        written = []
        advance(to: now + 120_000)
        upgrade(then: serverFrame(connackOK))
        return takePackets()
    }

    /// The broker's side of the upgrade: answer the request in `written`.
    mutating func upgrade(then more: [UInt8] = []) {
        let request = String(decoding: written, as: UTF8.self)
        #expect(request.hasPrefix("GET /mqtt HTTP/1.1\r\nHost: broker\r\n"))
        written = []
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        deliver(Array(response.utf8) + more)
    }

    /// MQTT packets the client sent since the last take (frames unmasked and checked); a
    /// control frame comes out as 0xFF, its first byte and its payload, where it was sent.
    mutating func takePackets(webSocket: Bool = true) -> [[UInt8]] {
        defer { written = [] }
        guard webSocket else { return MQTTStream.packets(written) }
        var packets: [[UInt8]] = []
        var stream: [UInt8] = []
        var i = 0
        while i < written.count {
            let b0 = written[i], b1 = written[i + 1]
            #expect(b1 & 0x80 != 0, "client frames are masked")
            var len = Int(b1 & 0x7F)
            i += 2
            if len == 126 { len = Int(written[i]) << 8 | Int(written[i + 1]); i += 2 } else if len == 127 {
                len = 0
                for _ in 0..<8 { len = len << 8 | Int(written[i]); i += 1 }
            }
            let mask = Array(written[i..<(i + 4)])
            i += 4
            let payload = (0..<len).map { written[i + $0] ^ mask[$0 % 4] }
            i += len
            if b0 & 0x0F == 0x2 || b0 & 0x0F == 0x0 {
                stream += payload
            } else {
                packets += MQTTStream.packets(stream)
                stream = []
                packets.append([0xFF, b0] + payload)
            }
        }
        return packets + MQTTStream.packets(stream)
    }
}

/// A server frame (unmasked, binary) around MQTT bytes.
func serverFrame(_ payload: [UInt8], opcode: UInt8 = 0x82) -> [UInt8] {
    precondition(payload.count < 126)
    return [opcode, UInt8(payload.count)] + payload
}

let connackOK = hex("20 02 00 00")
let pingresp = hex("d0 00")

@Suite("Session state machine on a simulated clock")
struct SessionTests {
    func online(_ h: inout Harness) {
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.session.isOnline)
    }

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
        online(&h)
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

    /// A 1200 s keep-alive over ten simulated hours: PINGREQ every 1080 s of silence,
    /// never a disconnect while PINGRESPs come back. Runs in milliseconds.
    @Test func keepAliveOf1200SecondsOverTenHours() {
        var h = Harness(keepAlive: 1200)
        online(&h)
        _ = h.takePackets()
        let start = h.now
        var pings = 0
        while h.now < start + 36_000_000 {
            guard case .wait(let until) = h.run() else { Issue.record("not waiting"); return }
            h.advance(to: until)
            let packets = h.takePackets()
            if packets.contains(hex("c0 00")) {
                if h.now <= start + 36_000_000 { pings += 1 }
                h.now += 50
                h.deliver(serverFrame(pingresp))
            }
        }
        #expect(pings == 33)  // 36000 s / 1080 s
        #expect(!h.events.contains { if case .offline = $0 { true } else { false } })
        #expect(h.session.isOnline)
    }

    /// A device that only publishes must still notice a dead link: sending keeps
    /// `lastSent` fresh, but nothing comes back, so the PINGREQ goes out and times out.
    @Test func publishOnlyDeviceNoticesADeadLinkWithinOneAndAHalfKeepAlives() throws {
        var h = Harness(keepAlive: 300)
        online(&h)
        let lastHeard = h.now
        var offlineAt: UInt64?
        var t = h.now
        while offlineAt == nil && t < lastHeard + 1_000_000 {
            t += 1_000
            h.advance(to: t)
            if t % 60_000 == 0 && h.session.isOnline {
                _ = try h.session.publish(topic: "t", payload: Array("x".utf8), qos: .atMostOnce)
                h.run()
            }
            if h.events.contains(where: { if case .offline(.pingTimeout, _) = $0 { true } else { false } }) { offlineAt = t }
        }
        let detected = try #require(offlineAt) - lastHeard
        #expect(detected <= 450_000, "noticed after \(detected) ms")
        #expect(detected >= 270_000)
        #expect(h.closes == [.pingTimeout])
    }

    @Test func connackTimeout() {
        var h = Harness()
        h.run()
        h.upgrade()
        h.advance(to: h.now + 15_000)
        #expect(h.closes == [.connectTimeout])
    }

    @Test func backoffGrowsWithFullJitterAndIsCapped() {
        var h = Harness()
        h.autoOpen = false
        var delays: [UInt64] = []
        var ceilings: [UInt64] = []
        for _ in 0..<14 {
            guard case .openTransport = h.session.poll(now: h.now) else { Issue.record("expected open"); return }
            ceilings.append(h.session.backoff.ceiling)
            h.session.transportFailed(now: h.now, .transportError(111))
            guard case .event(.offline(_, let delay)) = h.session.poll(now: h.now) else { Issue.record("expected offline"); return }
            delays.append(delay)
            guard case .wait(let until) = h.session.poll(now: h.now) else { Issue.record("expected wait"); return }
            #expect(until == h.now + delay)
            h.now = until
        }
        #expect(ceilings.prefix(6) == [1_000, 2_000, 4_000, 8_000, 16_000, 32_000])
        #expect(ceilings.last == 60_000)
        for (d, c) in zip(delays, ceilings) { #expect(d >= 250 && d <= c) }
        #expect(Set(delays).count > 10, "jittered")
    }

    @Test func refusedCredentialsWaitAtLeastAMinute() {
        var h = Harness()
        h.run()
        h.upgrade(then: serverFrame(hex("20 02 00 04")))
        guard case .offline(.refused(.badUsernameOrPassword), let delay)? = h.events.last else { Issue.record("\(h.events)"); return }
        #expect(delay >= 60_000)
        #expect(h.closes == [.refused(.badUsernameOrPassword)])
    }

    @Test func backoffResetsAfterAStableConnection() {
        var h = Harness()
        h.autoOpen = false
        for _ in 0..<5 {
            h.run()
            h.session.transportFailed(now: h.now, .transportClosed)
            h.run()
            guard case .waiting(let until) = h.session.state else { return }
            h.now = until
        }
        #expect(h.session.backoff.attempts == 5)
        h.autoOpen = true
        online(&h)
        h.advance(to: h.now + 30_000)
        h.deliver(serverFrame(pingresp))
        #expect(h.session.backoff.attempts == 5)
        h.advance(to: h.now + 31_000)
        #expect(h.session.backoff.attempts == 0)
    }

    @Test func qos1IsResentWithDupAfterReconnectAndResubscribes() throws {
        let sub = MQTTEncoder.Subscription(topic: "down", qos: .atLeastOnce)
        var h = Harness(subscriptions: [sub])
        online(&h)
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
        online(&h)
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
        online(&h)
        _ = h.takePackets()
        h.deliver(serverFrame(hex("32 09 0003 612f62 000a 6869")))
        guard case .message(let p)? = h.events.last else { Issue.record("no message"); return }
        #expect(p.packetId == 10)
        #expect(h.takePackets() == [hex("40 02 000a")])
    }

    @Test func serverPingGetsAPongWithTheSamePayload() {
        var h = Harness()
        online(&h)
        _ = h.takePackets()
        h.deliver([0x89, 0x02, 0x61, 0x62])
        #expect(h.takePackets() == [[0xFF, 0x8A, 0x61, 0x62]])
    }

    @Test func serverCloseIsAnsweredAndReconnects() {
        var h = Harness()
        online(&h)
        _ = h.takePackets()
        h.deliver([0x88, 0x02, 0x03, 0xE9])
        #expect(h.closes == [.serverClosed(code: 1001)])
        #expect(h.takePackets() == [[0xFF, 0x88, 0x03, 0xE9]])
        guard case .waiting = h.session.state else { Issue.record("not waiting"); return }
    }

    @Test func malformedMQTTClosesWithProtocolError() {
        var h = Harness()
        online(&h)
        _ = h.takePackets()
        h.deliver(serverFrame(hex("36 05 0001 61 0001")))
        #expect(h.closes == [.mqttProtocol(.invalidQoS)])
        #expect(h.takePackets() == [[0xFF, 0x88, 0x03, 0xEA]])
    }

    @Test func oversizedInboundPublishIsSkippedAndTheSessionStays() {
        var h = Harness { $0.maxInboundPacket = 64 }
        online(&h)
        var frame: [UInt8] = [0x82, 126, 0x00, 200]
        frame += hex("30 c5 01 0001 74") + [UInt8](repeating: 0x55, count: 194)
        h.deliver(frame + serverFrame(pingresp))
        #expect(h.events.contains(.skippedOversized(length: 197)))
        #expect(h.session.isOnline)
    }

    @Test func textFrameIsRefused() {
        var h = Harness()
        online(&h)
        h.deliver(serverFrame(pingresp, opcode: 0x81))
        #expect(h.closes == [.textMessage])
    }

    @Test func stopSendsDisconnectAndCloses() {
        var h = Harness()
        online(&h)
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
