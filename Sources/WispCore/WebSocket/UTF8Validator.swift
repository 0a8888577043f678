/// Incremental UTF-8 validation (RFC 3629), for text messages and close reasons that
/// arrive in pieces (RFC 6455 §8.1). A table-free DFA over the well-formed byte ranges.
public struct UTF8Validator: Sendable {
    var needed = 0         // continuation bytes still expected
    var lower: UInt8 = 0x80  // allowed range of the next continuation byte
    var upper: UInt8 = 0xBF

    public init() {}

    /// True while the bytes so far could start a valid sequence.
    public mutating func feed(_ byte: UInt8) -> Bool {
        if needed == 0 {
            switch byte {
            case 0x00...0x7F: return true
            case 0xC2...0xDF: needed = 1
            case 0xE0: needed = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: needed = 2
            case 0xED: needed = 2; upper = 0x9F
            case 0xF0: needed = 3; lower = 0x90
            case 0xF1...0xF3: needed = 3
            case 0xF4: needed = 3; upper = 0x8F
            default: return false
            }
            return true
        }
        if byte < lower || byte > upper { return false }
        lower = 0x80
        upper = 0xBF
        needed -= 1
        return true
    }

    /// True when the bytes so far end on a character boundary.
    public var isComplete: Bool { needed == 0 }
}
