/// The MQTT variable-length integer used for a packet's remaining length
/// (MQTT 3.1.1 §2.2.3): 7 bits a byte, least significant first, at most four bytes.
public enum RemainingLength {
    /// The largest remaining length four bytes can carry: 268,435,455.
    public static let maximum = 268_435_455

    /// How many bytes `value` takes (1...4); the caller has checked `value <= maximum`.
    public static func size(of value: Int) -> Int {
        switch value {
        case ..<128: return 1
        case ..<16_384: return 2
        case ..<2_097_152: return 3
        default: return 4
        }
    }

    /// Writes `value` in its minimal form; the caller has reserved `size(of:)` bytes.
    public static func put(_ value: Int, into buffer: inout ByteBuffer) {
        var rest = value
        repeat {
            var byte = UInt8(rest & 0x7F)
            rest >>= 7
            if rest > 0 { byte |= 0x80 }
            buffer.put(byte)
        } while rest > 0
    }

    /// One step of the strict decoder (as coreMQTT's `getRemainingLength`): feeds the
    /// `index`-th byte (0-based) into `value`. Returns true when the value is complete.
    /// Throws on a fifth byte or a non-minimal encoding (a last byte of 0 after others).
    public static func accumulate(_ byte: UInt8, index: Int, into value: inout Int) throws(MQTTDecodeError) -> Bool {
        if index >= 4 { throw .remainingLengthTooLong }
        value |= Int(byte & 0x7F) << (7 * index)
        if byte & 0x80 != 0 { return false }
        if byte == 0 && index > 0 { throw .remainingLengthNotMinimal }
        return true
    }
}
