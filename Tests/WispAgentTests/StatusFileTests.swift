import Foundation
import Testing
@testable import WispAgent
import WispCore

@Suite("Status file: the format, the agent's writer, wisp status's reader")
struct StatusFileTests {
    typealias Event = Driver<FakeTransport>.Event

    /// A status file as the agent writes it, for this process (a live agent).
    func text(_ fields: [(StaticString, String)], pid: Int64? = nil, start: Int64? = nil, boot: String? = nil) -> [UInt8] {
        let me = ProcessIdentity.current!
        var w = StatusText.Writer()
        w.begin()
        w.field("pid", number: UInt64(pid ?? me.pid))
        w.field("start_time", number: UInt64(start ?? me.startTime))
        w.field("boot_id", text: boot ?? String(decoding: ProcessIdentity.bootId!, as: UTF8.self))
        w.field("version", text: "0.1.0")
        w.field("since", number: 1_700_000_000_000)
        w.field("endpoint", text: "wss://host:443/mqtt")
        w.field("backlog", number: 3)
        w.field("updated", number: 1_700_000_005_000)
        w.field("updated_mono", number: 5000)
        for (k, v) in fields { w.field(k, text: v) }
        w.finish()
        #expect(w.ok)
        return w.buffer.bytes
    }

    func num(_ r: StatusText.Record, _ key: String) -> Int64? { (try? r.number(key)) ?? nil }

    // MARK: the format

    @Test func valuesRoundTripEscapedAndLongOnesAreCut() throws {
        var w = StatusText.Writer()
        w.begin()
        w.field("last_error", Array("a\nb\\c\u{1b}[31m é".utf8))
        w.field("long", [UInt8](repeating: UInt8(ascii: "x"), count: 300))
        w.field("step", signed: -3)
        w.field("n", number: 0)
        w.finish()
        let bytes = w.buffer.bytes
        let printed = String(decoding: bytes, as: UTF8.self)
        #expect(printed.hasPrefix("format=1\nlast_error=a\\x0ab\\\\c\\x1b[31m \\xc3\\xa9\nlong=xxx"))
        #expect(printed.hasSuffix("...\nstep=-3\nn=0\nend=1\n"))
        #expect(bytes.allSatisfy { $0 == 0x0A || ($0 >= 0x20 && $0 < 0x7F) }, "one line of printable ASCII per field")
        let r = try StatusText.parse(bytes).get()
        #expect(r["last_error"] == Array("a\nb\\c\u{1b}[31m é".utf8))
        #expect(r["long"] == [UInt8](repeating: UInt8(ascii: "x"), count: StatusText.maxValue) + Array("...".utf8))
        #expect(r.text("step") == "-3" && num(r, "n") == 0 && num(r, "absent") == nil)
        #expect(throws: StatusText.Problem.notNumber("step")) { try r.number("step") }
    }

    /// The cut counts what is written (an escaped byte takes four), so one field never takes
    /// more than `maxField` of the agent's small buffer.
    @Test func aValueIsCutByItsEscapedLength() throws {
        var w = StatusText.Writer()
        w.begin()
        w.field("ctl", [UInt8](repeating: 1, count: 100))
        w.finish()
        let line = String(decoding: w.buffer.bytes, as: UTF8.self).split(separator: "\n")[1]
        #expect(line.utf8.count <= StatusText.maxField)
        let r = try StatusText.parse(w.buffer.bytes).get()
        #expect(r["ctl"] == [UInt8](repeating: 1, count: StatusText.maxValue / 4) + Array("...".utf8))
    }

    @Test func aFullBufferFailsTheWholeText() {
        var w = StatusText.Writer(capacity: 32)
        w.begin()
        w.field("endpoint", text: "wss://a-rather-long-host-name.example:443/mqtt")
        w.finish()
        #expect(!w.ok)
    }

