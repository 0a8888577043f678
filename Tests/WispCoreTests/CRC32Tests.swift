import Testing
@testable import WispCore

@Suite("CRC-32")
struct CRC32Tests {
    @Test func crc32MatchesZlib() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
