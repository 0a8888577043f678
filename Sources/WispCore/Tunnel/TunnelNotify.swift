/// The secure tunnel's MQTT side (issue 28; not wired into the agent yet): the platform's
/// notify on `/sys/{pk}/{dn}/secure_tunnel/notify` and its reply on
/// `…/secure_tunnel/proxy/request_reply` to the device's `…/proxy/request`.
///
/// The fields are read from the `data` object when there is one (the request's reply),
/// else from the top level. `operation` is `connect`, `close`, or absent (an update: the
/// same tunnel with new details, a fresh token say); `tunnel_id`, `host`, `port`, `path`,
/// `token` and `token_expire` (seconds) describe where to connect; a close carries
/// `close_reason`. Parsed strictly, every field bounded; unknown fields are ignored.
///
/// The token is a secret: it is kept as bytes in a `TunnelToken`, whose description says
/// only its length, and no description or refusal here ever includes it.
public enum TunnelNotify: Sendable, Equatable {
    /// Connect (or reconnect, for an update) to this endpoint.
    case open(TunnelEndpoint)
    /// The tunnel is gone: end its sessions and its connection.
    case close(tunnelId: String, reason: String)
    /// Not a usable notify; why (for the log, never quoting the token).
    case invalid(String)

    public static let maxTunnelId = 64
    public static let maxHost = 253
    public static let maxPath = 512
    public static let maxToken = 1024
    /// `token_expire` above this (136 years) is refused.
    public static let maxTokenExpire: Int64 = 0xFFFF_FFFF

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> TunnelNotify {
        let json: JSONReader
        do { json = try JSONReader(bytes) } catch { return .invalid(error.message) }
        guard case .object = json.root else { return .invalid("not a JSON object") }
        switch json.member("code") {
        case .string(let r)?:
            guard json.equals(r, "200") else { return .invalid("the platform says code " + text(json, r, limit: 32)) }
        case .number(let scaled, let decimals)?:
            guard decimals == 0, scaled == 200 else { return .invalid("the platform says code \(scaled)") }
        case nil:
            break
        default:
            return .invalid("code is neither a string nor a number")
        }
        var fields: Range<Int>? = nil
        if let data = json.member("data") {
            guard case .object(let r) = data else { return .invalid("data is not an object") }
            fields = r
        }
        var operation = TunnelEndpoint.Operation.update
        switch json.member("operation", in: fields) {
        case .string(let r)?:
            if json.equals(r, "connect") { operation = .connect } else if json.equals(r, "close") { return close(json, fields) } else {
                return .invalid("operation is not connect or close")
            }
        case nil, .null?:
            break
        default:
            return .invalid("operation is not a string")
        }
        guard let tunnelId = tunnelId(json, fields) else { return .invalid("no usable tunnel_id (1 to 64 printable characters)") }
        guard case .string(let h)? = json.member("host", in: fields), h.count <= maxHost, let host = OTAOffer.unescaped(json, h),
              isHost(host) else {
            return .invalid("no usable host (a DNS name or an IP address)")
        }
        guard let port = number(json, json.member("port", in: fields)), port >= 1, port <= 65535 else {
            return .invalid("no usable port (1 to 65535)")
        }
        guard case .string(let p)? = json.member("path", in: fields), p.count <= maxPath, let path = OTAOffer.unescaped(json, p),
              isPath(path) else {
            return .invalid("no usable path (starting with /, at most \(maxPath) printable characters)")
        }
        guard case .string(let t)? = json.member("token", in: fields), t.count <= maxToken, let token = OTAOffer.unescaped(json, t),
              isToken(token.utf8) else {
            return .invalid("no usable token (1 to \(maxToken) printable characters)")
        }
        var expire: Int64? = nil
        if let value = json.member("token_expire", in: fields), value != .null {
            guard let v = number(json, value), v <= maxTokenExpire else { return .invalid("token_expire is not a number of seconds") }
            expire = v
        }
        return .open(TunnelEndpoint(operation: operation, tunnelId: tunnelId, host: host, port: UInt16(truncatingIfNeeded: port),
                                    path: path, token: TunnelToken(Array(token.utf8)), tokenExpire: expire))
    }

    static func close(_ json: JSONReader, _ fields: Range<Int>?) -> TunnelNotify {
        guard let tunnelId = tunnelId(json, fields) else { return .invalid("no usable tunnel_id (1 to 64 printable characters)") }
        var reason = ""
        switch json.member("close_reason", in: fields) {
        case .string(let r)?:
            reason = text(json, r, limit: 128)
        case .number(let v, let d)?:
            reason = d == 0 ? "\(v)" : "a number"
        case nil, .null?:
            break
        default:
            return .invalid("close_reason is not a string")
        }
        return .close(tunnelId: tunnelId, reason: reason)
    }

