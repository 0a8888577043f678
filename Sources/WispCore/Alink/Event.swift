/// Events (`thing.event.{identifier}.post` on `/sys/{pk}/{dn}/thing/event/{identifier}/post`):
/// `{"id":"N","version":"1.0","params":{"value":{…},"time":ms},"method":"thing.event.ID.post"}`.
/// wisp's built-ins (define them in the product's thing model to see them in the console):
///
/// | identifier | value |
/// | --- | --- |
/// | `startup` | `reason`: `boot`, `restart`, `crash` (the last run did not stop cleanly), `ota` (a new version) |
/// | `sensor_lost`, `sensor_back` | `sensor`: the property that stopped or started reading again |
/// | `buffer_overflow` | `dropped`: samples dropped from the full offline buffer since start-up |
/// | `power` | `under_voltage`, `freq_capped`, `throttled`, `soft_temp_limit` (0/1, now), `flags` (the Pi firmware's word) |
public enum EventPost {
    /// One value member: a text or a whole number.
    public enum Field: Sendable, Equatable {
        case text(String, String)
        case number(String, Int64)
    }

    public static func write(id: UInt64, name: String, fields: [Field], time: UInt64, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":{\"value\":{")
        for (i, f) in fields.enumerated() {
            if i > 0 { json.byte(UInt8(ascii: ",")) }
            switch f {
            case .text(let k, let v):
                json.string(k)
                json.byte(UInt8(ascii: ":"))
                json.string(v)
            case .number(let k, let v):
                json.string(k)
                json.byte(UInt8(ascii: ":"))
                json.integer(v)
            }
        }
        json.raw("},\"time\":")
        json.integer(Int64(truncatingIfNeeded: time))
        json.raw("},\"method\":\"thing.event.")
        for b in name.utf8 { json.byte(b) }
        json.raw(".post\"}")
    }

    /// The `power` event's fields from the firmware's throttled word (bits 0–3: now).
    public static func powerFields(_ flags: Int64) -> [Field] {
        [.number("under_voltage", flags & 1), .number("freq_capped", flags >> 1 & 1), .number("throttled", flags >> 2 & 1),
         .number("soft_temp_limit", flags >> 3 & 1), .number("flags", flags)]
    }
}
