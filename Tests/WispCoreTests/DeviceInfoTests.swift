import Foundation
import Testing
@testable import WispCore

/// `thing.deviceinfo.update`: the entries (sanitised, limited, the user's tags over wisp's
/// facts), the message's shape, parts that fit the buffer, the reply, and the board's files.
@Suite("Device info")
struct DeviceInfoTests {
    typealias Entry = DeviceInfoUpdate.Entry

    func json(_ w: JSONWriter) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(w.buffer.bytes))) as? [String: Any] ?? [:]
    }

    func params(_ w: JSONWriter) -> [[String: String]] {
        json(w)["params"] as? [[String: String]] ?? []
    }

    @Test func theMessageHasThePlatformsShape() {
        var w = JSONWriter(capacity: 512)
        let entries = [Entry(key: "board_model", value: "Raspberry_Pi_4"), Entry(key: "site", value: "plant-3")]
        #expect(DeviceInfoUpdate.write(id: 42, entries: entries, from: 0, into: &w) == 2)
        #expect(w.ok)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"id":"42","version":"1.0","params":[{"attrKey":"board_model","attrValue":"Raspberry_Pi_4"},{"attrKey":"site","attrValue":"plant-3"}],"method":"thing.deviceinfo.update"}"#)
    }

    @Test(arguments: [
        ("Debian GNU/Linux 12 (bookworm)", "Debian_GNU_Linux_12__bookworm_"),
        ("6.1.0-21-arm64", "6.1.0-21-arm64"),
        ("a#b@c%d&e:f.g_h-i", "a#b@c%d&e:f.g_h-i"),
        ("Zürich \"north\"", "Z_rich__north_"),
        ("温度", "__"),
        ("tab\there\nnl", "tab_here_nl"),
        ("🙂x", "_x"),
    ])
    func valuesAreSanitised(_ raw: String, _ sent: String) {
        #expect(DeviceInfoUpdate.sanitise(raw) == sent)
    }

    @Test func valuesAreCutAt128Characters() {
        #expect(DeviceInfoUpdate.sanitise(String(repeating: "x", count: 300)).count == 128)
        #expect(DeviceInfoUpdate.sanitise(String(repeating: "é", count: 300)) == String(repeating: "_", count: 128))
    }

    @Test func tagsReplaceFactsOfTheSameNameAndFollowTheRest() {
        let facts: [(String, String?)] = [("board_model", "Pi 4"), ("os_release", nil), ("kernel_release", "6.1.0"), ("arch", "aarch64")]
        let tags = [DeviceConfig.Tag(name: "site", value: "plant 3"), DeviceConfig.Tag(name: "arch", value: "armv7-on-arm64")]
        let (entries, dropped) = DeviceInfoUpdate.entries(facts: facts, tags: tags)
        #expect(dropped == 0)
        #expect(entries == [Entry(key: "board_model", value: "Pi_4"), Entry(key: "kernel_release", value: "6.1.0"),
                            Entry(key: "site", value: "plant_3"), Entry(key: "arch", value: "armv7-on-arm64")])
    }

    @Test func badKeysAndEmptyValuesAreLeftOut() {
        let facts: [(String, String?)] = [("1bad", "x"), ("ok", ""), ("fine", "y"), (String(repeating: "k", count: 31), "z")]
        #expect(DeviceInfoUpdate.entries(facts: facts, tags: []).entries == [Entry(key: "fine", value: "y")])
    }

    @Test func atMost200Entries() {
        let tags = (0..<205).map { DeviceConfig.Tag(name: "t\($0)", value: "v") }
        let (entries, dropped) = DeviceInfoUpdate.entries(facts: [("arch", "x")], tags: tags)
        #expect(entries.count == 200 && dropped == 6)
        #expect(entries.first == Entry(key: "arch", value: "x") && entries.last == Entry(key: "t198", value: "v"))
    }

    /// 200 entries of the longest key and value go out in parts, each whole JSON within the
    /// buffer, every entry once and in order.
    @Test func manyEntriesGoInPartsThatFit() {
        let entries = (0..<200).map { i in Entry(key: "k" + String(repeating: "x", count: 26) + String(format: "%03d", i), value: String(repeating: "v", count: 128)) }
        var w = JSONWriter(capacity: 512)
        var from = 0, parts = 0
        var seen: [String] = []
        while from < entries.count {
            let end = DeviceInfoUpdate.write(id: UInt64(parts + 1), entries: entries, from: from, into: &w)
            #expect(end > from && w.ok && w.buffer.count <= 512)
            let body = json(w)
            #expect(body["method"] as? String == "thing.deviceinfo.update" && body["id"] as? String == "\(parts + 1)")
            seen += params(w).map { $0["attrKey"]! }
            from = end
            parts += 1
        }
        #expect(seen == entries.map(\.key))
        #expect(parts == 100, "two of the largest entries per 512-byte message")
    }

    @Test func nothingFitsInATinyBuffer() {
        var w = JSONWriter(capacity: 100)
        #expect(DeviceInfoUpdate.write(id: 1, entries: [Entry(key: "k", value: String(repeating: "v", count: 100))], from: 0, into: &w) == 0)
        #expect(w.ok && params(w).isEmpty)
    }

    @Test func theDigestInputTellsEntriesApart() {
        let a = DeviceInfoUpdate.canonical([Entry(key: "ab", value: "c")])
        let b = DeviceInfoUpdate.canonical([Entry(key: "a", value: "bc")])
        #expect(a != b && a == Array("ab\0c\0".utf8))
    }

    func reply(_ text: String) -> DeviceInfoUpdate.Reply? {
        Array(text.utf8).withUnsafeBytes { DeviceInfoUpdate.reply($0) }
    }

    @Test func repliesAreRead() {
        #expect(reply(#"{"id":"7","code":200,"data":{},"message":"success","method":"thing.deviceinfo.update","version":"1.0"}"#)
                == DeviceInfoUpdate.Reply(id: 7, code: 200, message: "success"))
        #expect(reply(#"{"id":"8","code":460,"message":"bad value\n<0>"}"#) == DeviceInfoUpdate.Reply(id: 8, code: 460, message: #"bad value\\n<0>"#), "escapes stay as sent, a backslash doubled")
        #expect(reply(#"{"code":6100}"#) == DeviceInfoUpdate.Reply(id: nil, code: 6100, message: ""))
        #expect(reply("not json") == nil)
    }

    @Test func theModelEndsAtItsNUL() {
        #expect(DeviceInfoUpdate.model(Array("Raspberry Pi 4 Model B Rev 1.4\0".utf8)) == "Raspberry Pi 4 Model B Rev 1.4")
        #expect(DeviceInfoUpdate.model(Array("QEMU virt\n".utf8)) == "QEMU virt")
        #expect(DeviceInfoUpdate.model([0]) == nil && DeviceInfoUpdate.model([]) == nil)
    }

    @Test func prettyNameIsUnquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
        #expect(DeviceInfoUpdate.prettyName(osRelease: Array(text.utf8)) == "Debian GNU/Linux 12 (bookworm)")
        #expect(DeviceInfoUpdate.prettyName(osRelease: Array("PRETTY_NAME='Alpine 3'\n".utf8)) == "Alpine 3")
        #expect(DeviceInfoUpdate.prettyName(osRelease: Array("PRETTY_NAME=Plain\r\n".utf8)) == "Plain")
        #expect(DeviceInfoUpdate.prettyName(osRelease: Array(#"PRETTY_NAME="say \"hi\"""#.utf8)) == #"say "hi""#)
        #expect(DeviceInfoUpdate.prettyName(osRelease: Array("NAME=x\n".utf8)) == nil)
    }

    @Test func theDefaultRouteNamesTheInterface() {
        let table = """
        Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
        wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
        eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
        eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
        tun0\t00000000\t00000000\t0000\t0\t0\t1\t00000000\t0\t0\t0

        """
        #expect(DeviceInfoUpdate.defaultRouteInterface(Array(table.utf8)) == "eth0", "the lowest metric of the routes that are up")
        #expect(DeviceInfoUpdate.defaultRouteInterface(Array("Iface\tDestination\n".utf8)) == nil)
        #expect(DeviceInfoUpdate.defaultRouteInterface([]) == nil)
    }
}
