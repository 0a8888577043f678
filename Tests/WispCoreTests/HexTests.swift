import Testing
@testable import WispCore

@Suite("Hex: the one encoder")
struct HexTests {
    @Test func encodesLowercaseTwoDigitsPerByte() {
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode([0x00, 0x0F, 0x10, 0xA5, 0xFF]) == "000f10a5ff")
        #expect(Hex.encode([UInt8](0...255)[250...]) == "fafbfcfdfeff", "any collection of bytes, a slice too")
        #expect((0..<16).map { Hex.digit(UInt8($0)) } == Array("0123456789abcdef".utf8))
    }

    @Test func decodesEitherCase() {
        #expect(Hex.decode("000f10A5fF") == [0x00, 0x0F, 0x10, 0xA5, 0xFF])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode(Hex.encode([UInt8](0...255))) == [UInt8](0...255))
    }

    @Test(arguments: ["abc", "0g", " 0", "0x00", "é0"])
    func refusesWhatIsNotHex(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test func nibbles() {
        #expect(Hex.nibble(UInt8(ascii: "7")) == 7 && Hex.nibble(UInt8(ascii: "b")) == 11 && Hex.nibble(UInt8(ascii: "F")) == 15)
        #expect(Hex.nibble(UInt8(ascii: "g")) == nil && Hex.nibble(UInt8(ascii: "/")) == nil && Hex.nibble(UInt8(ascii: ":")) == nil)
    }
}
