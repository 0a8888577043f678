/// The platform's OTA service, the device's side (the platform's documentation and its C SDK):
///
/// - after every CONNACK the device reports its module's version on
///   `/ota/device/inform/{pk}/{dn}` (`OTAInform`); the platform counts an upgrade as done
///   only when the new version is reported after it;
/// - it asks for a pending upgrade with `thing.ota.firmware.get` (`FirmwareGet`) and the
///   platform pushes one on `/ota/device/upgrade/{pk}/{dn}`; both carry the same `data`
///   (`OTAOffer.parse`);
/// - it reports progress on `/ota/device/progress/{pk}/{dn}` (`OTAProgress`).
public enum OTAInform {
    public static func topic(productKey pk: String, deviceName dn: String) -> String {
        "/ota/device/inform/" + pk + "/" + dn
    }

    /// `{"id":"N","params":{"version":"0.1.0","module":"wisp"}}` (module `default` is the
    /// whole device's firmware).
    public static func write(id: UInt64, version: String, module: String, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"params\":{\"version\":")
        json.string(version)
        json.raw(",\"module\":")
        json.string(module)
        json.raw("}}")
    }

    /// A module name as the console shows it: 1 to 32 of A-Z a-z 0-9 _ - .
    public static func isModuleName(_ s: String) -> Bool {
        let n = s.utf8.count
        guard n >= 1 && n <= 32 else { return false }
        for b in s.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            if !ok { return false }
        }
        return true
    }
}

/// `{"id":"N","params":{"step":"37","desc":"downloading","module":"wisp"}}`: step 1–100, or
/// -1 upgrade failed, -2 download failed, -3 verification failed, -4 writing failed.
public enum OTAProgress {
    public static let upgradeFailed = -1
    public static let downloadFailed = -2
    public static let verificationFailed = -3
    public static let writingFailed = -4

    public static func write(id: UInt64, step: Int, desc: String, module: String, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"params\":{\"step\":\"")
        json.integer(Int64(step))
        json.raw("\",\"desc\":")
        json.string(desc)
        json.raw(",\"module\":")
        json.string(module)
        json.raw("}}")
    }
}

/// `thing.ota.firmware.get`: asks the platform for the upgrade pending for this module.
public enum FirmwareGet {
    public static func write(id: UInt64, module: String, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"version\":\"1.0\",\"params\":{\"module\":")
        json.string(module)
        json.raw("},\"method\":\"thing.ota.firmware.get\"}")
    }
}

/// The digest that checks a package.
public enum DigestMethod: Sendable, Equatable {
    case md5, sha256

    public var size: Int { self == .md5 ? 16 : 32 }
    public var name: String { self == .md5 ? "md5" : "sha256" }

    /// `Md5`, `MD5`, `SHA256`, `Sha256`: the platform spells them several ways.
    public init?(name: String) {
        let n = name.asciiLowercased()
        if n.equals("md5") { self = .md5 } else if n.equals("sha256") { self = .sha256 } else { return nil }
    }
}

/// An upgrade the platform offers: the `data` of an upgrade push or a firmware.get reply.
public struct OTAPackage: Sendable, Equatable {
    public var module: String
    public var version: String
    public var size: Int64
    /// `https://…` (or `http://…`), escapes decoded.
    public var url: String
    public var method: DigestMethod
    public var digest: [UInt8]

    public init(module: String, version: String, size: Int64, url: String, method: DigestMethod, digest: [UInt8]) {
        self.module = module
        self.version = version
        self.size = size
        self.url = url
        self.method = method
        self.digest = digest
    }

    /// The digest as lowercase hex.
    public var digestHex: String { Hex.encode(digest) }
}

public enum OTAOffer: Sendable, Equatable {
    /// A single-file upgrade for some module (the caller compares it with its own).
    case package(OTAPackage)
    /// A firmware.get reply with empty `data`: nothing pending.
    case nothing
    /// An offer wisp cannot take, for `module` (nil when the message does not say), and why
    /// (reported as progress -1 when the module is ours).
    case refused(module: String?, why: String)
    /// Not an offer at all (a failure code, malformed JSON): logged, nothing reported.
    case malformed(String)
}

extension OTAOffer {
    /// The longest URL, version or module wisp takes; the platform's URLs are a few hundred
    /// bytes (an OSS object with its signature).
    public static let maxURLBytes = 1024
    public static let maxVersionBytes = 64