    @Test(arguments: [
        ("", StatusText.Problem.empty),
        ("format=1\npid=1\n", .truncated),
        ("format=1\npid=1\nend=1", .truncated),
        ("format=1\npid=1\nen", .truncated),
        ("format=2\nend=1\n", .format),
        ("pid=1\nformat=1\nend=1\n", .format),
        ("format=1\nPid=1\nend=1\n", .badLine(2)),
        ("format=1\npid 1\nend=1\n", .badLine(2)),
        ("format=1\n=1\nend=1\n", .badLine(2)),
        ("format=1\n\nend=1\n", .badLine(2)),
        ("format=1\nerr=a\\qb\nend=1\n", .badLine(2)),
        ("format=1\nerr=a\\x4\nend=1\n", .badLine(2)),
        ("format=1\nerr=a\tb\nend=1\n", .badLine(2)),
        ("format=1\nerr=caf\u{e9}\nend=1\n", .badLine(2)),
        ("format=1\npid=1\npid=2\nend=1\n", .duplicate("pid")),
        ("format=1\nend=1\npid=1\n", .badLine(3)),
        ("format=1\nend=2\n", .badLine(2)),
        ("format=1\nend=1\n", .missing("pid")),
    ])
    func truncatedOrGarbageFilesAreRefused(text: String, problem: StatusText.Problem) {
        guard case .failure(let p) = StatusText.parse(Array(text.utf8), required: ["pid"]) else {
            Issue.record("accepted: \(text.debugDescription)")
            return
        }
        #expect(p == problem, "\(text.debugDescription)")
    }

