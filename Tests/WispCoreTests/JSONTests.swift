import Testing
@testable import WispCore

@Suite("JSON reader and writer (fixed buffers)")
struct JSONTests {
    func read<R>(_ text: String, _ body: (JSONReader) throws -> R) throws -> R {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw in try body(try JSONReader(raw)) }
    }

    @Test func propertySetFromThePlatform() throws {
        let doc = #"{"method":"thing.service.property.set","id":"1234","params":{"relay":1,"target":-22.5,"on":true},"version":"1.0"}"#
        try read(doc) { json in
            guard case .string(let id)? = json.member("id") else { Issue.record("id"); return }
            #expect(json.equals(id, "1234"))
            guard case .object(let params)? = json.member("params") else { Issue.record("params"); return }
            let members = Array(json.members(of: params))
            #expect(members.count == 3)
            #expect(json.equals(members[0].key, "relay") && members[0].value == .number(scaled: 1, decimals: 0))
            #expect(members[1].value == .number(scaled: -225, decimals: 1))
            #expect(members[2].value == .bool(true))
            #expect(json.member("missing") == nil)
        }
    }

    static let malformed: [String] = [
        "", "{", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "[1,2,]", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\u{01}\"}", "{\"a\":tru}", "{\"a\":1} x", "{\"a\":1e5}", "\"\\u12\"",
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "{\"a\":99999999999999999999}",
        "{\"a\":\"\u{FFFD}\"", "{'a':1}",
    ]

    @Test(arguments: malformed)
    func refusesMalformed(_ text: String) {
        #expect(throws: JSONError.self) { try read(text) { _ in 0 } }
    }

    @Test func invalidUTF8InAStringIsRefused() {
        let bytes: [UInt8] = Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        #expect(throws: JSONError.self) { try bytes.withUnsafeBytes { _ = try JSONReader($0) } }
    }

    @Test(arguments: [(2345, 2, "23.45"), (2350, 2, "23.5"), (2300, 2, "23"), (-5, 3, "-0.005"), (0, 3, "0"), (1, 0, "1"), (-123_456, 3, "-123.456")])
    func fixedPointIsWrittenWithoutFloats(scaled: Int64, decimals: Int, text: String) {
        var w = JSONWriter(capacity: 32)
        w.fixed(scaled, decimals: decimals)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == text)
    }

    @Test func stringsAreEscaped() {
        var w = JSONWriter(capacity: 64)
        w.string("a\"b\\c\n")
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #""a\"b\\c\u000a""#)
    }
}
