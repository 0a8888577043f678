/// Device info (`thing.deviceinfo.update` on `/sys/{pk}/{dn}/thing/deviceinfo/update`): the
/// board's facts and the key file's `tag.NAME = VALUE` lines as the console's device tags,
/// `{"id":"N","version":"1.0","params":[{"attrKey":"K","attrValue":"V"},…],"method":"thing.deviceinfo.update"}`,
/// answered on `…/update_reply` (200; 460 a bad key or value; 6100 more than 200 entries).
///
/// The platform takes keys of a letter, then letters, digits and `_` (at most 30), values of
/// 1 to 128 of letters, digits and `_ - # @ % & : .`, and at most 200 entries. Values are
/// made to fit here (`sanitise`); a key that does not fit is left out. One update holds as
/// many entries as its buffer takes (`write`): the agent sends the rest in further updates.
public enum DeviceInfoUpdate {
    public static let maxEntries = 200
    public static let maxValue = 128

    /// wisp's own keys. A user's `tag.NAME` of the same name replaces wisp's entry.
    public static let boardModel = "board_model"
    public static let osRelease = "os_release"
    public static let kernelRelease = "kernel_release"
    public static let architecture = "arch"
    public static let wispVersion = "wisp_version"
    public static let ipv4 = "ipv4"

    public struct Entry: Equatable, Sendable {
        public let key: String
        public let value: String
        public init(key: String, value: String) { self.key = key; self.value = value }
        public static func == (a: Entry, b: Entry) -> Bool { a.key.equals(b.key) && a.value.equals(b.value) }
    }

    /// What is sent: wisp's `facts` (nil values left out), then the user's tags, each value
    /// sanitised; a fact the user tagged under the same name is left out, as is an entry
    /// whose key is not a key or whose value is empty. At most `maxEntries` (`dropped` says
    /// how many more there were).
    public static func entries(facts: [(String, String?)], tags: [DeviceConfig.Tag]) -> (entries: [Entry], dropped: Int) {
        var out: [Entry] = []
        var dropped = 0
        func add(_ key: String, _ raw: String) {
            let value = sanitise(raw)
            guard KeyFile.isTagName(key), !value.isEmpty else { return }
            if let i = out.firstIndex(where: { $0.key.equals(key) }) {
                out[i] = Entry(key: key, value: value)  // a later tag of the same name wins
            } else if out.count < maxEntries {
                out.append(Entry(key: key, value: value))
            } else {
                dropped += 1
            }
        }
        for (key, value) in facts {
            guard let value, !tags.contains(where: { $0.name.equals(key) }) else { continue }
            add(key, value)
        }
        for t in tags { add(t.name, t.value) }
        return (out, dropped)
    }

    /// Whether the platform takes `b` in a value: letters, digits and `_ - # @ % & : .`.
    static func allowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "#"), UInt8(ascii: "@"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: ":"), UInt8(ascii: "."): true
        default: false
        }
    }

    /// `value` as the platform takes it: each character it refuses (a space, `/`, `(`, a
    /// non-ASCII character) becomes one `_`, and the result is cut at 128 characters.
    public static func sanitise(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(min(value.utf8.count, maxValue))
        for b in value.utf8 where out.count < maxValue {
            if allowed(b) {
                out.append(b)
            } else if b & 0xC0 != 0x80 {  // a continuation byte belongs to the character already replaced
                out.append(UInt8(ascii: "_"))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes one update with `entries[from...]`, as many as fit in `json`: the index after
    /// the last one written (`from` when not even one fits: send nothing then).
    public static func write(id: UInt64, entries: [Entry], from: Int, into json: inout JSONWriter) -> Int {
        let end: StaticString = "],\"method\":\"thing.deviceinfo.update\"}"
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":[")
        var i = from
        while i < entries.count {
            let mark = json.buffer.count
            if i > from { json.byte(UInt8(ascii: ",")) }
            json.raw("{\"attrKey\":")
            json.string(entries[i].key)
            json.raw(",\"attrValue\":")
            json.string(entries[i].value)
            json.byte(UInt8(ascii: "}"))
            if !json.ok || json.buffer.available < end.utf8CodeUnitCount {
                json.rollBack(to: mark)
                break
            }
            i += 1
        }
        json.raw(end)
        return i
    }

    /// The bytes the accepted record's digest is taken over: each key and value followed by
    /// a NUL (neither holds one), in order.
    public static func canonical(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in entries {
            out += e.key.utf8
            out.append(0)
            out += e.value.utf8
            out.append(0)
        }
        return out
    }

    /// The platform's answer on `…/update_reply`.
    public struct Reply: Equatable, Sendable {
        public var id: UInt64?
        public var code: Int64?
        /// The `message` member, made safe for a log line ("" when absent).
        public var message: String
    }

    /// The reply's id (a decimal string), code and message; nil when it is not JSON.
    public static func reply(_ payload: UnsafeRawBufferPointer) -> Reply? {
        guard let json = try? JSONReader(payload) else { return nil }
        var r = Reply(id: nil, code: nil, message: "")
        if case .string(let s)? = json.member("id"), let id = json.unsignedDecimal(s) { r.id = UInt64(id) }
        if case .number(let code, 0)? = json.member("code") { r.code = code }
        if case .string(let s)? = json.member("message") { r.message = LogText.escape(Array(json.bytes[s])) }
        return r
    }

    // MARK: The board's facts, from the files that hold them (read by the agent).

    /// `/proc/device-tree/model`: the text before the first NUL, without trailing blanks.
    public static func model(_ bytes: [UInt8]) -> String? {
        var text = bytes.prefix { $0 != 0 }
        while let last = text.last, last <= 0x20 { text = text.dropLast() }
        return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
    }

    /// `PRETTY_NAME` of os-release(5) text, its quotes and backslash escapes removed.
    public static func prettyName(osRelease bytes: [UInt8]) -> String? {
        let key: [UInt8] = Array("PRETTY_NAME=".utf8)
        for line in bytes.split(separator: UInt8(ascii: "\n")) where line.starts(with: key) {
            var value = Array(line.dropFirst(key.count))
            while let last = value.last, last == 0x0D || last == 0x20 || last == 0x09 { value.removeLast() }
            if let q = value.first, (q == UInt8(ascii: "\"") || q == UInt8(ascii: "'")), value.count >= 2, value.last == q {
                value = Array(value[1..<(value.count - 1)])
                if q == UInt8(ascii: "\"") {
                    var out: [UInt8] = []
                    var escaped = false
                    for b in value {
                        if !escaped && b == UInt8(ascii: "\\") { escaped = true; continue }
                        escaped = false
                        out.append(b)
                    }
                    value = out
                }
            }
            return value.isEmpty ? nil : String(decoding: value, as: UTF8.self)
        }
        return nil
    }

    /// The interface of the default IPv4 route in `/proc/net/route` (destination and mask
    /// 0, the route up; the lowest metric, the first of equals), or nil.
    public static func defaultRouteInterface(_ bytes: [UInt8]) -> String? {
        var best: (name: ArraySlice<UInt8>, metric: Int64)?
        for line in bytes.split(separator: UInt8(ascii: "\n")).dropFirst() {
            let f = line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
            guard f.count >= 8, f[0].count <= 15, f[1].elementsEqual("00000000".utf8), f[7].elementsEqual("00000000".utf8),
                  let flags = f[3].last.flatMap(Hex.nibble), flags & 1 != 0, let metric = DecimalScan.whole(f[6]) else { continue }
            if best == nil || metric < best!.metric { best = (f[0], metric) }
        }
        return best.map { String(decoding: $0.name, as: UTF8.self) }
    }
}
