/// The board settings, `/etc/wisp/board.conf`: what gives the platform power over the
/// board as root — the reboot service, the key that signs OTA packages, how long a new
/// version has to prove itself, remote access through the platform's secure tunnel. Root's file, never the service user's: the agent and the
/// root step refuse one the service user could change (`BoardSettingsFile`). It holds no
/// secret. `key = value` lines and `#` comments, like the key file; every key is optional.
public struct BoardSettings: Equatable, Sendable {
    public static let defaultPath = "/etc/wisp/board.conf"

    /// The platform's `reboot` service may restart the board (through wisp-update.service).
    public var allowReboot = false
    /// The PEM public key (ECDSA P-256) that OTA packages must be signed with.
    public var otaPublicKey = "/etc/wisp/ota.pub"
    /// Seconds a new binary has to reach the platform before the root step rolls it back.
    public var otaConfirmSeconds = 300
    /// The OTA module the root step installs packages of (the key file's ota_module must match).
    public var otaModule = "wisp"
    /// The console may open the secure tunnel to this board's loopback services (issue 28).
    public var remoteAccess = false
    /// The services a tunnel session may reach, by service type: `_SSH` is 127.0.0.1:22
    /// unless a `tunnel_service._SSH` line says another port; others only when declared.
    public var tunnelServices: [TunnelService] = []

    public struct TunnelService: Equatable, Sendable {
        public var name: String
        public var port: UInt16
    }

    /// The hosts a tunnel may connect to: a name or address, or `.suffix` for every host
    /// under it. None unless root names them: a default wide enough for the platform's
    /// tunnel (its domains) would also let in any host a cloud customer can serve there.
    public var tunnelHosts: [String] = []

    /// At most this many `tunnel_service.` lines.
    public static let maxTunnelServices = 8

    /// True when the tunnel's `host` is one `tunnelHosts` allows (ASCII letters compared
    /// without case).
    public func tunnelHostAllowed(_ host: String) -> Bool {
        let h = Array(host.utf8).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        for allowed in tunnelHosts {
            let a = Array(allowed.utf8).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
            if a.first == UInt8(ascii: ".") ? (h.count > a.count && h.suffix(a.count).elementsEqual(a)) : h == a { return true }
        }
        return false
    }

    /// The loopback port of service type `name` (its bytes), or nil when it is not declared.
    public func tunnelPort<C: Collection>(_ name: C) -> UInt16? where C.Element == UInt8 {
        for service in tunnelServices where service.name.utf8.elementsEqual(name) { return service.port }
        return name.elementsEqual("_SSH".utf8) ? 22 : nil
    }

    public init() {}

    public static var keys: [(name: String, allowed: String)] { [
        ("allow_reboot", "true or false (default false; true lets the platform's reboot service restart the board)"),
        ("ota_public_key", "absolute path of the PEM public key (ECDSA P-256) OTA packages are signed with (default /etc/wisp/ota.pub); without it OTA is refused"),
        ("ota_confirm_seconds", "seconds a new version has to reach the platform before it is rolled back, 5 to 86400 (default 300)"),
        ("ota_module", "the module whose signed packages the root step installs, 1 to 32 of A-Z a-z 0-9 _ - . (default wisp; the key file's ota_module must be the same)"),
        ("remote_access", "true or false (default false; true lets the console open the secure tunnel to 127.0.0.1:22 and the tunnel_service lines, over wss with a verified certificate only)"),
        ("tunnel_hosts", "1 to 8 host names or addresses a tunnel may connect to, separated by spaces; .NAME allows every host under NAME (default none: a tunnel names its host in the log when it is refused)"),
        ("tunnel_service.NAME", "127.0.0.1:PORT (PORT 1 to 65535): the loopback port of the tunnel's service type NAME (1 to 32 of A-Z a-z 0-9 _ - .; _SSH is 127.0.0.1:22 unless set), at most 8 lines"),
    ] }

