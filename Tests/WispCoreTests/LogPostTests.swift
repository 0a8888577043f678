import Foundation
import Testing
@testable import WispCore

/// Device logs in the console: the post's shape and times, the switch, the ring the lines
/// wait in.
@Suite("Log posts and the log ring")
struct LogPostTests {
    @Test(arguments: [
        (UInt64(0), "1970-01-01T00:00:00.000+0000"),
        (1_765_000_812_123, "2025-12-06T06:00:12.123+0000"),
        (1_709_164_800_999, "2024-02-29T00:00:00.999+0000"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999+0000"),
    ])
    func utcTimeIsTheConsolesForm(ms: UInt64, text: String) {
        var w = JSONWriter(capacity: 64)
        LogPost.utcTime(ms, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == text)
    }

    @Test func aPostHoldsStringsOnly() throws {
        var w = JSONWriter(capacity: 512)
        LogPost.start(id: 7, into: &w)
        LogPost.entry(first: true, time: 1_765_000_812_123, level: .warning, module: 0, into: &w) { $0.string("offline: \"x\"\n") }
        LogPost.entry(first: false, time: 1_765_000_812_124, level: .error, module: 2, into: &w) { $0.string("rtt") }
        LogPost.finish(into: &w)
        let body = try #require(JSONSerialization.jsonObject(with: Data(w.buffer.bytes)) as? [String: Any])
        #expect(body["id"] as? String == "7" && body["version"] as? String == "1.0" && body["method"] as? String == "thing.log.post")
        let entries = try #require(body["params"] as? [[String: String]])
        #expect(entries.count == 2)
        #expect(entries[0] == ["utcTime": "2025-12-06T06:00:12.123+0000", "logLevel": "WARN", "module": "wisp", "code": "",
                               "traceContext": "", "logContent": "offline: \"x\"\n"])
        #expect(entries[1]["logLevel"] == "ERROR" && entries[1]["module"] == "DiagMqttHeartbeat")
    }

    @Test(arguments: [
        (#"{"id":"1","code":200,"data":{"getType":"content","content":{"mode":1}}}"#, Optional(true)),
        (#"{"id":"1","code":200,"data":{"getType":"content","content":{"mode":0}}}"#, false),
        (#"{"id":"9","version":"1.0","method":"thing.config.log.push","params":{"getType":"content","content":{"mode":1}}}"#, true),
        (#"{"params":{"content":{"mode":"0"}}}"#, false),
        (#"{"id":"1","code":460,"data":{},"message":"refused"}"#, nil),
        (#"{"data":{"content":{"mode":2}}}"#, nil),
        (#"{"data":{"content":{"mode":1.5}}}"#, nil),
        (#"{"data":{"content":"{\"mode\":1}"}}"#, nil),
    ])
    func theSwitchIsReadStrictly(text: String, mode: Bool?) throws {
        let bytes = Array(text.utf8)
        let found = try bytes.withUnsafeBytes { raw in LogPost.switchMode(try JSONReader(raw)) }
        #expect(found == mode)
    }

    @Test func theSwitchRequest() {
        var w = JSONWriter(capacity: 256)
        LogPost.writeSwitchGet(id: 3, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self)
                == #"{"id":"3","version":"1.0","params":{"configScope":"device","getType":"content"},"method":"thing.config.log.get"}"#)
    }

    /// What `LogRing` holds, oldest first, as text.
    func lines(_ ring: LogRing) -> [String] {
        var out: [String] = []
        guard !ring.isEmpty else { return out }
        var e: LogRing.Entry? = ring.oldest
        var i = 0
        while let entry = e {
            var bytes: [UInt8] = []
            ring.content(entry) { bytes += $0 }
            out.append(String(decoding: bytes, as: UTF8.self))
            e = ring.entry(after: entry, index: i)
            i += 1
        }
        return out
    }

    @Test func theRingKeepsLinesInOrderAcrossManyWraps() {
        var ring = LogRing(capacity: 200)
        var expected: [String] = []
        for n in 0..<500 {
            let line = "line \(n) " + String(repeating: "x", count: n % 37)
            ring.append(.warning, module: 1, at: UInt64(n), line.utf8)
            expected.append(line)
            var kept = lines(ring)
            #expect(kept == Array(expected.suffix(kept.count)), "the newest lines, whole, in order")
            ring.removeFirst(n % 3 == 0 ? 1 : 0)
            kept = lines(ring)
            expected = Array(expected.suffix(kept.count))
        }
        #expect(ring.oldest.module == 1 && ring.oldest.level == .warning)
    }

    @Test func aFullRingDropsTheOldestWholeAndCounts() {
        var ring = LogRing(capacity: 100)
        for n in 0..<10 { ring.append(.error, module: 0, at: UInt64(n), "abcdefghij-\(n)".utf8) }
        let kept = lines(ring)
        #expect(kept.last == "abcdefghij-9")
        #expect(ring.dropped == 10 - kept.count && ring.dropped > 0)
        #expect(ring.oldest.at == UInt64(10 - kept.count))
        #expect(ring.takeDropped() == 10 - kept.count && ring.dropped == 0)
        ring.removeAll()
        #expect(ring.isEmpty && lines(ring) == [])
    }

    @Test func aLongLineIsCutAtACharacterBoundary() {
        var ring = LogRing(capacity: 16_384)
        let long = String(repeating: "é", count: 3000)  // 6000 bytes
        ring.append(.info, module: 0, at: 5, long.utf8)
        let kept = lines(ring)
        #expect(kept.count == 1)
        #expect(kept[0].utf8.count <= LogPost.maxContent && kept[0].utf8.count >= LogPost.maxContent - 1)
        #expect(kept[0] == String(repeating: "é", count: kept[0].utf8.count / 2), "whole characters only")
        var small = LogRing(capacity: 100)
        small.append(.info, module: 0, at: 5, String(repeating: "y", count: 500).utf8)
        #expect(lines(small) == [String(repeating: "y", count: 100 - 12)], "at most what the ring holds")
    }

    @Test func contentThatDoesNotFitIsCutAndMarked() {
        var w = JSONWriter(capacity: 64)
        w.raw("{\"c\":\"")
        var content = LogPost.Content(w, reserve: 2)
        content.add("ab\"cdé".utf8, into: &w)
        content.add(String(repeating: "é", count: 40).utf8, into: &w)
        #expect(content.cut)
        w.raw("\"}")
        #expect(w.ok)
        let text = String(decoding: w.buffer.bytes, as: UTF8.self)
        #expect(text.hasSuffix("…\"}") && text.hasPrefix(#"{"c":"ab\"cdé"#))
        #expect(String(validatingUTF8: text) != nil)
        let body = try? JSONSerialization.jsonObject(with: Data(w.buffer.bytes)) as? [String: String]
        #expect(body?["c"]?.hasSuffix("é…") == true)
    }
}
