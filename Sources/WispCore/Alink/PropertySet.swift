/// The platform's property set (`thing.service.property.set`) and wisp's reply.
///
/// Request: `{"method":"thing.service.property.set","id":"123","params":{"relay":1},"version":"1.0"}`.
/// Reply on `…/property/set_reply`: `{"code":200,"data":{},"id":"123","message":"success","version":"1.0"}`.
/// All or nothing: every member of `params` must name a settable property with a value of
/// 0 or 1 (true/false) before anything is set.
public enum PropertySet {
    /// A parsed, validated request: which settable property gets which level.
    public struct Request {
        /// The request's `id` (a range of the payload), echoed in the reply.
        public var id: Range<Int>?
        public var changes: [(index: Int, level: Int)]
    }

    /// Why a request was refused: the reply code and message.
    public struct Refusal: Error, Equatable {
        public var code: Int64
        public var id: Range<Int>?
        public var message: String
    }

    /// Validates `json` against `settable` (the output names). `changes` indexes `settable`.
    public static func parse(_ json: JSONReader, settable: [String]) -> Result<Request, Refusal> {
        var id: Range<Int>?
        if case .string(let r)? = json.member("id") {
            // The platform's ids are decimal strings; a longer one is not echoed.
            guard r.count <= 64 else { return .failure(Refusal(code: 460, id: nil, message: "request parameter error: id longer than 64 bytes")) }
            id = r
        }
        guard case .object(let params)? = json.member("params") else {
            return .failure(Refusal(code: 460, id: id, message: "request parameter error: no params object"))
        }
        var changes: [(index: Int, level: Int)] = []
        for (key, value) in json.members(of: params) {
            guard let index = settable.firstIndex(where: { json.equals(key, $0) }) else {
                return .failure(Refusal(code: 460, id: id, message: "property not settable: " + text(json, key)))
            }
            guard let v = level(value) else {
                return .failure(Refusal(code: 460, id: id, message: "value of " + settable[index] + " must be 0 or 1"))
            }
            changes.append((index, v))
        }
        return .success(Request(id: id, changes: changes))
    }

    /// 0 or 1 from `true`/`false`, `0`/`1` (also `1.0`); nil for anything else.
    public static func level(_ value: JSONReader.Value) -> Int? {
        switch value {
        case .bool(let b): return b ? 1 : 0
        case .number(let scaled, let decimals):
            var one: Int64 = 1
            for _ in 0..<decimals { one *= 10 }
            if scaled == 0 { return 0 }
            if scaled == one { return 1 }
            return nil
        default: return nil
        }
    }

    /// The reply, with the request's id copied from `json` (when there was one).
    public static func writeReply(code: Int64, id: Range<Int>?, json: JSONReader?, message: String, into reply: inout JSONWriter) {
        reply.reset()
        reply.raw("{\"code\":")
        reply.integer(code)
        reply.raw(",\"data\":{},\"id\":\"")
        if let id, let json { for i in id { reply.byte(json[i]) } }
        reply.raw("\",\"message\":")
        reply.string(message)
        reply.raw(",\"version\":\"1.0\"}")
    }

    /// At most 64 bytes of a key, for the refusal message (escaped by the JSON writer).
    static func text(_ json: JSONReader, _ range: Range<Int>) -> String {
        var bytes: [UInt8] = []
        for i in range where bytes.count < 64 { bytes.append(json[i]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
