/// Remote configuration (the console's "remote config" for a product): the platform pushes
/// `thing.config.push` on `/sys/{pk}/{dn}/thing/config/push`
/// (`{"id":"123","version":"1.0","method":"thing.config.push","params":{"configId":…,
/// "configSize":…,"sign":…,"signMethod":"Sha256","url":…,"getType":"file"}}`), answered on
/// `…/push_reply`; a device asks at connect with `thing.config.get` on `…/config/get`
/// (params `{"configScope":"product","getType":"file"}`) and the reply's `data` has the same
/// fields. The file is a key-file fragment (`KeyFile.remotelySettable` keys only).
public struct ConfigFile: Sendable, Equatable {
    public var configId: String
    public var size: Int64
    public var sha256: [UInt8]
    public var url: String

    public init(configId: String, size: Int64, sha256: [UInt8], url: String) {
        self.configId = configId
        self.size = size
        self.sha256 = sha256
        self.url = url
    }

    /// The largest config file wisp takes (a key file is at most 16 KiB).
    public static let maxBytes: Int64 = 16_384

    public enum Offer: Sendable, Equatable {
        case file(ConfigFile)
        /// A get reply with empty data: no config for this product.
        case nothing
        /// Unusable; why (sent back in a push reply).
        case refused(String)
    }

    /// A push (fields in `params`) or a get reply (fields in `data`).
    public static func parse(_ json: JSONReader) -> Offer {
        guard case .object(let fields)? = json.member("params") ?? json.member("data") else { return .refused("no params or data object") }
        var first = json.members(of: fields)
        if first.next() == nil { return .nothing }
        guard case .string(let id)? = json.member("configId", in: fields), id.count >= 1, id.count <= 64 else {
            return .refused("no configId of 1 to 64 characters")
        }
        var configId: [UInt8] = []
        for i in id {
            let b = json[i]
            guard (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") else {
                return .refused("configId is not letters, digits, - and _")
            }
            configId.append(b)
        }
        if case .string(let t)? = json.member("getType", in: fields), !json.equals(t, "file") {
            return .refused("getType is not file")
        }
        guard case .number(let size, let decimals)? = json.member("configSize", in: fields), decimals == 0, size > 0, size <= maxBytes else {
            return .refused("configSize must be 1 to \(maxBytes) bytes")
        }
        guard case .string(let m)? = json.member("signMethod", in: fields), DigestMethod(name: OTAOffer.text(json, m)) == .sha256 else {
            return .refused("signMethod must be Sha256")
        }
        guard case .string(let s)? = json.member("sign", in: fields), let digest = Hex.decode(OTAOffer.text(json, s)), digest.count == 32 else {
            return .refused("sign is not 64 hex digits")
        }
        guard case .string(let u)? = json.member("url", in: fields), u.count <= OTAOffer.maxURLBytes, let url = OTAOffer.unescaped(json, u) else {
            return .refused("no usable url")
        }
        return .file(ConfigFile(configId: String(decoding: configId, as: UTF8.self), size: size, sha256: digest, url: url))
    }

    public static func writeGet(id: UInt64, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":{\"configScope\":\"product\",\"getType\":\"file\"},\"method\":\"thing.config.get\"}")
    }
}

extension ConfigFile {
    /// The push's id (at most 64 bytes of it), to echo in the reply.
    public static func requestId(_ json: JSONReader) -> String {
        guard case .string(let r)? = json.member("id"), r.count <= 64 else { return "" }
        return OTAOffer.text(json, r)
    }

    /// `{"code":200,"data":{},"id":"123","message":"success","version":"1.0"}` on push_reply.
    public static func writePushReply(code: Int64, id: String, message: String, into reply: inout JSONWriter) {
        reply.reset()
        reply.raw("{\"code\":")
        reply.integer(code)
        reply.raw(",\"data\":{},\"id\":")
        reply.string(id)
        reply.raw(",\"message\":")
        reply.string(message)
        reply.raw(",\"version\":\"1.0\"}")
    }
}
