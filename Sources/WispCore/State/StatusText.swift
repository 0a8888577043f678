/// The status file (`status_file`, default /run/wisp/status) that `wisp run` rewrites for
/// `wisp status`: one `key=value` line per field, `format=1` first and `end=1` last (a file
/// cut short has no `end`). Keys are 1–32 of `a-z 0-9 _`; values are escaped as `LogText`
/// escapes a log line — printable ASCII stays, `\` is `\\`, every other byte `\xNN` — so a
/// value is one line of printable ASCII whatever it held. The agent writes through a small
/// fixed buffer (`Writer`, no allocation; drained into the file between fields); `parse`
/// reads strictly and bounded: the file is written by the service user and may be read by root.
public enum StatusText {
    /// The largest status file.
    public static let maxBytes = 4096
    /// At most this many lines.
    public static let maxLines = 64
    /// A value whose escaped text is longer than this is cut and ends with `...`.
    public static let maxValue = 120
    /// The most one field takes in the writer's buffer: a key (≤ 32), `=`, the value, `...`, newline.
    public static let maxField = 32 + 1 + maxValue + 3 + 1

    public enum Problem: Error, Equatable, Sendable {
        case empty
        case tooLong
        /// No `end=1` last line, or no newline after it: the file was cut short.
        case truncated
        /// Line n is not `key=value` with a valid key and escapes.
        case badLine(Int)
        case duplicate(String)
        /// The first line is not `format=1`: another version of wisp wrote it.
        case format
        case missing(String)
        /// A field that must be a number is not.
        case notNumber(String)

        public var message: String {
            switch self {
            case .empty: "it is empty"
            case .tooLong: "it is longer than \(StatusText.maxBytes) bytes"
            case .truncated: "it was cut short (no end=1 line)"
            case .badLine(let n): "line \(n) is not key=value"
            case .duplicate(let k): "the field " + k + " appears twice"
            case .format: "its first line is not format=1 (written by another version of wisp?)"
            case .missing(let k): "the field " + k + " is missing"
            case .notNumber(let k): "the field " + k + " is not a number"
            }
        }
    }

    /// The fields of a status file, unescaped.
    public struct Record: Sendable {
        public var fields: [(key: String, value: [UInt8])] = []

        public init() {}

        public subscript(key: String) -> [UInt8]? { fields.first(where: { $0.key.equals(key) })?.value }

        /// A field as text (bytes that are not UTF-8 become U+FFFD).
        public func text(_ key: String) -> String? { self[key].map { String(decoding: $0, as: UTF8.self) } }

        /// A field as an unsigned number (at most 18 digits), nil when absent.
        public func number(_ key: String) throws(Problem) -> Int64? {
            guard let v = self[key] else { return nil }
            guard let n = DecimalScan.whole(v) else { throw .notNumber(key) }
            return n
        }
    }

    /// Parses a whole status file; `required` keys must be there.
    public static func parse(_ bytes: [UInt8], required: [String] = []) -> Result<Record, Problem> {
        if bytes.isEmpty { return .failure(.empty) }
        if bytes.count > maxBytes { return .failure(.tooLong) }
        if bytes[bytes.count - 1] != UInt8(ascii: "\n") { return .failure(.truncated) }
        var record = Record()
        var start = 0
        var lineNumber = 0
        var ended = false
        while start < bytes.count {
            lineNumber += 1
            if ended { return .failure(.badLine(lineNumber)) }  // nothing after end=1
            if lineNumber > maxLines { return .failure(.tooLong) }
            var end = start
            while bytes[end] != UInt8(ascii: "\n") { end += 1 }
            guard let (key, value) = line(bytes[start..<end]) else { return .failure(.badLine(lineNumber)) }
            start = end + 1
            if lineNumber == 1 {
                guard key.equals("format"), value == [UInt8(ascii: "1")] else { return .failure(.format) }
                continue
            }
            if key.equals("end") {
                guard value == [UInt8(ascii: "1")] else { return .failure(.badLine(lineNumber)) }
                ended = true
                continue
            }
            if record[key] != nil || key.equals("format") { return .failure(.duplicate(key)) }
            record.fields.append((key, value))
        }
        if !ended { return .failure(.truncated) }
        for k in required where record[k] == nil { return .failure(.missing(k)) }
        return .success(record)
    }

