import Testing
@testable import WispCore

/// A QoS 1 PUBLISH from the broker with packet identifier `id`.
func inboundPublish(_ id: UInt16, topic: String = "t", payload: [UInt8] = [0x31]) -> [UInt8] {
    let t = Array(topic.utf8)
    let body = [UInt8(t.count >> 8), UInt8(t.count & 0xFF)] + t + [UInt8(id >> 8), UInt8(id & 0xFF)] + payload
    return [0x32, UInt8(body.count)] + body
}

@Suite("Session hardening: backpressure, SUBACK, reserves, masks")
struct SessionHardeningTests {
    func online(_ h: inout Harness) {
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.session.isOnline)
        _ = h.takePackets()
    }

    /// A peer that stops reading while the broker keeps sending QoS 1 messages: the session
    /// stops taking input once its output cannot hold another PUBACK, drops nothing and
    /// keeps the link; when the peer reads again every PUBACK goes out once, in order.
    @Test func fullOutputHoldsInputBackInsteadOfDroppingTheLink() {
        var h = Harness()
        online(&h)
        h.blocked = true
        var stream: [UInt8] = []
        for id in 1...2000 { stream += serverFrame(inboundPublish(UInt16(id))) }
        var offset = 0
        // Feed as much as the session takes while nothing can be written.
        while offset < stream.count {
            let n = h.session.receive(now: h.now) { buffer in
                let n = min(buffer.count, stream.count - offset)
                for i in 0..<n { buffer[i] = stream[offset + i] }
                return n
            }
            if n <= 0 { break }
            offset += n
            h.run()
        }
        #expect(offset < stream.count, "input is held back while the output is full")
        #expect(!h.session.canReceive)
        #expect(h.closes.isEmpty, "no overflow, no disconnect")
        let heldBack = h.events.count
        #expect(heldBack < 2000)
        // The peer reads again: everything flows.
        h.blocked = false
        h.run()
        while offset < stream.count {
            let n = h.session.receive(now: h.now) { buffer in
                let n = min(buffer.count, stream.count - offset)
                for i in 0..<n { buffer[i] = stream[offset + i] }
                return n
            }
            offset += max(n, 0)
            h.run()
        }
        h.run()
        #expect(h.closes.isEmpty)
        var messages = 0
        for e in h.events { if case .message = e { messages += 1 } }
        #expect(messages == 2000)
        let pubacks = h.takePackets()
        #expect(pubacks.count == 2000)
        #expect(pubacks.enumerated().allSatisfy { i, p in p == [0x40, 0x02, UInt8((i + 1) >> 8), UInt8((i + 1) & 0xFF)] })
    }

    /// SIGTERM while the output is full of posts: DISCONNECT and the close frame still fit.
    @Test func stopSaysGoodbyeEvenWithAFullOutput() throws {
        var h = Harness()
        online(&h)
        h.blocked = true
        let payload = [UInt8](repeating: 0x41, count: 200)
        var published = 0
        while true {
            do { _ = try h.session.publish(topic: "t", payload: payload, qos: .atMostOnce) } catch { break }
            published += 1
        }
        #expect(published > 10)
        h.session.stop(now: h.now)
        h.blocked = false
        h.run()
        let packets = h.takePackets()
        #expect(packets.count == published + 2)
        #expect(packets[published] == [0xE0, 0x00], "DISCONNECT after the queued posts")
        #expect(packets[published + 1].prefix(2) == [0xFF, 0x88], "then the WebSocket close")
    }

    /// A link so backed up that nothing drains still gets its PINGREQ queued and is
    /// dropped after the ping timeout: no busy loop on a ping that never fits.
    @Test func pingIsQueuedFromTheReserveAndABackedUpLinkTimesOut() {
        var h = Harness(keepAlive: 60)
        online(&h)
        h.blocked = true
        while (try? h.session.publish(topic: "t", payload: [UInt8](repeating: 0, count: 200), qos: .atMostOnce)) != nil {}
        let before = h.session.output.count
        h.advance(to: h.now + h.session.config.pingAfter)
        #expect(h.session.output.count == before + 8, "PINGREQ framed from the reserve")
        h.advance(to: h.now + h.session.config.pingTimeout)
        #expect(h.closes == [.pingTimeout])
    }

    @Test func subackNamesEachRefusedSubscription() {
        let subs: [MQTTEncoder.Subscription] = [.init(topic: "a", qos: .atLeastOnce), .init(topic: "b", qos: .atLeastOnce),
                                                .init(topic: "c", qos: .atMostOnce)]
        var h = Harness(subscriptions: subs)
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.takePackets().count == 2)  // CONNECT, SUBSCRIBE (id 1)
        h.deliver(serverFrame(hex("90 05 0001 01 80 00")))
        #expect(h.events.last == .subscribed(refused: 0b010))
        #expect(h.closes.isEmpty)
        // Asked again after the next connect.
        let again = h.reconnect()
        #expect(again.count == 2 && again[1].first == 0x82, "SUBSCRIBE again after reconnecting")
    }

    /// Eleven filters, as many as the platform's thing model had: `a/0` … `a/10`.
    static let eleven = (0..<11).map { MQTTEncoder.Subscription(topic: "a/\($0)", qos: $0 % 2 == 0 ? .atLeastOnce : .atMostOnce) }

    /// A SUBACK for packet `id` with these return codes.
    static func suback(_ id: UInt16, _ codes: [UInt8]) -> [UInt8] {
        serverFrame([0x90, UInt8(2 + codes.count), UInt8(id >> 8), UInt8(id & 0xFF)] + codes)
    }

    /// Some brokers take at most 8 filters per SUBSCRIBE (AWS IoT Core): eleven go out as
    /// two SUBSCRIBEs, of 8 and 3, with their own packet ids, after every CONNACK.
    @Test func elevenFiltersGoOutAsTwoSubscribesOfEightAndThree() throws {
        var h = Harness(subscriptions: Self.eleven)
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        let packets = h.takePackets()
        let first = try encoded { try MQTTEncoder.encodeSubscribe(Self.eleven[0..<8], packetId: 1, into: &$0) }
        let second = try encoded { try MQTTEncoder.encodeSubscribe(Self.eleven[8..<11], packetId: 2, into: &$0) }
        #expect(packets.count == 3 && packets[1] == first && packets[2] == second)  // CONNECT, SUBSCRIBE ×2
        let again = h.reconnect()
        #expect(again.count == 3 && again[1].first == 0x82 && again[2].first == 0x82, "both again after reconnecting")
    }

    /// `.subscribed` comes once, when both SUBACKs are in, whichever the broker sends first;
    /// a refusal in the second SUBSCRIBE names subscription 9 (its second filter), not 1.
    @Test(arguments: [false, true])
    func subacksInEitherOrderNameTheRefusedFilter(secondFirst: Bool) {
        var h = Harness(subscriptions: Self.eleven)
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.takePackets().count == 3)
        let acks = [Self.suback(1, [1, 0, 1, 0, 1, 0, 1, 0]), Self.suback(2, [1, 0x80, 1])]
        h.deliver(acks[secondFirst ? 1 : 0])
        #expect(!h.events.contains { if case .subscribed = $0 { true } else { false } }, "not before the last SUBACK")
        h.deliver(acks[secondFirst ? 0 : 1])
        #expect(h.events.last == .subscribed(refused: 1 << 9))
        #expect(Self.eleven[9].topic == "a/9")
        #expect(h.closes.isEmpty && h.session.isOnline)
    }

    /// With more than eight filters, a SUBACK still has to answer one of ours exactly: an
    /// unknown id, one already answered, or the other SUBSCRIBE's number of codes ends the
    /// connection as a protocol error.
    @Test(arguments: [
        ("unknown packet id", [suback(3, [1, 1, 1])]),
        ("first answered twice", [suback(1, [1, 1, 1, 1, 1, 1, 1, 1]), suback(1, [1, 1, 1, 1, 1, 1, 1, 1])]),
        ("second with eight codes", [suback(2, [1, 1, 1, 1, 1, 1, 1, 1])]),
        ("first with three codes", [suback(1, [1, 1, 1])]),
        ("first with all eleven codes", [suback(1, [UInt8](repeating: 1, count: 11))]),
    ])
    func subackThatDoesNotAnswerOneOfOurSubscribesIsAProtocolError(name: String, subacks: [[UInt8]]) {
        var h = Harness(subscriptions: Self.eleven)
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        for s in subacks { h.deliver(s) }
        guard case .unexpectedSuback? = h.closes.first else {
            Issue.record("\(name): \(h.closes)")
            return
        }
        #expect(!h.events.contains { if case .subscribed = $0 { true } else { false } }, "\(name)")
    }

    /// Scratch is sized for the largest SUBSCRIBE, wherever it is: here the second, one
    /// long filter, larger than any post the outbound buffers are sized for.
    @Test func theLargestSubscribeMayBeTheLast() throws {
        let subs = (0..<8).map { MQTTEncoder.Subscription(topic: "s/\($0)", qos: .atMostOnce) }
            + [.init(topic: "l/" + String(repeating: "x", count: 1500), qos: .atLeastOnce)]
        var h = Harness(subscriptions: subs) { $0.maxOutboundPacket = 300 }
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.closes.isEmpty)
        let packets = h.takePackets()
        #expect(packets.count == 3 && packets[2].count > 1500)
    }

    @Test(arguments: [
        ("wrong packet id", "90 05 0002 01 01 00"),
        ("too few codes", "90 04 0001 01 01"),
        ("too many codes", "90 06 0001 01 01 00 00"),
    ])
    func subackThatDoesNotAnswerOurSubscribeIsAProtocolError(name: String, suback: String) {
        let subs: [MQTTEncoder.Subscription] = [.init(topic: "a", qos: .atLeastOnce), .init(topic: "b", qos: .atLeastOnce),
                                                .init(topic: "c", qos: .atMostOnce)]
        var h = Harness(subscriptions: subs)
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        h.deliver(serverFrame(hex(suback)))
        guard case .unexpectedSuback? = h.closes.first else {
            Issue.record("\(name): \(h.closes)")
            return
        }
    }

    /// Scratch is sized for the SUBSCRIBE, so only what MQTT cannot carry fails: a topic of
    /// more than 65,535 bytes.
    @Test func subscribeThatCannotBeEncodedEndsTheAttemptWithAReason() {
        let long = String(repeating: "x", count: 70_000)
        var h = Harness(subscriptions: [.init(topic: long, qos: .atLeastOnce)])
        h.run()
        h.upgrade(then: serverFrame(connackOK))
        #expect(h.closes == [.cannotSubscribe])
        #expect(DisconnectReason.cannotSubscribe.message.contains("SUBSCRIBE"))
    }

    /// The event queue holds 8; the session returns after each packet that made an event,
    /// so a burst of packets in one read never overflows it.
    @Test func aBurstOfPacketsInOneReadLosesNoEvent() {
        var h = Harness()
        online(&h)
        var ids: [UInt16] = []
        for _ in 0..<4 { ids.append(try! h.session.publish(topic: "t", payload: [1], qos: .atLeastOnce)) }
        h.run()
        var burst: [UInt8] = []
        for id in ids { burst += serverFrame([0x40, 0x02, 0x00, UInt8(id)]) }
        for id in 1...40 { burst += serverFrame(inboundPublish(UInt16(id))) }
        h.events = []
        h.deliver(burst)
        #expect(h.events.count == 44)
        #expect(h.session.events.count == 0)
    }

    /// RFC 6455 §5.3: every mask comes from the CSPRNG pool, 4 fresh bytes per frame, and
    /// the pool is refilled in batches, not per frame.
    @Test func masksComeFromTheRandomSourceInBatches() {
        let source = CountingRandom()
        var pool = MaskPool(batch: 256, fill: { source.fill($0) })
        var seen = Set<UInt32>()
        for _ in 0..<128 { seen.insert(pool.next()) }
        #expect(seen.count == 128, "no mask repeats")
        #expect(source.calls == 2, "256 bytes = 64 masks per refill")
        #expect(source.produced.count == 512)
        var fresh = MaskPool(batch: 256, fill: { source.fill($0) })
        let first = fresh.next()
        let p = source.produced
        #expect(first == UInt32(p[512]) << 24 | UInt32(p[513]) << 16 | UInt32(p[514]) << 8 | UInt32(p[515]))
    }

    /// The session masks its frames with the source's bytes: the upgrade's first frame
    /// (CONNECT) carries bytes the source produced, not a PRNG's.
    @Test func sessionFramesUseTheSourcesBytes() {
        let source = CountingRandom()
        var config = SessionConfig(keepAlive: 60, webSocket: .init(hostHeader: "broker", path: "/mqtt"))
        config.subscriptions = []
        var h = Harness()
        h.session = Session(config: config, now: h.now, random: { source.fill($0) })
        h.run()
        h.upgrade()
        // written = the CONNECT frame: 2 header bytes, then the mask.
        let mask = Array(h.written[2..<6])
        let p = source.produced
        // The first 8 bytes seeded the backoff jitter; the CONNECT's mask is the next 4.
        #expect(mask == Array(p[8..<12]))
    }
}
