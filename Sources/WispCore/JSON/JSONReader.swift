/// A small JSON reader for downlink messages, over bytes in a fixed buffer, allocating
/// nothing (RFC 8259, strict: no trailing commas, no comments, nesting depth ≤ 16).
///
/// It validates a whole document and lets the caller look up top-level members and the
/// members of one nested object (`params`), reading values as numbers, booleans or
/// string ranges. Malformed input is a thrown `JSONError` with the byte offset.
public struct JSONReader {
    public enum Value: Equatable, Sendable {
        /// A number as fixed-point: `scaled` = value × 10^`decimals` (decimals ≤ 6).
        case number(scaled: Int64, decimals: Int)
        case bool(Bool)
        /// A string's content range (between the quotes, escapes not decoded).
        case string(Range<Int>)
        case null
        /// An object or array's range, brackets included.
        case object(Range<Int>)
        case array(Range<Int>)
    }

    let bytes: UnsafeRawBufferPointer
    /// The document's value.
    public private(set) var root: Value = .null

    /// Validates `bytes` as one JSON value (whitespace around it allowed).
    public init(_ bytes: UnsafeRawBufferPointer) throws(JSONError) {
        self.bytes = bytes
        var p = 0
        skipSpace(&p)
        root = try value(at: &p, depth: 0)
        skipSpace(&p)
        if p != bytes.count { throw JSONError(offset: p, problem: "data after the JSON value") }
    }

    /// The members of the object at `range` (the whole document when nil), in order.
    /// Empty unless the range (or the document) is an object.
    public func members(of range: Range<Int>? = nil) -> MemberIterator {
        let start = range?.lowerBound ?? firstNonSpace()
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { return MemberIterator(reader: self, position: bytes.count) }
        return MemberIterator(reader: self, position: start + 1)
    }

    /// The value of member `key` of the object at `range` (the document when nil).
    public func member(_ key: StaticString, in range: Range<Int>? = nil) -> Value? {
        for (k, v) in members(of: range) where equals(k, key) { return v }
        return nil
    }

