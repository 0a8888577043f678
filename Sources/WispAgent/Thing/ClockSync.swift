import WispCore

/// The platform's NTP over MQTT (`/ext/ntp/{pk}/{dn}/request` → `/response`), for boards
/// without a real-time clock: the post timestamps come from the platform's time once it
/// has answered, from the system clock before.
///
/// Server time when the response arrives = (serverRecvTime + serverSendTime +
/// deviceRecvTime − deviceSendTime) / 2, with the device times on the monotonic clock.
public struct ClockSync {
    /// Wall-clock ms minus monotonic ms, once the platform has answered.
    public private(set) var offset: Int64?
    var sentAt: UInt64?

    public init() {}

    /// Wall-clock milliseconds now.
    public func wallClock(monotonic: UInt64) -> UInt64 {
        if let offset { return UInt64(Int64(monotonic) + offset) }
        return System.realtimeMillis
    }

    /// The request payload `{"deviceSendTime":"N"}`.
    public mutating func request(monotonic: UInt64, into json: inout JSONWriter) {
        sentAt = monotonic
        json.reset()
        json.raw("{\"deviceSendTime\":\"")
        json.integer(Int64(monotonic))
        json.raw("\"}")
    }

    /// Takes a response; true when the offset was set.
    public mutating func response(_ payload: UnsafeRawBufferPointer, monotonic: UInt64) -> Bool {
        guard let sent = sentAt, let json = try? JSONReader(payload),
              let recv = millis(json, json.member("serverRecvTime")),
              let send = millis(json, json.member("serverSendTime")) else { return false }
        let serverNow = (recv + send + Int64(monotonic) - Int64(sent)) / 2
        offset = serverNow - Int64(monotonic)
        sentAt = nil
        return true
    }

    /// A millisecond count given as a number or a string of digits.
    func millis(_ json: JSONReader, _ value: JSONReader.Value?) -> Int64? {
        switch value {
        case .number(let scaled, 0)?: return scaled
        case .string(let r)?:
            var v: Int64 = 0
            if r.isEmpty || r.count > 18 { return nil }
            for i in r {
                let b = json[i]
                guard b >= 0x30 && b <= 0x39 else { return nil }
                v = v * 10 + Int64(b - 0x30)
            }
            return v
        default: return nil
        }
    }
}
