/// Where the broker is: `ws://`, `wss://` (MQTT in WebSocket frames, the platform's way),
/// or `mqtt://`, `mqtts://` (the same session over plain TCP or TLS); `http://` for a proxy,
/// `https://` (and `http://` in a lab) for an OTA package.
public struct Endpoint: Sendable, Equatable {
    public enum Scheme: String, Sendable, CaseIterable {
        case ws, wss, mqtt, mqtts, http, https

        var defaultPort: UInt16 {
            switch self {
            case .ws, .http: 80
            case .wss, .https: 443
            case .mqtt: 1883
            case .mqtts: 8883
            }
        }
    }

    public var scheme: Scheme
    /// Host name or address, without brackets for IPv6.
    public var host: String
    public var port: UInt16
    /// Request path (and query) for WebSocket and HTTP schemes; the platform's endpoints
    /// give none, and then `/mqtt` is sent (what Paho, the platform's own examples, send).
    public var path: String

    public static let defaultPath = "/mqtt"

    public var isTLS: Bool { scheme == .wss || scheme == .mqtts || scheme == .https }
    public var isWebSocket: Bool { scheme == .ws || scheme == .wss }
    /// The platform's `securemode`: 2 over TLS, 3 over plain TCP.
    public var secureMode: Int { isTLS ? 2 : 3 }

    /// The Host header value (RFC 7230 §5.4): brackets for IPv6, port when not default.
    public var hostHeader: String {
        var h = host.utf8.contains(UInt8(ascii: ":")) ? "[" + host + "]" : host
        if port != scheme.defaultPort { h += ":\(port)" }
        return h
    }

    public var description: String {
        var s = scheme.rawValue + "://" + hostHeader
        if port == scheme.defaultPort { s += ":\(port)" }
        if isWebSocket { s += path }
        return s
    }

    public init(scheme: Scheme, host: String, port: UInt16, path: String = Endpoint.defaultPath) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `scheme://host[:port][/path]`; nil when it is not of that form.
    public init?(parsing text: String, allowing schemes: [Scheme] = [.ws, .wss, .mqtt, .mqtts]) {
        let bytes = Array(text.utf8)
        guard let sep = Self.find(bytes, "://") else { return nil }
        let name = String(decoding: bytes[0..<sep], as: UTF8.self).asciiLowercased()
        guard let scheme = Scheme.allCases.first(where: { $0.rawValue.equals(name) }),
              schemes.contains(scheme) else { return nil }
        var i = sep + 3
        var host: [UInt8]
        if i < bytes.count && bytes[i] == UInt8(ascii: "[") {
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: "]")) else { return nil }
            host = Array(bytes[(i + 1)..<close])
            i = close + 1
        } else {
            let start = i
            while i < bytes.count && bytes[i] != UInt8(ascii: ":") && bytes[i] != UInt8(ascii: "/") { i += 1 }
            host = Array(bytes[start..<i])
        }
        if host.isEmpty { return nil }
        for b in host where b <= 0x20 || b == UInt8(ascii: "@") || b == 0x7F { return nil }
        // The platform serves ws:// on 443 as well as wss://: without a port, its hosts get 443.
        var port = scheme == .ws && Endpoint.isPlatformHost(host) ? 443 : scheme.defaultPort
        if i < bytes.count && bytes[i] == UInt8(ascii: ":") {
            guard let (value, end) = DecimalScan.digits(bytes, from: i + 1, maxDigits: 5), value >= 1, value <= 65_535 else { return nil }
            i = end
            port = UInt16(value)
        }
        var path = Endpoint.defaultPath
        if i < bytes.count {
            guard bytes[i] == UInt8(ascii: "/"), scheme != .mqtt && scheme != .mqtts else { return nil }
            for b in bytes[i...] where b <= 0x20 || b == 0x7F { return nil }
            path = String(decoding: bytes[i...], as: UTF8.self)
        }
        self.init(scheme: scheme, host: String(decoding: host, as: UTF8.self), port: port, path: path)
    }

    /// Whether `host` is one of the IoT Platform's names, all under `aliyuncs.com`
    /// (`{pk}.iot-as-mqtt.{region}.aliyuncs.com`, an instance's `{id}.mqtt.iothub.aliyuncs.com`);
    /// DNS names compare without case, and a trailing dot (a rooted name) changes nothing.
    public static func isPlatformHost<H: Collection>(_ host: H) -> Bool where H.Element == UInt8 {
        let suffix = Array(".aliyuncs.com".utf8)
        var name = Array(host)
        if name.last == UInt8(ascii: ".") { name.removeLast() }
        guard name.count > suffix.count else { return false }
        for (a, b) in zip(name[(name.count - suffix.count)...], suffix) {
            let lower = a >= UInt8(ascii: "A") && a <= UInt8(ascii: "Z") ? a | 0x20 : a
            if lower != b { return false }
        }
        return true
    }

    static func find(_ bytes: [UInt8], _ needle: String) -> Int? {
        let n = Array(needle.utf8)
        if bytes.count < n.count { return nil }
        for start in 0...(bytes.count - n.count) where Array(bytes[start..<(start + n.count)]) == n { return start }
        return nil
    }
}
