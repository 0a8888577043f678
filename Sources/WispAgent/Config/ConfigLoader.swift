import WispCore

/// Loads the key file from disk: refuses one that group or others can read, parses it,
/// and fills in the client id from the board when the file has none.
public enum ConfigLoader {
    public static let defaultPath = "/etc/wisp/device.key"

    /// `remote`: a config fragment from the platform to check against this key file
    /// instead of the one kept in `state_dir/remote.conf` (which is used when nil).
    /// The key file alone, read as a secret file (owner and mode checked, no link
    /// followed): nothing under state_dir, which the service user can write (`wisp status`,
    /// run by root, needs only this).
    public static func keyFile(_ path: String) -> Result<(text: String, config: DeviceConfig), ConfigError> {
        let bytes: [UInt8]
        // 16 KiB: hundreds of sensor lines; the read buffer is the start-up heap peak.
        switch System.readSecretFile(path, limit: 16_384) {
        case .failure(.system(let e)): return .failure(.unreadable(path, e))
        case .failure(.access(let problem)): return .failure(.access(path, problem))
        case .success(let b): bytes = b
        }
        let text = String(decoding: bytes, as: UTF8.self)
        do { return .success((text, try KeyFile.parse(text))) } catch {
            return .failure(.invalid(path, error))
        }
    }

    public static func load(_ path: String, remote candidate: String? = nil, log: Log, board: Board) -> Result<LoadedConfig, ConfigError> {
        let text: String
        var config: DeviceConfig
        switch keyFile(path) {
        case .failure(let e): return .failure(e)
        case .success(let read): (text, config) = read
        }
        // The platform's remote config, kept under state_dir, over the key file's settings.
        var remoteId: String?
        var remoteHash: UInt64 = 0
        let kept = remotePath(config)
        if let remote = candidate ?? System.readText(kept, limit: Int(ConfigFile.maxBytes) + 256) {
            do {
                config = try KeyFile.parse(text, remote: remote)
                remoteId = remoteConfigId(remote)
                remoteHash = fingerprint(Array(remote.utf8))
            } catch {
                if candidate != nil { return .failure(.invalid(path, error)) }
                log.warning(kept + ": " + error.message + "; the remote config is ignored until the platform sends another")
            }
        }
        guard let clientId = config.clientId ?? BoardIdentity.defaultClientId(board) else {
            return .failure(.noClientId(path))
        }
        // A product secret and no device_name: the board's name (client_id, else its serial or MAC).
        var nameFromBoard = false
        if config.deviceNameFromBoard {
            guard KeyFile.isPlatformName(clientId) else { return .failure(.noClientId(path)) }
            config = config.named(clientId)
            nameFromBoard = true
        }
        // A product secret: the identity a registration left, if there is one, wins.
        var registered: String?
        var secretLeft = false
        if case .unregistered(let pk, let dn, let ps, _, _) = config.identity {
            let file = identityPath(config)
            switch readIdentity(file, productKey: pk, deviceName: dn) {
            case .success(.secret(let secret)?):
                config = config.registered(deviceSecret: secret)
                registered = file
                secretLeft = ps != nil
            case .success(.token(let cid, let token)?):
                config = config.registered(clientId: cid, token: token)
                registered = file
                secretLeft = ps != nil
            case .success(nil):
                if ps == nil { return .failure(.notRegistered(path, file)) }
            case .failure(let e): return .failure(e)
            }
        }
        return .success(LoadedConfig(path: path, device: config, clientId: clientId, fingerprint: fingerprint(text.utf8) ^ remoteHash, board: board,
                                     registeredFrom: registered, remoteConfigId: remoteId, deviceNameFromBoard: nameFromBoard,
                                     productSecretLeft: secretLeft))
    }

    /// Where the last remote config that was applied is kept: the fragment as the platform
    /// sent it (so its line numbers stay the console's), then a last line `# configId = ID`.
    public static func remotePath(_ device: DeviceConfig) -> String { device.stateDir + "/remote.conf" }

    public static func remoteConfigId(_ text: String) -> String? {
        let marker = Array("\n# configId = ".utf8)
        let bytes = Array(text.utf8)
        guard bytes.count > marker.count else { return nil }
        var start = bytes.count - marker.count
        while start >= 0 {
            if Array(bytes[start..<(start + marker.count)]) == marker {
                let id = bytes[(start + marker.count)...].prefix { $0 != UInt8(ascii: "\n") }
                return String(decoding: id, as: UTF8.self)
            }
            start -= 1
        }
        return nil
    }

    /// Where dynamic registration keeps the device secret it got.
    public static func identityPath(_ device: DeviceConfig) -> String { device.stateDir + "/identity" }

