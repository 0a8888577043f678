/// The Alink thing model's history post ("thing.event.property.history.post"): samples kept
/// while offline, several per message, each value with the time it was sampled:
///
///     {"id":"N","version":"1.0","params":[{"identity":{"productKey":"PK","deviceName":"DN"},
///      "properties":[{"temp":{"value":21.5,"time":T1}},{"temp":{"value":21.6,"time":T2}}]}],
///      "method":"thing.event.property.history.post"}
///
/// Built in the same fixed writer as a property post: `begin`, then `add` per sample until
/// one does not fit (it is rolled back, so the batch stays whole), then `finish`.
public enum HistoryPost {
    /// Values in one batch at most, whatever the buffer could hold (a bound on what the
    /// platform is asked to take in one message).
    public static let maxValues = 200

    static let end: StaticString = "]}],\"method\":\"thing.event.property.history.post\"}"

    public static func begin(id: UInt64, productKey: String, deviceName: String, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":[{\"identity\":{\"productKey\":")
        json.string(productKey)
        json.raw(",\"deviceName\":")
        json.string(deviceName)
        json.raw("},\"properties\":[")
    }

    /// Adds one sample, leaving room for `finish`. Returns false, with the writer as it was
    /// before, when the sample does not fit.
    public static func add<S: Sequence>(values: S, names: [String], time: UInt64, first: Bool, into json: inout JSONWriter) -> Bool
    where S.Element == PropertyValue {
        let mark = json.buffer.count
        if !first { json.byte(UInt8(ascii: ",")) }
        json.byte(UInt8(ascii: "{"))
        var firstValue = true
        for v in values {
            if !firstValue { json.byte(UInt8(ascii: ",")) }
            firstValue = false
            json.string(v.index < names.count ? names[v.index] : "unknown")
            json.raw(":{\"value\":")
            json.fixed(v.scaled, decimals: v.decimals)
            json.raw(",\"time\":")
            json.integer(Int64(truncatingIfNeeded: time))
            json.byte(UInt8(ascii: "}"))
        }
        json.byte(UInt8(ascii: "}"))
        if !json.ok || json.buffer.available < end.utf8CodeUnitCount {
            json.rollBack(to: mark)
            return false
        }
        return true
    }

    /// Closes the document (room for it was kept by `add`).
    public static func finish(into json: inout JSONWriter) -> Bool {
        json.raw(end)
        return json.ok
    }
}
