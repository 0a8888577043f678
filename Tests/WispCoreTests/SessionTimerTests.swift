import Testing
@testable import WispCore

@Suite("Session timers on a simulated clock: keep-alive, timeouts, backoff")
struct SessionTimerTests {
    /// A 1200 s keep-alive over ten simulated hours: PINGREQ every 1080 s of silence,
    /// never a disconnect while PINGRESPs come back. Runs in milliseconds.
    @Test func keepAliveOf1200SecondsOverTenHours() {
        var h = Harness(keepAlive: 1200)
        h.goOnline()
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
        h.goOnline()
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
        h.goOnline()
        h.advance(to: h.now + 30_000)
        h.deliver(serverFrame(pingresp))
        #expect(h.session.backoff.attempts == 5)
        h.advance(to: h.now + 31_000)
        #expect(h.session.backoff.attempts == 0)
    }
}