    /// The identity in `path` (nil when there is no file), checked like the key file.
    static func readIdentity(_ path: String, productKey: String, deviceName: String) -> Result<DynamicRegistration.Granted?, ConfigError> {
        switch System.readSecretFile(path, limit: 4096) {
        case .failure(.system(let e)) where e.errno == 2: return .success(nil)  // ENOENT: not registered yet
        case .failure(.system(let e)): return .failure(.unreadable(path, e))
        case .failure(.access(let problem)): return .failure(.access(path, problem))
        case .success(let bytes):
            guard let record = StateRecord.parse(bytes),
                  record["product_key"]?.equals(productKey) == true, record["device_name"]?.equals(deviceName) == true else {
                return .failure(.identity(path))
            }
            if let secret = record["device_secret"], !secret.isEmpty { return .success(.secret(secret)) }
            if let cid = record["client_id"], !cid.isEmpty, let token = record["device_token"], !token.isEmpty {
                return .success(.token(clientId: cid, token: token))
            }
            return .failure(.identity(path))
        }
    }

    /// FNV-1a of the file, to tell on SIGHUP whether it changed (no secret is kept for it).
    static func fingerprint<S: Sequence<UInt8>>(_ bytes: S) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}

public struct LoadedConfig: Sendable {
    public var path: String
    public var device: DeviceConfig
    public var clientId: String
    public var fingerprint: UInt64
    /// The board it was loaded on (its serial may be the client id); what reads the board uses it.
    public var board: Board
    /// The identity file the device secret came from (dynamic registration), if it did.
    public var registeredFrom: String? = nil
    /// The platform's remote config in force (its configId), if any.
    public var remoteConfigId: String? = nil
    /// The device name is the board's (product secret, no device_name in the key file).
    public var deviceNameFromBoard = false
    /// Registered, and the key file still holds the fleet's product secret: a board that
    /// is taken gives it away. `wisp check` and `wisp run` say to remove it.
    public var productSecretLeft = false

    public var productSecretWarning: String {
        "the key file " + path + " still holds product_secret though this board is registered (" + (registeredFrom ?? "state_dir/identity")
            + "): remove the line; the fleet's secret should not stay on every board"
    }
}

/// Why the key file could not be used. Each message names the file and the fix; none
/// holds a value from the file.
public enum ConfigError: Error, Sendable {
    case unreadable(String, SystemError)
    case access(String, KeyFileAccess.Problem)
    case invalid(String, KeyFileError)
    case noClientId(String)
    case identity(String)
    case notRegistered(String, String)

    public var message: String {
        switch self {
        case .unreadable(let path, let e):
            e.errno == 40  // ELOOP: O_NOFOLLOW met a symlink
                ? "key file " + path + " is a symbolic link; wisp does not follow links to its secret: point --config at the file itself"
                : "cannot read key file " + path + ": " + e.message
        case .access(let path, let problem): KeyFileAccess.message(problem, path: path)
        case .invalid(let path, let e): path + ": " + e.message
        case .noClientId(let path): path + ": no client_id, and the board has no serial number or MAC address to use: set client_id"
        case .identity(let path): path + " is not the identity of this key file's product_key and device_name: remove it to register again"
        case .notRegistered(let path, let identity):
            path + ": no device_secret and no product_secret, and no registered identity in " + identity
                + ": add device_secret, or product_secret to register this board"
        }
    }
}

/// The board's own identity, for the default client id.
public enum BoardIdentity {
    /// The serial number (device tree or /proc/cpuinfo), else the first non-loopback MAC.
    public static func defaultClientId(_ board: Board) -> String? {
        if let serial = serialNumber(board) { return serial }
        return macAddress(board)
    }

    static func serialNumber(_ board: Board) -> String? {
        if let text = System.readText(board.path("/sys/firmware/devicetree/base/serial-number")) {
            let s = clean(text)
            if !s.isEmpty && KeyFile.isClientId(s) { return s }
        }
        if let cpuinfo = System.readText(board.path("/proc/cpuinfo")) {
            for line in cpuinfo.pieces("\n") where line.startsWith("Serial") {
                if let colon = line.utf8.firstIndex(of: UInt8(ascii: ":")) {
                    let s = clean(String(decoding: line.utf8[line.utf8.index(after: colon)...], as: UTF8.self))
                    if !s.isEmpty && KeyFile.isClientId(s) && s.utf8.contains(where: { $0 != UInt8(ascii: "0") }) { return s }
                }
            }
        }
        return nil
    }

    static func macAddress(_ board: Board) -> String? {
        let base = board.path("/sys/class/net")
        for name in System.listDirectory(base) where !name.equals("lo") {
            guard let text = System.readText(base + "/" + name + "/address") else { continue }
            let mac = clean(text)
            if mac.utf8.count == 17 && !mac.equals("00:00:00:00:00:00") { return mac }
        }
        return nil
    }

    /// Drops NULs, whitespace and newlines around a value read from sysfs.
    static func clean(_ s: String) -> String {
        var bytes: [UInt8] = []
        for b in s.utf8 where b > 0x20 && b < 0x7F { bytes.append(b) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
