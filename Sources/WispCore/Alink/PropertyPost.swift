/// One property value: the index of its Alink identifier in the device's property list,
/// and a fixed-point number.
public struct PropertyValue: Sendable, Equatable {
    public var index: Int
    /// The value times 10^decimals (23.45 °C with 2 decimals is 2345).
    public var scaled: Int64
    public var decimals: Int

    public init(index: Int, scaled: Int64, decimals: Int) {
        self.index = index
        self.scaled = scaled
        self.decimals = decimals
    }
}

/// The Alink thing model's property post (IoT Platform, "thing.event.property.post"):
/// `{"id":"N","version":"1.0","params":{...},"method":"thing.event.property.post"}`.
public enum PropertyPost {
    /// Writes the post for `values`; `time` (ms since the epoch) marks each value with
    /// when it was sampled, in the platform's `{"value":v,"time":t}` form, when given.
    /// Returns false when it did not fit the writer.
    public static func write<S: Sequence>(id: UInt64, values: S, names: [String], time: UInt64? = nil, into json: inout JSONWriter) -> Bool
    where S.Element == PropertyValue {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":{")
        var first = true
        for v in values {
            if !first { json.byte(UInt8(ascii: ",")) }
            first = false
            json.string(v.index < names.count ? names[v.index] : "unknown")
            json.byte(UInt8(ascii: ":"))
            if let time {
                json.raw("{\"value\":")
                json.fixed(v.scaled, decimals: v.decimals)
                json.raw(",\"time\":")
                json.integer(Int64(truncatingIfNeeded: time))
                json.byte(UInt8(ascii: "}"))
            } else {
                json.fixed(v.scaled, decimals: v.decimals)
            }
        }
        json.raw("},\"method\":\"thing.event.property.post\"}")
        return json.ok
    }

    /// The longest post `write` can produce for these property identifiers (letters, digits
    /// and `_`, so nothing to escape): every number at its widest (20 characters for the id
    /// and the time, 21 for a value with its sign and point). The session's outbound packets
    /// are sized from it, not from a fixed maximum.
    public static func maximumSize(names: [String]) -> Int {
        // {"id":"…","version":"1.0","params":{…},"method":"thing.event.property.post"}
        var n = 7 + 20 + 28 + 39
        for (i, name) in names.enumerated() {
            // ,"NAME":{"value":…,"time":…}
            n += (i > 0 ? 1 : 0) + name.utf8.count + 3 + 9 + 21 + 8 + 20 + 1
        }
        return n
    }

    /// The `"code"` of a reply such as `{"code":200,"data":{},"id":"1","message":"success"}`,
    /// or nil when there is none. A scan, not a JSON parser: it finds the top-level-looking
    /// `"code":` key and reads the integer after it.
    public static func replyCode(_ payload: ByteBuffer, _ range: Range<Int>) -> Int? {
        guard var p = after("\"code\"", payload, range) else { return nil }
        while p < range.upperBound && (payload[p] == 0x20 || payload[p] == UInt8(ascii: ":")) { p += 1 }
        return DecimalScan.digits(payload.written[..<range.upperBound], from: p, maxDigits: 9).map { Int($0.value) }
    }

    /// The `id` of an Alink reply (`"id":"123"`), or nil.
    public static func replyId(_ buffer: ByteBuffer, _ range: Range<Int>) -> UInt64? {
        guard let p = after("\"id\":\"", buffer, range) else { return nil }
        return DecimalScan.digits(buffer.written[..<range.upperBound], from: p, maxDigits: 18).map { UInt64($0.value) }
    }

    /// Where the first `key` in `buffer[range]` ends, or nil (a byte scan, no parser).
    static func after(_ key: StaticString, _ buffer: ByteBuffer, _ range: Range<Int>) -> Int? {
        let n = key.utf8CodeUnitCount
        var i = range.lowerBound
        while i + n <= range.upperBound {
            var match = true
            key.withUTF8Buffer { k in for j in 0..<n where buffer[i + j] != k[j] { match = false; break } }
            if match { return i + n }
            i += 1
        }
        return nil
    }
}
