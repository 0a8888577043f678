import Foundation
import Testing
@testable import WispAgent
import WispCore

/// Device info through the outbox: the board's facts and the key file's tags at the first
/// connect, nothing at a connect where nothing changed since the platform's 200, again when
/// a tag changed or the last update was refused or unanswered; many entries in parts, each
/// after the 200 to the one before.
@Suite("Device info")
struct DeviceInfoFeatureTests {
    let dir = TemporaryDirectory("deviceinfo")
    let topic = "/sys/a1PK/board-7/thing/deviceinfo/update"

    /// A board tree whose model file is NUL-terminated and whose default route goes through `lo`.
    var board: Board {
        try! FileManager.default.createDirectory(atPath: dir.file("board/proc/device-tree"), withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(atPath: dir.file("board/proc/net"), withIntermediateDirectories: true)
        dir.write("board/proc/device-tree/model", "Test Board (rev 2)\0")
        dir.write("board/proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                  + "lo\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
        return Board(root: dir.path + "/board")
    }

    func feature(_ tags: [(String, String)] = [("tag.site", "plant 3"), ("tag.rack", "r7")], stateDir: String = "state") -> DeviceInfo {
        if stateDir == "state" { try! FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true) }
        return DeviceInfo(Platform.device(stateDir: dir.file(stateDir), tags), board: board, log: Log())
    }

    /// The entries of each message queued, as (key, value) pairs.
    func sent(_ out: Outbox) -> [[(String, String)]] {
        out.messages.map { m in
            (decoded(out, m)["params"] as? [[String: String]] ?? []).map { ($0["attrKey"] ?? "?", $0["attrValue"] ?? "?") }
        }
    }

    func id(_ out: Outbox, _ i: Int = 0) -> String { decoded(out, out.messages[i])["id"] as? String ?? "" }

    func reply(_ f: inout DeviceInfo, id: String, code: Int = 200, out: inout Outbox) {
        let text = #"{"id":"\#(id)","code":\#(code),"data":{},"message":"\#(code == 200 ? "success" : "bad attrValue")","method":"thing.deviceinfo.update","version":"1.0"}"#
        Array(text.utf8).withUnsafeBytes { f.handle($0, out: &out) }
    }

    /// A new outbox that goes on with `out`'s ids (as if the link had taken its messages).
    func taken(_ out: Outbox) -> Outbox {
        var next = Outbox(topics: Platform.topics, log: Log())
        next.ids = out.ids
        return next
    }

    /// One connect: online, then the platform answers each part with `code`.
    @discardableResult
    func connect(_ f: inout DeviceInfo, code: Int = 200) -> [[(String, String)]] {
        var out = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &out)
        var i = 0
        while i < out.messages.count {
            let m = out.messages[i]
            #expect(m.topic == topic && m.qos == .atMostOnce && !m.waits)
            reply(&f, id: id(out, i), code: code, out: &out)
            i += 1
        }
        return sent(out)
    }

    @Test func theFirstConnectSendsTheBoardsFactsAndTheTags() throws {
        var f = feature()
        var out = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &out)
        try #require(out.messages.count == 1)
        let body = decoded(out, out.messages[0])
        #expect(body["method"] as? String == "thing.deviceinfo.update" && body["version"] as? String == "1.0")
        let entries = Dictionary(uniqueKeysWithValues: sent(out)[0])
        #expect(sent(out)[0].map(\.0) == ["board_model", "os_release", "kernel_release", "arch", "wisp_version", "ipv4", "site", "rack"])
        #expect(entries["board_model"] == "Test_Board__rev_2_")
        #expect(entries["ipv4"] == "127.0.0.1", "the address of the default route's interface")
        #expect(entries["wisp_version"] == Agent.version)
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        #expect(entries["arch"] == machine)
        #expect(entries["site"] == "plant_3" && entries["rack"] == "r7", "the tags, sanitised")
        #expect(!dir.exists("state/deviceinfo"), "nothing recorded before the platform's 200")
    }

    @Test func aConnectWithNothingChangedSendsNothing() {
        var f = feature()
        #expect(connect(&f).count == 1)
        let record = dir.record("state/deviceinfo")
        #expect(record?["sha256"]?.count == 64 && record?["entries"] == "8")
        #expect(connect(&f).isEmpty, "the same process, connecting again")
        var restarted = feature()
        #expect(connect(&restarted).isEmpty, "a restart")
    }

    @Test func aChangedTagSendsAgain() throws {
        var f = feature()
        connect(&f)
        var changed = feature([("tag.site", "plant 4"), ("tag.rack", "r7")])
        let parts = connect(&changed)
        try #require(parts.count == 1)
        #expect(parts[0].contains { $0 == ("site", "plant_4") })
        var again = feature([("tag.site", "plant 4"), ("tag.rack", "r7")])
        #expect(connect(&again).isEmpty)
    }

    @Test func aRefusedOrUnansweredUpdateIsSentAgainAtTheNextConnect() {
        var f = feature()
        #expect(connect(&f, code: 460).count == 1)
        #expect(!dir.exists("state/deviceinfo"))
        var out = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &out)
        #expect(out.messages.count == 1, "refused: sent again")
        reply(&f, id: "999", out: &out)  // a reply to another update changes nothing
        #expect(!dir.exists("state/deviceinfo"))
        var later = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &later)
        #expect(later.messages.count == 1, "unanswered: sent again")
        reply(&f, id: id(later), out: &later)
        #expect(dir.exists("state/deviceinfo"))
        reply(&f, id: id(later), out: &later)  // a repeated 200 sends nothing more
        #expect(later.messages.count == 1)
    }

    /// 190 tags of the longest values: parts of what fits in the outbox's message, each sent
    /// when the one before was accepted, every entry once; the record after the last.
    @Test func manyTagsGoInPartsEachAfterThePlatformsAnswer() throws {
        let tags = (0..<190).map { ("tag.t\($0)", String(repeating: "v", count: 120) + "\($0)") }
        var f = feature(tags)
        var out = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &out)
        var keys: [String] = []
        var parts = 0
        while !out.messages.isEmpty {
            #expect(out.messages.count == 1, "one part at a time")
            #expect(out.messages[0].payload.count <= Outbox.replyCapacity)
            #expect(!dir.exists("state/deviceinfo"))
            keys += sent(out)[0].map(\.0)
            parts += 1
            let n = id(out)
            out = taken(out)
            reply(&f, id: n, out: &out)
        }
        #expect(keys == ["board_model", "os_release", "kernel_release", "arch", "wisp_version", "ipv4"] + (0..<190).map { "t\($0)" })
        #expect(parts > 60)
        #expect(dir.record("state/deviceinfo")?["entries"] == "196")
        #expect(connect(&f).isEmpty)
    }

    @Test func withoutStateDirNothingIsRecordedAndTheNextConnectSendsAgain() {
        var f = feature(stateDir: "missing")
        #expect(connect(&f).count == 1)
        #expect(!dir.exists("missing"), "state_dir is the unit's to make")
        #expect(connect(&f).count == 1)
    }

    @Test func aTagNamedLikeAFactReplacesIt() throws {
        var f = feature([("tag.board_model", "custom carrier")])
        var out = Outbox(topics: Platform.topics, log: Log())
        f.online(out: &out)
        try #require(out.messages.count == 1)
        let entries = sent(out)[0]
        #expect(entries.filter { $0.0 == "board_model" }.map(\.1) == ["custom_carrier"])
        #expect(entries.last?.0 == "board_model", "in the tags' place")
    }
}