    /// Network text for a log line: escaped (`LogText`), at most `limit` bytes shown.
    static func text(_ json: JSONReader, _ r: Range<Int>, limit: Int) -> String {
        LogText.escape(Array(UnsafeRawBufferPointer(rebasing: json.bytes[r])), limit: limit)
    }

    static func tunnelId(_ json: JSONReader, _ fields: Range<Int>?) -> String? {
        guard case .string(let r)? = json.member("tunnel_id", in: fields), r.count >= 1, r.count <= maxTunnelId else { return nil }
        for i in r where !TunnelFrame.isNameByte(json[i]) { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: json.bytes[r]), as: UTF8.self)
    }

    /// A whole non-negative number, or a string of decimal digits (the platform sends
    /// numbers both ways); Int64 until the caller checks the range.
    static func number(_ json: JSONReader, _ value: JSONReader.Value?) -> Int64? {
        switch value {
        case .number(let v, let d)?: return d == 0 && v >= 0 ? v : nil
        case .string(let r)?: return json.unsignedDecimal(r)
        default: return nil
        }
    }

    /// A DNS name (letters, digits, `-`, `_`, dots) or an IP literal (IPv4; IPv6 with or
    /// without brackets): no spaces, no `/`, no `@`, nothing a URL would read as more.
    public static func isHost(_ host: String) -> Bool {
        var bytes = host.utf8[...]
        if bytes.first == UInt8(ascii: "[") {
            guard bytes.last == UInt8(ascii: "]"), bytes.count > 2 else { return false }
            bytes = bytes.dropFirst().dropLast()
            return bytes.allSatisfy { Hex.nibble($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        }
        guard !bytes.isEmpty, bytes.count <= maxHost, bytes.first != UInt8(ascii: "-"), bytes.first != UInt8(ascii: "."),
              bytes.last != UInt8(ascii: "-") else { return false }
        var colons = 0
        for b in bytes {
            if b == UInt8(ascii: ":") { colons += 1; continue }
            let ok = (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || DecimalScan.isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
            if !ok { return false }
        }
        // A colon only in an IPv6 literal (at least two, hex digits between): never a host:port.
        if colons == 1 { return false }
        if colons > 1 { return bytes.allSatisfy { Hex.nibble($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") } }
        return true
    }

    /// Starts with `/`, printable ASCII without spaces, `#` or `\`: goes into a request line.
    public static func isPath(_ path: String) -> Bool {
        guard path.utf8.first == UInt8(ascii: "/"), path.utf8.count <= maxPath else { return false }
        return path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "\\") }
    }

    /// 1 to `maxToken` bytes of printable ASCII without spaces: goes into a header field.
    public static func isToken<C: Collection>(_ token: C) -> Bool where C.Element == UInt8 {
        !token.isEmpty && token.count <= maxToken && token.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

/// Where a tunnel connects: `wss://{host}:{port}{path}` with `tunnel-access-token: {token}`.
public struct TunnelEndpoint: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Operation: Sendable, Equatable {
        case connect
        /// No `operation`: the tunnel's details changed (a new token, say).
        case update
    }

    public var operation: Operation
    public var tunnelId: String
    public var host: String
    public var port: UInt16
    public var path: String
    public var token: TunnelToken
    /// The token's lifetime in seconds, when the platform said.
    public var tokenExpire: Int64?

    public init(operation: Operation, tunnelId: String, host: String, port: UInt16, path: String, token: TunnelToken, tokenExpire: Int64?) {
        self.operation = operation
        self.tunnelId = tunnelId
        self.host = host
        self.port = port
        self.path = path
        self.token = token
        self.tokenExpire = tokenExpire
    }

    /// For the log: everything but the token.
    public var description: String {
        var s = "tunnel " + tunnelId + " at wss://" + host + ":\(port)" + path
        if let tokenExpire { s += ", token for \(tokenExpire) s" }
        return s
    }

    public var debugDescription: String { description }
}

/// The tunnel's access token, a secret: its bytes go only into the upgrade request's
/// `tunnel-access-token` field (`withBytes`); printed, it says only its length.
public struct TunnelToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var count: Int { bytes.count }

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { bytes.withUnsafeBytes(body) }

    public var description: String { "(a token of \(bytes.count) bytes)" }
    public var debugDescription: String { description }
}

/// The device's ask for its tunnel (at connect, and after the endpoint refused an expired
/// token), on `…/secure_tunnel/proxy/request`: `{"id":"N","params":{}}`.
public enum TunnelRequest {
    public static func write(id: UInt64, into json: inout JSONWriter) {
        json.startMessage(id: id)
        json.raw("\",\"params\":{}}")
    }
}
