import Testing
@testable import WispAgent
import WispCore

/// The outbox: every publish that is not telemetry. Replies go at the next flush or are
/// dropped; reports wait for the link in order, the oldest dropped when it is full.
@Suite("Outbox: replies and reports")
struct OutboxTests {
    let topics = Platform.topics

    /// Queues `{"n":N}` on `topic`.
    func send(_ out: inout Outbox, _ n: Int, _ topic: String, qos: QoS = .atMostOnce, waits: Bool) {
        out.json.reset()
        out.json.raw("{\"n\":")
        out.json.integer(Int64(n))
        out.json.raw("}")
        out.send(topic, qos: qos, waits: waits)
    }

    func numbers(_ out: Outbox) -> [Int] { out.messages.map { decoded(out, $0)["n"] as? Int ?? -1 } }

    func numbers(_ published: [Published]) -> [Int] { published.map { $0.json["n"] as? Int ?? -1 } }

    @Test func messagesKeepTheirOrderKindAndBytes() {
        var out = Outbox(topics: topics, log: Log())
        send(&out, 1, "a/reply", waits: false)
        send(&out, 2, "b/report", qos: .atLeastOnce, waits: true)
        send(&out, 3, "c/reply", waits: false)
        #expect(out.messages.map(\.topic) == ["a/reply", "b/report", "c/reply"])
        #expect(out.messages.map(\.waits) == [false, true, false])
        #expect(out.messages.map(\.qos) == [.atMostOnce, .atLeastOnce, .atMostOnce])
        #expect(out.messages.map { String(decoding: out.payload($0), as: UTF8.self) } == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
    }

    @Test func aMessageLongerThanTheReplyBufferIsNotQueued() {
        var out = Outbox(topics: topics, log: Log())
        out.json.reset()
        out.json.raw("{\"pad\":")
        out.json.string(String(repeating: "x", count: Outbox.replyCapacity))
        out.json.raw("}")
        out.send("too/long", qos: .atMostOnce)
        #expect(out.messages.isEmpty)
    }

    /// The link is down: the reply is worth nothing later and is dropped; the report waits
    /// and goes out at the first flush after CONNACK.
    @Test func repliesAreDroppedWhileTheLinkIsDownAndReportsGoOnceOnline() {
        let clock = SimulatedClock()
        var link = FakeLink(clock: clock)
        var out = Outbox(topics: topics, log: Log())
        send(&out, 1, "reply/1", waits: false)
        send(&out, 2, "report/2", waits: true)
        send(&out, 3, "report/3", qos: .atLeastOnce, waits: true)
        #expect(!link.driver.session.isOnline)
        out.flush(&link.driver.session)
        #expect(out.messages.map(\.topic) == ["report/2", "report/3"], "the reply is dropped, the reports wait")
        out.flush(&link.driver.session)
        #expect(out.messages.count == 2, "still waiting")

        link.online()
        out.flush(&link.driver.session)
        #expect(out.messages.isEmpty)
        let sent = link.published()
        #expect(sent.map(\.topic) == ["report/2", "report/3"])
        #expect(numbers(sent) == [2, 3])
        #expect(sent.map(\.qos) == [0, 1])
    }

    /// Reports that find the in-flight window full wait and hold back the reports behind
    /// them; a reply is not held back by them.
    @Test func reportsWaitForTheWindowInOrderAndRepliesPassThem() throws {
        let clock = SimulatedClock()
        var link = FakeLink(clock: clock)
        link.online()
        var out = Outbox(topics: topics, log: Log())
        let window = link.driver.session.config.inflightWindow
        for n in 1...(window + 2) { send(&out, n, "report/\(n)", qos: .atLeastOnce, waits: true) }
        out.flush(&link.driver.session)
        var sent = link.published()
        #expect(numbers(sent) == Array(1...window))
        #expect(numbers(out) == [window + 1, window + 2], "waiting for the window")

        send(&out, 99, "reply", waits: false)
        out.flush(&link.driver.session)
        #expect(numbers(link.published()) == [99], "the reply is not held back")

        link.acknowledge(try #require(sent.first).packetId)
        out.flush(&link.driver.session)
        sent = link.published()
        #expect(numbers(sent) == [window + 1], "one slot free: the next report in order")
        #expect(numbers(out) == [window + 2])
    }

    /// A QoS 1 reply (a property set's, a service call's) that finds every in-flight slot
    /// taken by posts waits for the next flush, not lost: the platform's call would time out.
    @Test func aQoS1ReplyWaitsForRoomInTheWindowWhileTheLinkIsUp() throws {
        let clock = SimulatedClock()
        var link = FakeLink(clock: clock)
        link.online()
        var out = Outbox(topics: topics, log: Log())
        let window = link.driver.session.config.inflightWindow
        var posts: [UInt16] = []
        for _ in 0..<window { posts.append(try link.driver.session.publish(topic: "post", payload: [1], qos: .atLeastOnce)) }
        _ = link.published()
        send(&out, 7, "service/reply", qos: .atLeastOnce, waits: false)
        out.flush(&link.driver.session)
        #expect(numbers(out) == [7], "kept while the window is full")
        #expect(link.published().isEmpty)

        link.acknowledge(posts[0])
        out.flush(&link.driver.session)
        let sent = link.published()
        #expect(numbers(sent) == [7] && sent.map(\.topic) == ["service/reply"])
        #expect(out.messages.isEmpty)
    }

    /// Full: the oldest *report* makes room; a reply queued before it stays.
    @Test func theOldestReportIsDroppedWhenTheOutboxIsFull() {
        var out = Outbox(topics: topics, log: Log())
        send(&out, 0, "reply", waits: false)
        for n in 1...Outbox.maxMessages { send(&out, n, "report", waits: true) }
        #expect(out.messages.count == Outbox.maxMessages)
        #expect(numbers(out) == [0] + Array(2...Outbox.maxMessages), "report 1, the oldest, made room for the newest")
        send(&out, 100, "report", waits: true)
        #expect(numbers(out) == [0] + Array(3...Outbox.maxMessages) + [100])
    }

    @Test func idsIncreaseAcrossMessages() {
        var out = Outbox(topics: topics, log: Log())
        #expect((out.nextId(), out.nextId()) == (1, 2))
        out.event("startup", [.text("reason", "power")], time: 1_700_000_000_000)
        out.event("startup", [.text("reason", "watchdog")], time: 1_700_000_000_001)
        #expect(out.messages.map { decoded(out, $0)["id"] as? String } == ["3", "4"])
        #expect(out.messages.allSatisfy { $0.topic == topics.eventPost("startup") && $0.waits && $0.qos == .atLeastOnce },
                "events are reports: QoS 1, waiting for the link")
        let value = (decoded(out, out.messages[1])["params"] as? [String: Any])?["value"] as? [String: Any]
        #expect(value?["reason"] as? String == "watchdog")
    }
}