    /// Parses the file's text; an error names the line and what the key accepts.
    public static func parse(_ text: String) -> Result<BoardSettings, BoardSettingsError> {
        var s = BoardSettings()
        var seen: [(key: String, line: Int)] = []
        var lineNumber = 0
        for raw in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Array(DecimalScan.trimmed(Array(raw)))
            if line.isEmpty || line[0] == UInt8(ascii: "#") { continue }
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else {
                return .failure(BoardSettingsError(line: lineNumber, "expected `key = value` (or a # comment)"))
            }
            let key = String(decoding: DecimalScan.trimmed(Array(line[0..<eq])), as: UTF8.self)
            let value = String(decoding: DecimalScan.trimmed(Array(line[(eq + 1)...])), as: UTF8.self)
            let service = key.startsWith("tunnel_service.") ? String(decoding: key.utf8.dropFirst(15), as: UTF8.self) : nil
            guard let allowed = keys.first(where: { $0.name.equals(service == nil ? key : "tunnel_service.NAME") })?.allowed else {
                var known = ""
                for k in keys { known += (known.isEmpty ? "" : ", ") + k.name }
                return .failure(BoardSettingsError(line: lineNumber, "unknown key '" + LogText.escape(Array(key.utf8.prefix(40))) + "'; known keys: " + known))
            }
            if let first = seen.first(where: { $0.key.equals(key) }) {
                return .failure(BoardSettingsError(line: lineNumber, "'" + key + "' is already set on line \(first.line)"))
            }
            seen.append((key, lineNumber))
            let bad = BoardSettingsError(line: lineNumber, "bad value for '" + key + "': expected " + allowed)
            if let service {
                guard OTAInform.isModuleName(service), let port = loopbackPort(value) else { return .failure(bad) }
                guard s.tunnelServices.count < maxTunnelServices else {
                    return .failure(BoardSettingsError(line: lineNumber, "more than \(maxTunnelServices) tunnel_service lines"))
                }
                s.tunnelServices.append(TunnelService(name: service, port: port))
            } else if key.equals("tunnel_hosts") {
                let names = value.utf8.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
                guard !names.isEmpty, names.count <= 8,
                      names.allSatisfy({ TunnelNotify.isHost($0.startsWith(".") ? String(decoding: $0.utf8.dropFirst(), as: UTF8.self) : $0)
                                         && !$0.startsWith("[") }) else { return .failure(bad) }
                s.tunnelHosts = names
            } else if key.equals("allow_reboot") || key.equals("remote_access") {
                guard value.equals("true") || value.equals("false") else { return .failure(bad) }
                if key.equals("allow_reboot") { s.allowReboot = value.equals("true") } else { s.remoteAccess = value.equals("true") }
            } else if key.equals("ota_module") {
                guard OTAInform.isModuleName(value) else { return .failure(bad) }
                s.otaModule = value
            } else if key.equals("ota_confirm_seconds") {
                guard let n = KeyFile.parseInt(value, in: 5...86_400) else { return .failure(bad) }
                s.otaConfirmSeconds = n
            } else {
                guard isAbsolutePath(value) else { return .failure(bad) }
                s.otaPublicKey = value
            }
        }
        return .success(s)
    }

    /// The port of `127.0.0.1:PORT`: a tunnel reaches loopback services only.
    static func loopbackPort(_ value: String) -> UInt16? {
        guard value.startsWith("127.0.0.1:"), let port = KeyFile.parseInt(String(decoding: value.utf8.dropFirst(10), as: UTF8.self), in: 1...65_535) else { return nil }
        return UInt16(port)
    }

    /// `/` then printable ASCII, no `..` component, at most 256 bytes.
    static func isAbsolutePath(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count > 1, b.count <= 256, b[0] == UInt8(ascii: "/") else { return false }
        for c in b where c <= 0x20 || c >= 0x7F { return false }
        for part in b.split(separator: UInt8(ascii: "/")) where part.count == 2 && part[part.startIndex] == UInt8(ascii: ".") && part[part.startIndex + 1] == UInt8(ascii: ".") {
            return false
        }
        return true
    }

    /// What `wisp check` prints.
    public var lines: [String] {
        [
            "allow_reboot = " + (allowReboot ? "true" : "false"),
            "ota_public_key = " + otaPublicKey,
            "ota_confirm_seconds = \(otaConfirmSeconds)",
            "ota_module = " + otaModule,
            "remote_access = " + (remoteAccess ? "true" : "false"),
        ] + (tunnelHosts.isEmpty ? [] : ["tunnel_hosts =" + tunnelHosts.reduce("") { $0 + " " + $1 }]) + tunnelServices.map { "tunnel_service." + $0.name + " = 127.0.0.1:\($0.port)" }
    }
}

public struct BoardSettingsError: Error, Equatable, Sendable {
    public var line: Int
    public var reason: String

    public init(line: Int, _ reason: String) {
        self.line = line
        self.reason = reason
    }

    public var message: String { (line > 0 ? "line \(line): " : "") + reason }
}
