/// The small records wisp keeps under `state_dir` — the registered identity, the last
/// run, and what the OTA steps leave each other (what is being downloaded, what is staged,
/// the root step's journal, the last result) — as `key = value` lines. Each is written whole (temp file, fsync, rename), so a reader sees the old or the
/// new record, never a torn one; a record that does not parse counts as absent.
public struct StateRecord: Equatable, Sendable {
    public var fields: [(key: String, value: String)] = []

    public init() {}

    public static func == (a: StateRecord, b: StateRecord) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.key.equals($1.key) && $0.value.equals($1.value) }
    }

    public subscript(key: String) -> String? {
        get { fields.first(where: { $0.key.equals(key) })?.value }
        set {
            fields.removeAll(where: { $0.key.equals(key) })
            if let newValue { fields.append((key, newValue)) }
        }
    }

    /// A field as a non-negative integer (sizes, steps are written as `-3`: see `step`).
    public func integer(_ key: String) -> Int64? {
        guard let v = self[key] else { return nil }
        if v.startsWith("-") { return DecimalScan.whole(Array(v.utf8.dropFirst())).map { -$0 } }
        return DecimalScan.whole(Array(v.utf8))
    }

    /// Lines of `key = value`; values are one line of printable ASCII (no newline can be
    /// smuggled in: a value with a control byte is refused).
    public var text: String {
        var out = ""
        for f in fields { out += f.key + " = " + f.value + "\n" }
        return out
    }

    public static func isValue(_ s: String) -> Bool {
        for b in s.utf8 where b < 0x20 || b == 0x7F { return false }
        return true
    }

    /// The largest record, as `text` prints it.
    public static let maxBytes = 4096

    /// The length of `text`, without building it.
    public var printedCount: Int {
        fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 4 }
    }

    /// nil when a line is not `key = value`, or the text — as read, or as `text` would print
    /// it again (` = ` around each `=`, a byte that is not UTF-8 as U+FFFD) — is longer
    /// than `maxBytes`: a record that parses always prints back to itself.
    public static func parse(_ bytes: [UInt8]) -> StateRecord? {
        guard bytes.count <= maxBytes else { return nil }
        var record = StateRecord()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let key = DecimalScan.trimmed(line[line.startIndex..<eq])
            let value = DecimalScan.trimmed(line[(eq + 1)...])
            guard !key.isEmpty else { return nil }
            for b in value where b < 0x20 || b == 0x7F { return nil }
            record.fields.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return record.printedCount <= maxBytes ? record : nil
    }
}
