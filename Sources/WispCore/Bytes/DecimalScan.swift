/// The one scanner for decimal text, used by every parser in wisp: the key file (ports,
/// intervals, sensor scales), sysfs and procfs readings, HTTP status lines (upgrade and
/// proxy), the NTP answer, reply codes. Checked arithmetic throughout: a value that does
/// not fit is nil, never a trap. Works on any byte collection indexed by Int (a
/// `ByteBuffer`, `[UInt8]`, a slice, a raw buffer) without allocating.
public enum DecimalScan {
    @inline(__always)
    public static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Unsigned digits starting at `from`, at most `maxDigits` of them (more digits are
    /// nil: "port 123456" is not a port). The value and the index after the last digit;
    /// nil when there is no digit.
    public static func digits<C: RandomAccessCollection>(_ text: C, from: Int, maxDigits: Int = 18) -> (value: Int64, end: Int)?
    where C.Element == UInt8, C.Index == Int {
        var i = from, value: Int64 = 0, count = 0
        while i < text.endIndex && isDigit(text[i]) {
            if count == maxDigits { return nil }
            value = value * 10 + Int64(text[i] - 0x30)  // ≤ 18 digits: below Int64.max
            count += 1
            i += 1
        }
        return count > 0 ? (value, i) : nil
    }

    /// All of `text` as an unsigned integer of at most `maxDigits` digits, nothing else.
    public static func whole<C: RandomAccessCollection>(_ text: C, maxDigits: Int = 18) -> Int64?
    where C.Element == UInt8, C.Index == Int {
        guard let (v, end) = digits(text, from: text.startIndex, maxDigits: maxDigits), end == text.endIndex else { return nil }
        return v
    }

    /// `-?digits(.digits)?` at `from`, scaled by 10^`decimals` and truncated past them;
    /// nil when there is no digit or the value does not fit in Int64.
    public static func fixed<C: RandomAccessCollection>(_ text: C, from: Int, decimals: Int) -> (value: Int64, end: Int)?
    where C.Element == UInt8, C.Index == Int {
        var i = from
        var negative = false
        if i < text.endIndex && text[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < text.endIndex, isDigit(text[i]) else { return nil }
        var value: Int64 = 0
        while i < text.endIndex && isDigit(text[i]) {
            guard let v = append(value, text[i]) else { return nil }
            value = v
            i += 1
        }
        var places = 0
        if i + 1 < text.endIndex && text[i] == UInt8(ascii: ".") && isDigit(text[i + 1]) {
            i += 1
            while i < text.endIndex && isDigit(text[i]) {
                if places < decimals {
                    guard let v = append(value, text[i]) else { return nil }
                    value = v
                    places += 1
                }
                i += 1
            }
        }
        while places < decimals {
            let (v, o) = value.multipliedReportingOverflow(by: 10)
            if o { return nil }
            value = v
            places += 1
        }
        return (negative ? -value : value, i)
    }

    /// The first number at or after `from` in free text (a sysfs attribute, a line of
    /// /proc/meminfo): skips to a digit or a `-` before one, then `fixed`.
    public static func firstNumber<C: RandomAccessCollection>(_ text: C, from: Int = 0, decimals: Int) -> (value: Int64, end: Int)?
    where C.Element == UInt8, C.Index == Int {
        var i = from
        while i < text.endIndex {
            if isDigit(text[i]) || (text[i] == UInt8(ascii: "-") && i + 1 < text.endIndex && isDigit(text[i + 1])) {
                return fixed(text, from: i, decimals: decimals)
            }
            i += 1
        }
        return nil
    }

    /// `text` without spaces, tabs and CRs at either end.
    public static func trimmed<C: RandomAccessCollection>(_ text: C) -> C.SubSequence where C.Element == UInt8, C.Index == Int {
        var lo = text.startIndex, hi = text.endIndex
        while lo < hi && isBlank(text[lo]) { lo += 1 }
        while hi > lo && isBlank(text[hi - 1]) { hi -= 1 }
        return text[lo..<hi]
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }

    /// `value * 10 + digit`, or nil when it does not fit in Int64.
    public static func append(_ value: Int64, _ digit: UInt8) -> Int64? {
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(digit - 0x30))
        return o1 || o2 ? nil : a
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
}
