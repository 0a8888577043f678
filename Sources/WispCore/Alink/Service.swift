/// The platform's service calls (`thing.service.{identifier}`), asynchronous on
/// `/sys/{pk}/{dn}/thing/service/{identifier}` with the answer on `…_reply`, or synchronous
/// through RRPC (`/sys/{pk}/{dn}/rrpc/request/{messageId}`, answered on
/// `…/rrpc/response/{messageId}` within the platform's few seconds). wisp's built-ins:
///
/// - `sample_now`: read the sensors and post now;
/// - `set_interval` `{"interval": N}`: post every N seconds (1–86400) until the key file
///   is read again (SIGHUP, restart);
/// - `reboot`: restart the board (only with `allow_reboot = true`).
///
/// Anything else is answered with 460 and "service not found".
public enum ServiceCall: Equatable, Sendable {
    case sampleNow
    case setInterval(Int)
    case reboot

    /// A request: the id to echo (a range of the payload) and the call, or why not.
    public static func parse(name: String, _ json: JSONReader) -> Result<(id: Range<Int>?, call: ServiceCall), PropertySet.Refusal> {
        var id: Range<Int>?
        if case .string(let r)? = json.member("id") {
            guard r.count <= 64 else { return .failure(.init(code: 460, id: nil, message: "request parameter error: id longer than 64 bytes")) }
            id = r
        }
        switch name {
        case "sample_now":
            return .success((id, .sampleNow))
        case "reboot":
            return .success((id, .reboot))
        case "set_interval":
            guard case .object(let params)? = json.member("params"),
                  case .number(let scaled, let decimals)? = json.member("interval", in: params), decimals == 0,
                  scaled >= Int64(DeviceConfig.telemetryIntervalRange.lowerBound), scaled <= Int64(DeviceConfig.telemetryIntervalRange.upperBound) else {
                return .failure(.init(code: 460, id: id, message: "request parameter error: params.interval must be whole seconds, 1 to 86400"))
            }
            return .success((id, .setInterval(Int(scaled))))
        default:
            return .failure(.init(code: 460, id: id, message: "service not found: " + (name.utf8.count <= 64 ? name : "(name longer than 64 bytes)")))
        }
    }

    /// The service name of an RRPC request's `method` (`thing.service.{name}`), or nil.
    public static func name(fromMethodOf json: JSONReader) -> String? {
        guard case .string(let r)? = json.member("method") else { return nil }
        let prefix = Array("thing.service.".utf8)
        guard r.count > prefix.count, r.count <= prefix.count + 64 else { return nil }
        var bytes: [UInt8] = []
        for (k, i) in r.enumerated() {
            if k < prefix.count {
                if json[i] != prefix[k] { return nil }
            } else {
                bytes.append(json[i])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `{"code":200,"data":{…},"id":"…","message":"success","version":"1.0"}`; `interval`
    /// fills data for set_interval.
    public static func writeReply(code: Int64, id: Range<Int>?, json: JSONReader?, message: String, interval: Int? = nil, into reply: inout JSONWriter) {
        reply.reset()
        reply.raw("{\"code\":")
        reply.integer(code)
        reply.raw(",\"data\":{")
        if let interval {
            reply.raw("\"interval\":")
            reply.integer(Int64(interval))
        }
        reply.raw("},\"id\":\"")
        if let id, let json { for i in id { reply.byte(json[i]) } }
        reply.raw("\",\"message\":")
        reply.string(message)
        reply.raw(",\"version\":\"1.0\"}")
    }
}
