/// Reads numbers out of sysfs/procfs text in a `ByteBuffer` without allocating.
public enum NumberScan {
    /// The first decimal number at or after `from` (optional sign, digits, optional
    /// fraction), scaled by 10^decimals and truncated; with the index after it.
    public static func fixed(_ text: ByteBuffer, from: Int = 0, decimals: Int) -> (value: Int64, end: Int)? {
        var i = from
        let n = text.count
        while i < n && !(isDigit(text[i]) || (text[i] == UInt8(ascii: "-") && i + 1 < n && isDigit(text[i + 1]))) { i += 1 }
        if i >= n { return nil }
        var negative = false
        if text[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var value: Int64 = 0
        var digits = 0
        while i < n && isDigit(text[i]) {
            if digits < 18 { value = value * 10 + Int64(text[i] - 0x30) }
            digits += 1
            i += 1
        }
        var places = 0
        if i < n && text[i] == UInt8(ascii: ".") {
            i += 1
            while i < n && isDigit(text[i]) {
                if places < decimals {
                    value = value * 10 + Int64(text[i] - 0x30)
                    places += 1
                }
                i += 1
            }
        }
        while places < decimals {
            value *= 10
            places += 1
        }
        return (negative ? -value : value, i)
    }

    /// The index just after the first occurrence of `key` in `text`, or nil.
    public static func find(_ key: StaticString, in text: ByteBuffer) -> Int? {
        let n = key.utf8CodeUnitCount
        if n == 0 || text.count < n { return nil }
        var found: Int?
        key.withUTF8Buffer { k in
            var i = 0
            outer: while i + n <= text.count {
                for j in 0..<n where text[i + j] != k[j] {
                    i += 1
                    continue outer
                }
                found = i + n
                return
            }
        }
        return found
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}
