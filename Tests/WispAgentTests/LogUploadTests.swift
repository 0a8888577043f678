import Foundation
import Testing
@testable import WispAgent
import WispCore

/// wisp's own log lines in the console: kept from the start, sent while the console's
/// switch is on, back-dated to when they were logged, spaced, never about themselves.
@Suite("Log upload and health")
struct LogUploadTests {
    let topics = Platform.topics

    final class Now { var ms: UInt64 = 50_000 }

    func make(threshold: Severity = .warning, capacity: Int = LogSink.defaultCapacity) -> (Now, LogSink, Log, LogUpload) {
        let now = Now()
        let sink = LogSink(threshold: threshold, capacity: capacity, monotonic: { now.ms })
        let log = Log(threshold: .error, sink: sink)  // nothing printed below error
        var upload = LogUpload(sink: sink, log: log)
        upload.linkUp = true
        return (now, sink, log, upload)
    }

    func switchMessage(_ mode: Int) -> [UInt8] { Array(#"{"id":"1","code":200,"data":{"getType":"content","content":{"mode":\#(mode)}}}"#.utf8) }

    func posts(_ out: Outbox) -> [[[String: String]]] {
        out.messages.filter { $0.topic == topics.logPost! }.map { decoded(out, $0)["params"] as? [[String: String]] ?? [] }
    }

    /// The posts the outbox holds, taken out of it (as the link would take them).
    func taken(_ out: inout Outbox) -> [[[String: String]]] {
        defer { out = Outbox(topics: topics, log: Log()) }
        return posts(out)
    }

    @Test func linesWaitForTheSwitchAndGoUpBackDated() throws {
        var (now, sink, log, logs) = make()
        var out = Outbox(topics: topics, log: Log())
        log.warning("offline: the server closed the connection")
        log.info("not kept: below the level")
        log.debug("not kept either")
        now.ms += 7_000
        logs.online(out: &out)
        let ask = try #require(out.messages.first)
        #expect(ask.topic == topics.logConfigGet! && decoded(out, ask)["method"] as? String == "thing.config.log.get")
        logs.advance(now: now.ms, wallNow: 1_765_000_812_123, online: true, out: &out)
        #expect(posts(out).isEmpty, "the switch is not known yet")

        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        #expect(logs.deadline == 0)
        logs.advance(now: now.ms, wallNow: 1_765_000_812_123, online: true, out: &out)
        let entries = try #require(posts(out).first)
        #expect(entries.map { $0["logContent"] } == ["offline: the server closed the connection"])
        #expect(entries[0]["utcTime"] == "2025-12-06T06:00:05.123+0000", "logged 7 s before it went up")
        #expect(entries[0]["logLevel"] == "WARN" && entries[0]["module"] == "wisp")
        #expect(out.messages.last?.qos == .atLeastOnce && out.messages.last?.waits == true)
        #expect(sink.ring.isEmpty && logs.deadline == nil)
    }

    @Test func theSwitchOffEmptiesTheRingAndKeepsNothingUntilTheNextConnect() {
        var (now, sink, log, logs) = make()
        var out = Outbox(topics: topics, log: Log())
        log.error("kept while the switch is asked")
        switchMessage(0).withUnsafeBytes { logs.handleSwitch($0) }
        #expect(sink.ring.isEmpty)
        log.error("not kept: the switch is off")
        #expect(sink.ring.isEmpty)
        logs.advance(now: now.ms, wallNow: 1_765_000_000_000, online: true, out: &out)
        #expect(posts(out).isEmpty)
        logs.online(out: &out)
        log.error("kept again: the switch is asked again")
        #expect(sink.ring.count == 1)
        now.ms += 1
    }

    @Test func postsAreSpacedFitTheBufferAndKeepTheOrder() throws {
        var (now, sink, log, logs) = make()
        var out = Outbox(topics: topics, log: Log())
        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        for n in 0..<12 { log.warning("w\(n)") }
        logs.advance(now: now.ms, wallNow: 1_765_000_000_000, online: true, out: &out)
        #expect(out.messages.allSatisfy { $0.payload.count <= Outbox.replyCapacity })
        var all = taken(&out)
        let first = try #require(all.first)
        #expect(first.count >= 3 && first.first?["logContent"] == "w0", "as many as 512 bytes hold")
        now.ms += 500
        logs.advance(now: now.ms, wallNow: 1_765_000_000_500, online: true, out: &out)
        #expect(taken(&out).isEmpty, "one post a second")
        now.ms += 500
        logs.advance(now: now.ms, wallNow: 1_765_000_001_000, online: false, out: &out)
        #expect(taken(&out).isEmpty, "not while the link is down")
        while !sink.ring.isEmpty && all.count < 10 {
            logs.advance(now: now.ms, wallNow: 1_765_000_001_000, online: true, out: &out)
            all += taken(&out)
            now.ms += 1000
        }
        #expect(all.flatMap { $0.map { $0["logContent"]! } } == (0..<12).map { "w\($0)" })
        #expect(all.allSatisfy { $0.count <= LogPost.maxEntries })
    }

    @Test func oneLogPostWaitsAtATimeAndNoneWhileTheLinkIsDown() throws {
        var (now, sink, log, logs) = make()
        var out = Outbox(topics: topics, log: Log())
        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        for n in 0..<12 { log.warning("w\(n)") }
        logs.advance(now: now.ms, wallNow: 1_765_000_000_000, online: true, out: &out)
        now.ms += 1000
        logs.advance(now: now.ms, wallNow: 1_765_000_001_000, online: true, out: &out)
        #expect(posts(out).count == 1, "the first still waits in the outbox: no second")
        // Offline: no deadline at all (the loop must not wake for a post it cannot send).
        logs.linkUp = false
        #expect(logs.deadline == nil)
        logs.online(out: &out)
        #expect(logs.linkUp && logs.deadline == nil, "asking the switch again")
        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        #expect(logs.deadline != nil && !sink.ring.isEmpty)
    }

    @Test func aLongLineIsCutToFitAndGoesAlone() throws {
        var (now, _, log, logs) = make(capacity: 700)
        var out = Outbox(topics: topics, log: Log())
        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        log.error(String(repeating: "L", count: 580))
        log.error("short one")
        logs.advance(now: now.ms, wallNow: 1_765_000_000_000, online: true, out: &out)
        let entries = try #require(posts(out).first)
        #expect(entries.count == 1)
        #expect(entries[0]["logContent"]?.hasSuffix("…") == true && entries[0]["logContent"]!.hasPrefix("LLLL"))
        _ = taken(&out)
        now.ms += 1000
        logs.advance(now: now.ms, wallNow: 1_765_000_001_000, online: true, out: &out)
        #expect(posts(out).last?.map { $0["logContent"]! } == ["short one"], "the next line waits for the next post")
    }

    @Test func linesDroppedFromTheFullRingAreCountedInTheNextPost() throws {
        var (now, _, log, logs) = make(capacity: 100)
        var out = Outbox(topics: topics, log: Log())
        switchMessage(1).withUnsafeBytes { logs.handleSwitch($0) }
        for n in 0..<10 { log.error("line number \(n)") }
        logs.advance(now: now.ms, wallNow: 1_765_000_000_000, online: true, out: &out)
        let entries = try #require(posts(out).first)
        #expect(entries[0]["logContent"]?.hasSuffix("log lines dropped: the ring of 100 bytes was full") == true)
        #expect(entries[0]["logLevel"] == "WARN")
        #expect(entries.dropFirst().first?["logContent"]?.hasPrefix("line number") == true)
        now.ms += 1
    }

    @Test func aRefusedLogPostIsNotItselfPosted() {
        let (_, sink, log, _) = make()
        var inbound = ByteBuffer(capacity: 128)
        try? inbound.append(utf8: #"{"code":460,"id":"4","message":"the device's log switch is off"}"#)
        LinkLog.reply(to: .logPostReply, inbound, 0..<inbound.count, log: log)
        #expect(sink.ring.isEmpty)
        LinkLog.reply(to: .eventReply, inbound, 0..<inbound.count, log: log)
        #expect(sink.ring.count == 1, "another refusal is")
    }

    @Test func diagnosticsPassingLinkSDKsThresholdsAreLoggedAtMostEvery30Seconds() throws {
        let (_, sink, log, _) = make()
        var health = Health(intervalSeconds: 0, now: 0, log: log)
        health.diagnose(0, 150, Health.connectLimits, "MQTT connect took", now: 1000)
        #expect(sink.ring.isEmpty, "under 200 ms")
        health.diagnose(0, 300, Health.connectLimits, "MQTT connect took", now: 1000)
        health.diagnose(0, 900, Health.connectLimits, "MQTT connect took", now: 20_000)
        #expect(sink.ring.count == 1, "one per 30 s")
        #expect(sink.ring.oldest.level == .warning && sink.ring.oldest.module == 1)
        health.diagnose(1, 1600, Health.heartbeatLimits, "keep-alive round trip", now: 20_000)
        #expect(sink.ring.count == 2, "each kind has its own spacing")
        health.diagnose(0, 900, Health.connectLimits, "MQTT connect took", now: 31_000)
        #expect(sink.ring.count == 3)
        var e = sink.ring.oldest
        e = try #require(sink.ring.entry(after: e, index: 0))
        #expect(e.level == .error && e.module == 2)
    }

    @Test func healthMeasuresTheLinkAndPostReplies() throws {
        let (_, _, log, _) = make()
        var health = Health(intervalSeconds: 10, now: 0, log: log)
        #expect(health.deadline == 10_000)
        health.note(Driver<FakeTransport>.Event.connecting, now: 1_000)
        health.note(Driver<FakeTransport>.Event.session(.online(sessionPresent: false, resent: 0)), now: 1_120)
        health.note(Driver<FakeTransport>.Event.session(.offline(.transportClosed, retryIn: 1000)), now: 5_000)
        health.note(Driver<FakeTransport>.Event.connecting, now: 6_000)
        health.note(Driver<FakeTransport>.Event.session(.online(sessionPresent: false, resent: 0)), now: 6_050)
        var inbound = ByteBuffer(capacity: 128)
        try inbound.append(utf8: #"{"code":200,"data":{},"id":"41","message":"success"}"#)
        health.postReply(inbound, 0..<inbound.count, newest: (41, 1_700_000_000_000), wallNow: 1_700_000_000_180, now: 6_100)
        health.postReply(inbound, 0..<inbound.count, newest: (42, 1_700_000_000_000), wallNow: 1_700_000_000_900, now: 6_200)
        let fields = health.linkFields(now: 9_050)
        #expect(fields.contains(.number("connect_ms", 50)) && fields.contains(.number("reconnects", 1)))
        #expect(fields.contains(.number("reply_ms", 180)), "the reply to another post is not timed")
        #expect(fields.contains(.number("online_s", 3)) && fields.contains(.number("rtt_ms", -1)))
        #expect(fields.contains(where: { if case .text("last_disconnect", let t) = $0 { return !t.isEmpty }; return false }))
    }
}