    @Test func sizeAndLineCountAreBounded() {
        let long = "format=1\nx=" + String(repeating: "a", count: 4100) + "\nend=1\n"
        #expect(StatusText.parse(Array(long.utf8)).failureValue == .tooLong)
        let many = "format=1\n" + (0..<70).map { "k\($0)=1\n" }.joined() + "end=1\n"
        #expect(StatusText.parse(Array(many.utf8)).failureValue == .tooLong)
        let value = "format=1\nx=" + String(repeating: "a", count: 300) + "\nend=1\n"
        #expect(StatusText.parse(Array(value.utf8)).failureValue == .badLine(2), "a value longer than the writer writes")
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = StatusText.parse(Array("format=1\n".utf8) + bytes)  // no trap
        }
    }

    @Test func procStatFieldsAreCountedAfterTheCommand() {
        let stat = "4242 (a (b) c) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615"
        #expect(ProcessIdentity.parse(Array(stat.utf8)) == ProcessIdentity(pid: 4242, startTime: 987_654))
        #expect(ProcessIdentity.parse(Array("4242 (x) S 1 2".utf8)) == nil)
        #expect(ProcessIdentity.parse(Array("x (y) S".utf8)) == nil)
        let me = ProcessIdentity.current
        #expect(me?.pid == Int64(getpid()) && me == ProcessIdentity.of(Int64(getpid())))
    }

    // MARK: the agent's writer

    @Test func theAgentWritesOnChangeAtMostEveryFiveSeconds() throws {
        let dir = TemporaryDirectory("status")
        let clock = SimulatedClock()
        var device = Platform.device(stateDir: dir.path)
        device.statusFile = dir.file("status")
        var status = StatusFile(device, clock: clock.clock, log: Log())
        func advance(posts: Int = 0, acks: Int = 0, backlog: Int = 0, ota: OTAReport? = nil) -> UInt64 {
            status.advance(now: clock.now, wall: clock.epoch + clock.now, posts: posts, acks: acks, backlog: backlog, ota: ota)
        }
        func read() throws -> StatusText.Record { try StatusText.parse(dir.bytes("status") ?? [], required: StatusCommand.required).get() }

        #expect(advance() == UInt64.max)
        var r = try read()
        #expect(r.text("link") == "connecting" && r.text("endpoint") == "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt")
        #expect(num(r, "pid") == Int64(getpid()) && num(r, "since") == 1_700_001_000_000)
        #expect(dir.mode("status") == 0o644)
        #expect(!dir.exists("status.tmp"))
        #expect(!(dir.read("status") ?? "").contains("s3cr3t"))

        clock.advance(1000)
        status.note(Event.session(.online(sessionPresent: false, resent: 0)))
        #expect(advance(posts: 1) == clock.now + 4000, "the next write waits for the spacing")
        #expect(try read().text("link") == "connecting")
        clock.advance(4000)
        #expect(advance(posts: 1) == UInt64.max)
        r = try read()
        #expect(r.text("link") == "online" && num(r, "since") == 1_700_001_001_000 && num(r, "last_post") == 1_700_001_001_000)
        #expect(r["last_ack"] == nil)

        clock.advance(60_000)
        #expect(advance(posts: 1) == UInt64.max, "nothing changed: nothing written, no deadline")
        #expect(try read().text("updated") == "1700001005000")

        status.reply(.postReply, 460)
        status.note(Event.openFailed("connection refused"))
        status.note(Event.session(.offline(.connectFailed, retryIn: 1000)))
        #expect(advance(posts: 2, acks: 1, backlog: 4, ota: OTAReport(count: 1, step: -3, version: "0.2.0", desc: "bad signature")) == UInt64.max)
        r = try read()
        #expect(r.text("link") == "offline" && r.text("last_error") == "cannot connect: connection refused")
        #expect(r.text("last_reply") == "460" && r.text("backlog") == "4" && r.text("last_ack") == r.text("last_post"))
        #expect(r.text("ota_step") == "-3" && r.text("ota_version") == "0.2.0" && r.text("ota_desc") == "bad signature")

        clock.advance(5000)
        status.note(Event.session(.offline(.pingTimeout, retryIn: 1000)))
        #expect(advance(posts: 2, acks: 1, backlog: 4) == UInt64.max)
        r = try read()
        #expect(num(r, "since") == 1_700_001_065_000, "since the link went down, not since the last retry")
        #expect(r.text("last_error") == DisconnectReason.pingTimeout.message)
    }

    @Test func aStatusFileThatCannotBeWrittenIsSaidOnceAndNothingElseChanges() {
        let clock = SimulatedClock()
        var device = Platform.device(stateDir: "/nonexistent")
        device.statusFile = "/nonexistent/wisp/status"
        var status = StatusFile(device, clock: clock.clock, log: Log())
        #expect(status.advance(now: clock.now, wall: 1, posts: 0, acks: 0, backlog: 0, ota: nil) == UInt64.max)
        #expect(status.failures == 1)
    }

    // MARK: wisp status's reader

    @Test func aLiveAgentIsOnlineOrOffline() throws {
        let dir = TemporaryDirectory("status-live")
        dir.write("status", String(decoding: text([("link", "online"), ("last_post", "1700000004000")]), as: UTF8.self), mode: 0o644)
        let (verdict, record) = StatusCommand.read(dir.file("status"))
        #expect(verdict == .online && verdict.exitCode == .ok)
        let r = try #require(record)
        let shown = StatusCommand.describe(r, path: dir.file("status"), now: 7000)
        #expect(shown.contains("online since 2023-11-14 22:13:20 UTC (7 s ago)"), "\(shown)")
        #expect(shown.contains("last post:  2023-11-14 22:13:24 UTC (3 s ago), not acknowledged yet"), "\(shown)")
        let json = try JSONSerialization.jsonObject(with: Data(StatusCommand.render(r, verdict: verdict, path: "p", now: 7000).utf8)) as! [String: Any]
        #expect(json["running"] as? Bool == true && json["link"] as? String == "online" && json["backlog"] as? Int == 3)
        #expect(json["last_post"] as? Int == 1_700_000_004_000 && json["since_seconds"] as? Int == 7 && json["last_error"] is NSNull)

        dir.write("status", String(decoding: text([("link", "offline"), ("last_error", "a\nb")]), as: UTF8.self), mode: 0o644)
        let (offline, r2) = StatusCommand.read(dir.file("status"))
        #expect(offline == .offline && offline.exitCode == .failure)
        #expect(StatusCommand.describe(try #require(r2), path: "p", now: 5000).contains("last error: a\\x0ab, at"))
        // --json: printable ASCII only, as the text is (no DEL or 8-bit CSI/OSC for root's terminal).
        dir.write("status", String(decoding: text([("link", "offline"), ("last_error", "\u{9B}2J\u{7F}x")]), as: UTF8.self), mode: 0o644)
        let (_, r3) = StatusCommand.read(dir.file("status"))
        let printed = StatusCommand.render(try #require(r3), verdict: .offline, path: "p", now: 5000)
        #expect(printed.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(printed)")
        #expect(printed.contains(#""last_error":"\\xc2\\x9b2J\\x7fx""#), "\(printed)")
    }

    @Test func aFileLeftBehindMeansNotRunning() {
        let dir = TemporaryDirectory("status-stale")
        let path = dir.file("status")
        func verdict(_ bytes: [UInt8]) -> StatusCommand.Verdict {
            dir.write("status", String(decoding: bytes, as: UTF8.self), mode: 0o644)
            return StatusCommand.read(path).0
        }
        let me = ProcessIdentity.current!
        #expect(verdict(text([("link", "online")], start: me.startTime + 1)) == .notRunning(
            "pid \(me.pid), which wrote " + path + ", is another process now: the agent is gone"))
        #expect(verdict(text([("link", "online")], pid: 4_194_304)) == .notRunning("the agent that wrote " + path + " (pid 4194304) is gone"))
        #expect(verdict(text([("link", "online")], boot: "another-boot")) == .notRunning("the status file " + path + " is from an earlier boot"))
        #expect(verdict(text([("link", "online")])).exitCode == .ok)
        #expect(StatusCommand.read(dir.file("none")).0.exitCode == .notRunning)
        #expect(StatusCommand.read("/nonexistent/wisp/status").0.exitCode == .notRunning)
    }

    @Test func garbageATruncatedFileOrAFIFOIsUnknown() throws {
        let dir = TemporaryDirectory("status-garbage")
        let path = dir.file("status")
        let good = text([("link", "online")])
        for bad in [Array(good.dropLast(9)), Array(good.prefix(40)), [0xFF, 0x00, 0x0A], [], text([("link", "sideways")]),
                    [UInt8](repeating: 0x41, count: 5000), text([("since", "soon")]), text([("link", "online")], pid: 0)] {
            dir.write("status", String(decoding: bad, as: UTF8.self), mode: 0o644)
            let (v, r) = StatusCommand.read(path)
            #expect(v.exitCode == .statusUnknown && r == nil, "\(v)")
        }
        try FileManager.default.removeItem(atPath: path)
        #expect(mkfifo(path, 0o644) == 0)
        #expect(StatusCommand.read(path).0 == .unknown(path + " is not a regular file"), "a FIFO is not waited on")
        let json = StatusCommand.render(nil, verdict: .unknown("x"), path: path, now: 0)
        #expect(json == "{\"running\":null,\"status_file\":\"" + path + "\",\"reason\":\"x\"}")
    }

    @Test func timesAndDurationsForPeople() {
        #expect(StatusCommand.utc(0) == "1970-01-01 00:00:00 UTC")
        #expect(StatusCommand.utc(1_709_164_799_999) == "2024-02-28 23:59:59 UTC")
        #expect(StatusCommand.utc(1_709_164_800_000) == "2024-02-29 00:00:00 UTC")
        #expect(StatusCommand.utc(4_102_444_800_000) == "2100-01-01 00:00:00 UTC")
        #expect(StatusCommand.duration(4_999) == "4 s" && StatusCommand.duration(303_000) == "5 min 3 s")
        #expect(StatusCommand.duration(7_500_000) == "2 h 5 min" && StatusCommand.duration(273_600_000) == "3 d 4 h")
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