    /// One line without its newline: the key and the unescaped value, or nil.
    static func line(_ bytes: ArraySlice<UInt8>) -> (String, [UInt8])? {
        guard let eq = bytes.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let key = bytes[bytes.startIndex..<eq]
        guard isKey(key) else { return nil }
        var value: [UInt8] = []
        var i = eq + 1
        while i < bytes.endIndex {
            let b = bytes[i]
            guard b >= 0x20 && b < 0x7F else { return nil }
            if b != UInt8(ascii: "\\") {
                value.append(b)
                i += 1
            } else if i + 1 < bytes.endIndex && bytes[i + 1] == UInt8(ascii: "\\") {
                value.append(b)
                i += 2
            } else if i + 3 < bytes.endIndex, bytes[i + 1] == UInt8(ascii: "x"),
                      let hi = Hex.nibble(bytes[i + 2]), let lo = Hex.nibble(bytes[i + 3]) {
                value.append(hi << 4 | lo)
                i += 4
            } else {
                return nil
            }
            if value.count > maxValue + 3 { return nil }
        }
        return (String(decoding: key, as: UTF8.self), value)
    }

    static func isKey<C: Collection>(_ key: C) -> Bool where C.Element == UInt8 {
        guard !key.isEmpty, key.count <= 32 else { return false }
        return key.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || DecimalScan.isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// Writes a status file into a fixed buffer: no allocation. A field that does not fit
    /// marks the whole text failed (`ok` false): it must not be written out.
    public struct Writer {
        public var buffer: ByteBuffer
        public private(set) var ok = true

        public init(capacity: Int = StatusText.maxBytes) { buffer = ByteBuffer(capacity: capacity) }

        /// Starts a new file: `format=1`.
        public mutating func begin() {
            buffer.removeAll()
            ok = true
            field("format", number: 1)
        }

        /// Ends it: `end=1`.
        public mutating func finish() { field("end", number: 1) }

        public mutating func field<C: Collection>(_ key: StaticString, _ value: C) where C.Element == UInt8 {
            self.key(key)
            var shown = 0
            for b in value {
                let size = b == UInt8(ascii: "\\") ? 2 : b >= 0x20 && b < 0x7F ? 1 : 4
                if shown + size > StatusText.maxValue {
                    for _ in 0..<3 { byte(UInt8(ascii: ".")) }
                    break
                }
                shown += size
                if b == UInt8(ascii: "\\") {
                    byte(b)
                    byte(b)
                } else if b >= 0x20 && b < 0x7F {
                    byte(b)
                } else {
                    byte(UInt8(ascii: "\\"))
                    byte(UInt8(ascii: "x"))
                    byte(Hex.digit(b >> 4))
                    byte(Hex.digit(b & 0x0F))
                }
            }
            byte(UInt8(ascii: "\n"))
        }

        public mutating func field(_ key: StaticString, text: String) { field(key, text.utf8) }

        /// A number, `-` first when negative (an OTA step).
        public mutating func field(_ key: StaticString, signed: Int64) {
            self.key(key)
            if signed < 0 { byte(UInt8(ascii: "-")) }
            digits(signed.magnitude)
        }

        public mutating func field(_ key: StaticString, number: UInt64) {
            self.key(key)
            digits(number)
        }

        /// The decimal digits of `number`, then the newline.
        mutating func digits(_ number: UInt64) {
            var unit: UInt64 = 1
            while number / unit >= 10 { unit *= 10 }
            while unit > 0 {
                byte(UInt8(ascii: "0") + UInt8(number / unit % 10))
                unit /= 10
            }
            byte(UInt8(ascii: "\n"))
        }

        mutating func key(_ key: StaticString) {
            key.withUTF8Buffer { for b in $0 { byte(b) } }
            byte(UInt8(ascii: "="))
        }

        mutating func byte(_ b: UInt8) {
            guard buffer.available > 0 else { ok = false; return }
            buffer.put(b)
        }
    }
}
