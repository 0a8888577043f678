/// The platform's NTP over MQTT (`/ext/ntp/{pk}/{dn}/request` → `/response`), for boards
/// without a real-time clock. Request `{"deviceSendTime":"T0"}`; the response carries
/// `deviceSendTime`, `serverRecvTime` and `serverSendTime` (epoch ms, as numbers or
/// strings). Server time when the response arrives at device time T3 is
/// (serverRecvTime + serverSendTime + T3 − T0) / 2.
///
/// Everything in the response is hostile: times outside 2020…2100, a reply older than
/// the request, or a round trip over a day are refused (no arithmetic can overflow).
public enum NTP {
    /// 2020-01-01T00:00:00Z and 2100-01-01T00:00:00Z in epoch milliseconds.
    public static let earliest: Int64 = 1_577_836_800_000
    public static let latest: Int64 = 4_102_444_800_000
    /// A round trip longer than this is not a clock answer worth trusting.
    public static let maxRoundTrip: UInt64 = 86_400_000

    public enum Refusal: Error, Equatable, Sendable {
        case implausibleTime(Int64)
        case serverTimesReversed
        case roundTrip(UInt64)

        public var message: String {
            switch self {
            case .implausibleTime(let t): "a time of \(t) ms is not between 2020 and 2100"
            case .serverTimesReversed: "serverSendTime is before serverRecvTime"
            case .roundTrip(let ms): "the answer took \(ms) ms"
            }
        }
    }

    /// The request payload `{"deviceSendTime":"T0"}`.
    public static func writeRequest(deviceSendTime: UInt64, into json: inout JSONWriter) {
        json.reset()
        json.raw("{\"deviceSendTime\":\"")
        json.integer(Int64(truncatingIfNeeded: deviceSendTime))
        json.raw("\"}")
    }

    /// Wall-clock ms minus monotonic ms, from one exchange: sent at monotonic `sent`,
    /// answered at monotonic `received`.
    public static func offset(serverRecv: Int64, serverSend: Int64, sent: UInt64, received: UInt64) -> Result<Int64, Refusal> {
        if serverRecv < earliest || serverRecv > latest { return .failure(.implausibleTime(serverRecv)) }
        if serverSend < earliest || serverSend > latest { return .failure(.implausibleTime(serverSend)) }
        if serverSend < serverRecv { return .failure(.serverTimesReversed) }
        guard received >= sent, received - sent <= maxRoundTrip else {
            return .failure(.roundTrip(received >= sent ? received - sent : 0))
        }
        // All terms are bounded above (< 2^43 each), so none of this overflows Int64.
        let roundTrip = Int64(received - sent)
        let serverNow = (serverRecv + serverSend + roundTrip) / 2
        // monotonic may be up to 2^64: compare before converting.
        guard received <= UInt64(Int64.max / 2) else { return .failure(.roundTrip(0)) }
        return .success(serverNow - Int64(received))
    }
}
