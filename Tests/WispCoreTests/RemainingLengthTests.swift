import TestSupport
import Testing
@testable import WispCore

@Suite("MQTT remaining length (MQTT 3.1.1 §2.2.3)")
struct RemainingLengthTests {
    /// The spec's table: boundaries of each byte count, with their encodings.
    static let vectors: [(value: Int, bytes: String)] = [
        (0, "00"), (127, "7f"),
        (128, "80 01"), (16_383, "ff 7f"),
        (16_384, "80 80 01"), (2_097_151, "ff ff 7f"),
        (2_097_152, "80 80 80 01"), (268_435_455, "ff ff ff 7f"),
    ]

    @Test(arguments: vectors)
    func encodes(value: Int, bytes: String) {
        let out = encoded { buf in RemainingLength.put(value, into: &buf) }
        #expect(out == hex(bytes))
        #expect(RemainingLength.size(of: value) == hex(bytes).count)
    }

    @Test(arguments: vectors)
    func decodes(value: Int, bytes: String) throws {
        var decoded = 0
        var done = false
        for (i, b) in hex(bytes).enumerated() {
            #expect(!done)
            done = try RemainingLength.accumulate(b, index: i, into: &decoded)
        }
        #expect(done)
        #expect(decoded == value)
    }

    @Test func refusesAFifthByte() {
        // PUBLISH with a 5-byte remaining length.
        #expect(throws: MQTTDecodeError.remainingLengthTooLong) { try decodeAll(hex("30 ff ff ff ff 01")) }
    }

    @Test(arguments: ["80 00", "80 80 00", "ff 80 80 00", "81 00"])
    func refusesNonMinimalForms(_ bytes: String) {
        #expect(throws: MQTTDecodeError.remainingLengthNotMinimal) { try decodeAll(hex("d0") + hex(bytes)) }
    }
}
