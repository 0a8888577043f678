/// Writes JSON into a fixed `ByteBuffer` without allocating: strings (escaped), integers
/// and fixed-point decimals. Embedded Swift has no Foundation, and steady state must not
/// allocate, so property posts are built here byte by byte.
public struct JSONWriter {
    public var buffer: ByteBuffer
    var failed = false

    public init(capacity: Int) { buffer = ByteBuffer(capacity: capacity) }

    /// Starts again; the capacity stays.
    public mutating func reset() {
        buffer.removeAll()
        failed = false
    }

    /// False when something did not fit: the document is incomplete and must not be sent.
    public var ok: Bool { !failed }

    /// Starts an Alink message: `{"id":"N"` (the platform's ids are decimal strings); the
    /// caller goes on with `","version":…`.
    public mutating func startMessage(id: UInt64) {
        reset()
        raw("{\"id\":\"")
        integer(Int64(truncatingIfNeeded: id))
    }

    /// Goes back to `length` bytes written, with nothing failed: undoes a part that did not
    /// fit (a history batch's last sample).
    public mutating func rollBack(to length: Int) {
        buffer.truncate(to: length)
        failed = false
    }

    public mutating func raw(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        guard n <= buffer.available else { failed = true; return }
        s.withUTF8Buffer { for b in $0 { buffer.put(b) } }
    }

    public mutating func byte(_ b: UInt8) {
        guard buffer.available > 0 else { failed = true; return }
        buffer.put(b)
    }

    /// A JSON string with `"` `\` and control characters escaped (RFC 8259 §7).
    public mutating func string(_ s: String) { string(bytes: s.utf8) }

    /// The same for bytes (a log line kept in a ring).
    public mutating func string<S: Sequence<UInt8>>(bytes s: S) {
        byte(UInt8(ascii: "\""))
        escaped(s)
        byte(UInt8(ascii: "\""))
    }

    /// The inside of a JSON string: `"` `\` and control characters escaped.
    public mutating func escaped<S: Sequence<UInt8>>(_ s: S) {
        for b in s {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                byte(UInt8(ascii: "\\"))
                byte(b)
            case 0..<0x20, 0x7F:
                raw("\\u00")
                byte(Hex.digit(b >> 4))
                byte(Hex.digit(b & 0xF))
            default:
                byte(b)
            }
        }
    }

    public mutating func integer(_ value: Int64) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        unsigned(value.magnitude)
    }

    /// The decimal digits of `value` (no sign).
    mutating func unsigned(_ value: UInt64) {
        var magnitude = value
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
        }
        withUnsafeBytes(of: &digits) { d in
            var i = count - 1
            while i >= 0 {
                byte(d[i])
                i -= 1
            }
        }
    }

    /// A decimal from a value scaled by 10^decimals (no floats: `fixed(2345, decimals: 2)`
    /// writes 23.45). Trailing zeros of the fraction are dropped (23.50 → 23.5, 23.00 → 23).
    /// Every Int64 is written, Int64.min included; at most 19 decimals.
    public mutating func fixed(_ scaled: Int64, decimals: Int) {
        var divisor: UInt64 = 1
        for _ in 0..<min(max(decimals, 0), 19) { divisor *= 10 }
        let m = scaled.magnitude
        var fraction = m % divisor
        var places = min(max(decimals, 0), 19)
        while places > 0 && fraction % 10 == 0 && fraction != 0 {
            fraction /= 10
            places -= 1
        }
        if scaled < 0 && m != 0 { byte(UInt8(ascii: "-")) }
        unsigned(m / divisor)
        if fraction == 0 { return }
        byte(UInt8(ascii: "."))
        var d: UInt64 = 1
        for _ in 1..<places { d *= 10 }
        while d > 0 {
            byte(UInt8(ascii: "0") + UInt8(fraction / d))
            fraction %= d
            d /= 10
        }
    }
}
