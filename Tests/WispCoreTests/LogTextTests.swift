import Testing
@testable import WispCore

@Suite("Network text in logs")
struct LogTextTests {
    @Test func forgedJournalLinesAreEscaped() {
        let text = LogText.escape(Array("ok\n<0>forged\r\u{1b}[31m\\".utf8))
        #expect(text == "ok\\x0a<0>forged\\x0d\\x1b[31m\\\\")
        #expect(!text.utf8.contains(10) && !text.utf8.contains(13))
    }

    @Test func longTextIsCapped() {
        let text = LogText.escape([UInt8](repeating: 0x41, count: 1000))
        #expect(text == String(repeating: "A", count: 200) + "… (800 more bytes)")
    }

    @Test func nonASCIIBytesAreShownAsHex() {
        #expect(LogText.escape(Array("°C".utf8)) == "\\xc2\\xb0C")
    }
}