    /// Parses an upgrade push (`{"code":"1000","message":"success","id":N,"data":{…}}`) or a
    /// firmware.get reply (`{"code":200,"data":{…},"id":"N",…}`).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> OTAOffer {
        let json: JSONReader
        do { json = try JSONReader(bytes) } catch { return .malformed(error.message) }
        switch json.member("code") {
        case .string(let r)?:
            guard json.equals(r, "1000") || json.equals(r, "200") else { return .malformed("the platform says code " + text(json, r)) }
        case .number(let scaled, let decimals)?:
            guard decimals == 0, scaled == 200 || scaled == 1000 else { return .malformed("the platform says code \(scaled)") }
        case nil:
            break
        default:
            return .malformed("code is neither a string nor a number")
        }
        guard case .object(let data)? = json.member("data") else { return .malformed("no data object") }
        var module: String?
        if case .string(let r)? = json.member("module", in: data) {
            guard r.count <= 32 else { return .refused(module: nil, why: "a module name longer than 32 bytes") }
            module = text(json, r)
        }
        var first = json.members(of: data)
        if first.next() == nil { return .nothing }
        if case .array? = json.member("files", in: data) {
            return .refused(module: module ?? "default", why: "multi-file packages are not supported; upload wisp as one file")
        }
        let mod = module ?? "default"  // the console's default module: the device's firmware
        if case .number(let v, _)? = json.member("isDiff", in: data), v != 0 {
            return .refused(module: mod, why: "differential packages are not supported; upload the whole file")
        }
        guard case .string(let v)? = json.member("version", in: data), v.count >= 1, v.count <= maxVersionBytes,
              let version = unescaped(json, v), isVersion(version) else {
            return .refused(module: mod, why: "no usable version (1 to 64 printable characters)")
        }
        guard case .number(let sizeValue, let decimals)? = json.member("size", in: data), decimals == 0, sizeValue > 0 else {
            return .refused(module: mod, why: "no package size")
        }
        guard case .string(let u)? = json.member("url", in: data), u.count <= maxURLBytes, let url = unescaped(json, u) else {
            return .refused(module: mod, why: "no usable url (at most \(maxURLBytes) bytes)")
        }
        var method = DigestMethod.md5
        if case .string(let m)? = json.member("signMethod", in: data) {
            guard let parsed = DigestMethod(name: text(json, m)) else {
                return .refused(module: mod, why: "signMethod " + text(json, m) + " is not Md5 or SHA256")
            }
            method = parsed
        }
        var digest: [UInt8]?
        if case .string(let s)? = json.member("sign", in: data) { digest = Hex.decode(text(json, s)) }
        if digest == nil, method == .md5, case .string(let s)? = json.member("md5", in: data) { digest = Hex.decode(text(json, s)) }
        guard let digest, digest.count == method.size else {
            return .refused(module: mod, why: "no " + method.name + " digest of \(method.size * 2) hex digits")
        }
        return .package(OTAPackage(module: mod, version: version, size: sizeValue, url: url, method: method, digest: digest))
    }

    /// Printable ASCII without spaces or quotes: it goes into file names' neighbours, logs
    /// and a command's output comparison.
    public static func isVersion(_ s: String) -> Bool {
        for b in s.utf8 where b <= 0x20 || b >= 0x7F || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return false }
        return !s.utf8.isEmpty
    }

    /// A JSON string's content with the escapes a URL may carry (`\/`, `\\`, `\"`, `\u00XX`
    /// for ASCII) decoded; nil for anything else (control or non-ASCII characters).
    static func unescaped(_ json: JSONReader, _ r: Range<Int>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(r.count)
        var i = r.lowerBound
        while i < r.upperBound {
            let b = json[i]
            if b < 0x20 || b >= 0x7F { return nil }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < r.upperBound else { return nil }
            let e = json[i + 1]
            switch e {
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""):
                out.append(e)
                i += 2
            case UInt8(ascii: "u"):
                guard i + 5 < r.upperBound, json[i + 2] == UInt8(ascii: "0"), json[i + 3] == UInt8(ascii: "0"),
                      let hi = Hex.nibble(json[i + 4]), let lo = Hex.nibble(json[i + 5]) else { return nil }
                let c = hi << 4 | lo
                if c < 0x20 || c >= 0x7F { return nil }
                out.append(c)
                i += 6
            default:
                return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// At most 64 bytes of a string's content, for messages (escaped again when logged).
    static func text(_ json: JSONReader, _ range: Range<Int>) -> String {
        var bytes: [UInt8] = []
        for i in range where bytes.count < 64 { bytes.append(json[i]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
