import Testing
@testable import WispCore

/// What the OTA steps leave each other (`StateRecord`) and what they check of a binary
/// (`ELFIdentity`).
@Suite("Update: records and binaries")
struct UpdateTests {
    @Test func recordsRoundTripAndRefuseControlBytes() {
        var r = StateRecord()
        r["version"] = "0.2.0"
        r["step"] = "-3"
        r["desc"] = "the package's sha256 is 00…"
        let parsed = StateRecord.parse(Array(r.text.utf8))
        #expect(parsed == r && parsed?.integer("step") == -3 && parsed?["version"] == "0.2.0")
        #expect(StateRecord.parse(Array("version = 1\u{7}\n".utf8)) == nil)
        #expect(StateRecord.parse(Array("no equals sign\n".utf8)) == nil)
        #expect(StateRecord.parse([UInt8](repeating: 0x61, count: 5000)) == nil)
    }

    /// Found by the fuzzer: 3,448 bytes of `k=v` lines and bytes that are not UTF-8 print as
    /// 4,139 (` = `, U+FFFD), longer than a record may be, so the print did not parse back.
    @Test func aRecordThatParsesAlwaysPrintsBackToItself() {
        let dense = Array(String(repeating: "k=v\n", count: 1000).utf8)  // 4,000 bytes → 6,000 printed
        #expect(StateRecord.parse(dense) == nil)
        let invalid = Array(String(repeating: "k=v\n", count: 500).utf8) + [UInt8](repeating: 0xFF, count: 1000)
        #expect(StateRecord.parse(invalid.map { $0 == 0x76 ? 0xFF : $0 }) == nil)
        var fits = StateRecord()
        fits["k"] = String(repeating: "x", count: StateRecord.maxBytes - 5)
        #expect(fits.printedCount == StateRecord.maxBytes && StateRecord.parse(Array(fits.text.utf8)) == fits)
        for n in [10, 400, 700, 1000] {
            let text = Array(String(repeating: "ab=c\u{FF}d\n", count: n).utf8)
            if let r = StateRecord.parse(text) { #expect(StateRecord.parse(Array(r.text.utf8)) == r) }
        }
    }

    @Test func elfIdentities() {
        func id(_ bytes: [UInt8]) -> ELFIdentity? { bytes.withUnsafeBytes { ELFIdentity(header: $0) } }
        var x86 = [UInt8](repeating: 0, count: 20)
        x86[0...5] = [0x7F, 0x45, 0x4C, 0x46, 2, 1]
        x86[18] = 62
        var arm = x86
        arm[18] = 183
        var armhf = arm
        armhf[4] = 1
        armhf[18] = 40
        #expect(id(x86)?.description == "ELF 64-bit LSB x86-64")
        #expect(id(arm)?.description == "ELF 64-bit LSB aarch64")
        #expect(id(armhf)?.description == "ELF 32-bit LSB arm")
        #expect(id(x86) != id(arm))
        #expect(id(Array("#!/bin/sh\necho wisp 0.2.0\n".utf8)) == nil)
        #expect(id(Array(x86[0..<19])) == nil)
    }
}