    /// True when the string content at `range` is exactly `text` (no escapes).
    public func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        if range.count != n { return false }
        var same = true
        text.withUTF8Buffer { t in
            for i in 0..<n where bytes[range.lowerBound + i] != t[i] { same = false; break }
        }
        return same
    }

    public func equals(_ range: Range<Int>, _ text: String) -> Bool {
        if range.count != text.utf8.count { return false }
        var i = range.lowerBound
        for b in text.utf8 {
            if bytes[i] != b { return false }
            i += 1
        }
        return true
    }

    public subscript(index: Int) -> UInt8 { bytes[index] }

    /// A string's content read as an unsigned decimal of at most 18 digits (the platform
    /// sends times as `"1700000000000"`), or nil.
    public func unsignedDecimal(_ range: Range<Int>) -> Int64? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        return DecimalScan.whole(bytes[range])
    }

    public struct MemberIterator: Sequence, IteratorProtocol {
        let reader: JSONReader
        var position: Int

        public mutating func next() -> (key: Range<Int>, value: JSONReader.Value)? {
            var p = position
            reader.skipSpace(&p)
            if p >= reader.bytes.count || reader.bytes[p] == UInt8(ascii: "}") { return nil }
            if reader.bytes[p] == UInt8(ascii: ",") {
                p += 1
                reader.skipSpace(&p)
            }
            guard p < reader.bytes.count, reader.bytes[p] == UInt8(ascii: "\"") else { return nil }
            // The document was validated: these cannot fail.
            guard case .string(let key)? = try? reader.value(at: &p, depth: 0) else { return nil }
            reader.skipSpace(&p)
            p += 1  // ':'
            reader.skipSpace(&p)
            guard let value = try? reader.value(at: &p, depth: 0) else { return nil }
            position = p
            return (key, value)
        }
    }

    // MARK: parsing

    func firstNonSpace() -> Int {
        var p = 0
        skipSpace(&p)
        return p
    }

    func skipSpace(_ p: inout Int) {
        while p < bytes.count {
            let b = bytes[p]
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { p += 1 } else { return }
        }
    }

    func value(at p: inout Int, depth: Int) throws(JSONError) -> Value {
        guard p < bytes.count else { throw JSONError(offset: p, problem: "unexpected end") }
        if depth > 16 { throw JSONError(offset: p, problem: "nested deeper than 16") }
        let start = p
        switch bytes[p] {
        case UInt8(ascii: "{"):
            p += 1
            skipSpace(&p)
            if p < bytes.count && bytes[p] == UInt8(ascii: "}") {
                p += 1
                return .object(start..<p)
            }
            while true {
                skipSpace(&p)
                guard p < bytes.count, bytes[p] == UInt8(ascii: "\"") else { throw JSONError(offset: p, problem: "expected a member name") }
                _ = try value(at: &p, depth: depth + 1)
                skipSpace(&p)
                guard p < bytes.count, bytes[p] == UInt8(ascii: ":") else { throw JSONError(offset: p, problem: "expected ':'") }
                p += 1
                skipSpace(&p)
                _ = try value(at: &p, depth: depth + 1)
                skipSpace(&p)
                guard p < bytes.count else { throw JSONError(offset: p, problem: "unexpected end") }
                if bytes[p] == UInt8(ascii: ",") { p += 1; continue }
                if bytes[p] == UInt8(ascii: "}") { p += 1; return .object(start..<p) }
                throw JSONError(offset: p, problem: "expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            p += 1
            skipSpace(&p)
            if p < bytes.count && bytes[p] == UInt8(ascii: "]") {
                p += 1
                return .array(start..<p)
            }
            while true {
                skipSpace(&p)
                _ = try value(at: &p, depth: depth + 1)
                skipSpace(&p)
                guard p < bytes.count else { throw JSONError(offset: p, problem: "unexpected end") }
                if bytes[p] == UInt8(ascii: ",") { p += 1; continue }
                if bytes[p] == UInt8(ascii: "]") { p += 1; return .array(start..<p) }
                throw JSONError(offset: p, problem: "expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            p += 1
            var utf8 = UTF8Validator()
            while p < bytes.count {
                let b = bytes[p]
                if b == UInt8(ascii: "\"") {
                    if !utf8.isComplete { break }
                    p += 1
                    return .string((start + 1)..<(p - 1))
                }
                if b < 0x20 { throw JSONError(offset: p, problem: "control character in a string") }
                if b == UInt8(ascii: "\\") {
                    p += 1
                    guard p < bytes.count else { break }
                    switch bytes[p] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        p += 1
                    case UInt8(ascii: "u"):
                        guard p + 4 < bytes.count else { throw JSONError(offset: p, problem: "short \\u escape") }
                        for i in 1...4 where !isHex(bytes[p + i]) { throw JSONError(offset: p + i, problem: "bad \\u escape") }
                        p += 5
                    default:
                        throw JSONError(offset: p, problem: "bad escape")
                    }
                    continue
                }
                if !utf8.feed(b) { throw JSONError(offset: p, problem: "invalid UTF-8") }
                p += 1
            }
            throw JSONError(offset: p, problem: "unterminated string")
        case UInt8(ascii: "t"): return try literal("true", .bool(true), &p)
        case UInt8(ascii: "f"): return try literal("false", .bool(false), &p)
        case UInt8(ascii: "n"): return try literal("null", .null, &p)
        default:
            return try number(at: &p)
        }
    }

    func literal(_ word: StaticString, _ result: Value, _ p: inout Int) throws(JSONError) -> Value {
        let n = word.utf8CodeUnitCount
        guard p + n <= bytes.count else { throw JSONError(offset: p, problem: "unexpected end") }
        var ok = true
        word.withUTF8Buffer { w in
            for i in 0..<n where bytes[p + i] != w[i] { ok = false; break }
        }
        if !ok { throw JSONError(offset: p, problem: "unexpected character") }
        p += n
        return result
    }

    /// RFC 8259 §6 number grammar; kept as fixed-point with up to 6 decimals.
    func number(at p: inout Int) throws(JSONError) -> Value {
        let start = p
        var negative = false
        if p < bytes.count && bytes[p] == UInt8(ascii: "-") {
            negative = true
            p += 1
        }
        guard p < bytes.count, isDigit(bytes[p]) else { throw JSONError(offset: start, problem: "unexpected character") }
        if bytes[p] == UInt8(ascii: "0") && p + 1 < bytes.count && isDigit(bytes[p + 1]) {
            throw JSONError(offset: p, problem: "leading zero")
        }
        var value: Int64 = 0
        var overflow = false
        while p < bytes.count && isDigit(bytes[p]) {
            if let v = DecimalScan.append(value, bytes[p]) { value = v } else { overflow = true }
            p += 1
        }
        var decimals = 0
        if p < bytes.count && bytes[p] == UInt8(ascii: ".") {
            p += 1
            guard p < bytes.count, isDigit(bytes[p]) else { throw JSONError(offset: p, problem: "digit expected after '.'") }
            while p < bytes.count && isDigit(bytes[p]) {
                if decimals < 6 {
                    if let v = DecimalScan.append(value, bytes[p]) { value = v } else { overflow = true }
                    decimals += 1
                }
                p += 1
            }
        }
        if p < bytes.count && (bytes[p] == UInt8(ascii: "e") || bytes[p] == UInt8(ascii: "E")) {
            p += 1
            if p < bytes.count && (bytes[p] == UInt8(ascii: "+") || bytes[p] == UInt8(ascii: "-")) { p += 1 }
            guard p < bytes.count, isDigit(bytes[p]) else { throw JSONError(offset: p, problem: "digit expected in exponent") }
            while p < bytes.count && isDigit(bytes[p]) { p += 1 }
            throw JSONError(offset: start, problem: "exponents are not supported")
        }
        if overflow { throw JSONError(offset: start, problem: "number out of range") }
        return .number(scaled: negative ? -value : value, decimals: decimals)
    }

    func isDigit(_ b: UInt8) -> Bool { DecimalScan.isDigit(b) }
    func isHex(_ b: UInt8) -> Bool { Hex.nibble(b) != nil }
}

/// Malformed JSON: where and what.
public struct JSONError: Error, Equatable, Sendable {
    public var offset: Int
    public var problem: String

    public var message: String { "malformed JSON at byte \(offset): " + problem }
}
