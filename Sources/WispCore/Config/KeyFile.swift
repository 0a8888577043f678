/// The key file: `key = value` lines, `#` comments, one file per device.
///
/// Unknown keys, duplicates and bad values are errors that name the line and the allowed
/// values. Values are never echoed in errors, so a mistyped line cannot leak the secret.
public enum KeyFile {
    /// Every key the file may hold, with what it accepts (for errors and `--help`). Made
    /// when asked (parsing, errors, help), not kept for the life of the process.
    public static var keys: [(name: String, allowed: String)] { [
        ("endpoint", "ws://, wss://, mqtt:// or mqtts:// then host[:port][/path], e.g. wss://host:443/mqtt"),
        ("product_key", "the product's key from the platform"),
        ("device_name", "the device's name from the platform"),
        ("device_secret", "the device's secret from the platform"),
        ("product_secret", "the product's secret, instead of device_secret: one image for every board; wisp registers itself (dynamic registration, wss only) and keeps the secret it gets in state_dir/identity"),
        ("register_mode", "register (default: the device is added in the console first) or regnwl (the platform creates it), with product_secret"),
        ("instance_id", "the instance id of a new-style IoT Platform instance (registration then uses securemode=-2)"),
        ("client_id", "1 to 64 of A-Z a-z 0-9 - _ . : (default: the board's serial, else its MAC)"),
        ("sign_method", "hmacmd5, hmacsha1 or hmacsha256 (default hmacsha256)"),
        ("sign_timestamp", "now (default), off, or a fixed number of milliseconds"),
        ("keepalive", "seconds, 30 to 1200 (default 300)"),
        ("ca_file", "path of a PEM bundle of trusted roots (default: the system bundle)"),
        ("tls_insecure", "true or false (default false; true skips certificate checks, lab use only)"),
        ("allow_plaintext_control", "true or false (default false; true lets anyone on the path of a ws://, mqtt:// or tls_insecure link drive outputs, call services, push remote config and offer OTA upgrades, which the root step installs: lab use only)"),
        ("allow_reboot", KeyFile.movedToBoard),
        ("proxy", "http://host:port of an HTTP CONNECT proxy"),
        ("telemetry_interval", "seconds between property posts, 1 to 86400 (default 60)"),
        ("username", "user name for brokers other than the platform"),
        ("password", "password for brokers other than the platform"),
        ("will_topic", "topic of the Last Will (brokers other than the platform)"),
        ("will_payload", "payload of the Last Will (default: offline)"),
        ("buffer_samples", "samples kept while offline, 1 to 100000 (default: an hour's worth, at least 60)"),
        ("buffer_file", "path of a file that keeps unsent samples across restarts and power loss (default: none)"),
        ("ota_module", "the OTA module whose version wisp reports after each connect, 1 to 32 of A-Z a-z 0-9 _ - . (default wisp; default = the device's firmware)"),
        ("state_dir", "directory for OTA downloads and their records (default /var/lib/wisp)"),
        ("ota_max_bytes", "largest OTA package accepted, 1024 to 1073741824 bytes (default 16777216)"),
        ("ota_confirm_seconds", KeyFile.movedToBoard),
        ("log_upload_level", "error, warning (default), info or debug: wisp's log lines at this level and above go up to the console while its log switch is on"),
        ("health_interval", "seconds between health events, 10 to 604800, or 0 for none (default 3600)"),
        ("status_file", "path of the file `wisp status` reads, rewritten by the agent (default /run/wisp/status)"),
        ("tag.NAME", "a device tag sent with the device info: NAME is a letter then letters, digits or _, at most 30; the value at most 128 characters (other than A-Z a-z 0-9 _ - # @ % & : . they are sent as _)"),
        ("sensor.NAME", "a sensor posted as property NAME: " + SensorSyntax.help),
        ("output.NAME", "a GPIO output the platform may set as property NAME: gpio:gpiochipN:LINE"),
    ] }

    static let movedToBoard = "(moved to the board settings, /etc/wisp/board.conf: ignored in the key file)"

    /// The most sensors and outputs a device has (key file and remote config together).
    public static let maxThings = 128

    /// Keys a remote config (the platform's `thing.config.push`) may set: how often and
    /// what to post, never the identity, the endpoint, TLS or paths.
    public static func remotelySettable(_ key: String) -> Bool {
        key.equals("telemetry_interval") || key.equals("keepalive") || key.startsWith("sensor.") || key.startsWith("output.")
    }

    /// Parses the text of a key file; `remote`, a config fragment from the platform, sets
    /// the keys it names over the file's (sensors and outputs by name). Errors in `remote`
    /// name its lines as "remote config line N".
    public static func parse(_ text: String, remote: String? = nil) throws(KeyFileError) -> DeviceConfig {
        var values = Entries()
        let keys = Self.keys  // once per parse
        var sensors: [SensorSpec] = []
        var outputs: [OutputSpec] = []
        var things: [(name: String, line: Int)] = []
        // The fragment first (lines numbered negative), so the file's lines it overrides are skipped.
        var fromRemote = Entries()
        var remoteSensors: [SensorSpec] = []
        var remoteOutputs: [OutputSpec] = []
        var remoteThings: [(name: String, line: Int)] = []
        if let remote {
            try scan(remote, sign: -1, keys: keys, values: &fromRemote, sensors: &remoteSensors, outputs: &remoteOutputs, things: &remoteThings, skip: nil)
            for e in fromRemote.items where !remotelySettable(e.key) {
                throw KeyFileError(line: e.line, problem: .notRemote(e.key))
            }
            try confine(remote: &remoteSensors, remoteOutputs, things: remoteThings, localText: text, keys: keys)
        }
        try scan(text, sign: 1, keys: keys, values: &values, sensors: &sensors, outputs: &outputs, things: &things,
                 skip: remote == nil ? nil : { key in fromRemote[key] != nil || remoteThings.contains(where: { key.equals("sensor." + $0.name) || key.equals("output." + $0.name) }) })
        values.items += fromRemote.items
        sensors += remoteSensors
        outputs += remoteOutputs
        things += remoteThings
        // Each sample holds every value (a record counts them in a byte), each read in turn
        // in the loop: a bound, so no fragment can make a sample that cannot be stored.
        if things.count > maxThings {
            throw KeyFileError(line: things[maxThings].line, problem: .badValue("sensor." + things[maxThings].name,
                                                                                allowed: "at most \(maxThings) sensor. and output. lines in all"))
        }
        func bad(_ key: String) -> KeyFileError {
            let allowed = keys.first(where: { $0.name.equals(key) })?.allowed ?? ""
            return KeyFileError(line: values[key]?.line ?? 0, problem: .badValue(key, allowed: allowed))
        }
        func missing(_ key: String, _ why: String) -> KeyFileError {
            KeyFileError(line: 0, problem: .missing(key, why: why))
        }
        func string(_ key: String) throws(KeyFileError) -> String? {
            guard let v = values[key]?.value else { return nil }
            if v.isEmpty { throw bad(key) }
            return v
        }
        func integer(_ key: String, in range: ClosedRange<Int>) throws(KeyFileError) -> Int? {
            guard let v = try string(key) else { return nil }
            guard let n = parseInt(v, in: range) else { throw bad(key) }
            return n
        }

        guard let endpointText = try string("endpoint") else { throw missing("endpoint", "where to connect, e.g. wss://host:443/mqtt") }
        guard let endpoint = Endpoint(parsing: endpointText) else { throw bad("endpoint") }

        let identity: DeviceConfig.Identity
        var registerMode = DynamicRegistration.Mode.register
        var instanceId: String?
        let pk = try string("product_key"), dn = try string("device_name"), ds = try string("device_secret")
        let ps = try string("product_secret")
        if pk != nil || dn != nil || ds != nil || ps != nil {
            guard let pk else { throw missing("product_key", "the platform triplet needs product_key, device_name and device_secret") }
            // With a product secret the device name may be left to the board (its serial or
            // MAC, as client_id): one identical image for every board. Filled in by the loader.
            // So may a board that registered and had the product secret removed (no secret at all).
            guard let dn = dn ?? (ds == nil ? "" : nil) else {
                throw missing("device_name", "the platform triplet needs product_key, device_name and device_secret")
            }
            if ds != nil, ps != nil { throw KeyFileError(line: values["product_secret"]!.line, problem: .conflict("product_secret", with: "device_secret")) }
            if ps != nil && !endpoint.isTLS { throw KeyFileError(line: values["product_secret"]!.line, problem: .conflict("product_secret", with: "an endpoint without TLS (dynamic registration is wss:// or mqtts:// only)")) }
            if !isPlatformName(pk) { throw bad("product_key") }
            if !dn.isEmpty && !isPlatformName(dn) { throw bad("device_name") }
            if values["username"] != nil { throw KeyFileError(line: values["username"]!.line, problem: .conflict("username", with: "product_key")) }
            if values["password"] != nil { throw KeyFileError(line: values["password"]!.line, problem: .conflict("password", with: "product_key")) }
            var method = SignMethod.hmacsha256
            if let m = try string("sign_method") {
                guard let parsed = SignMethod(name: m) else { throw bad("sign_method") }
                method = parsed
            }
            var stamp = DeviceConfig.SignTimestamp.now
            if let t = try string("sign_timestamp") {
                if t.equals("now") { stamp = .now } else if t.equals("off") { stamp = .off } else {
                    guard parseDecimal(t) != nil, t.utf8.count <= 15 else { throw bad("sign_timestamp") }
                    stamp = .fixed(t)
                }
            }
            if ds != nil, let line = values["register_mode"]?.line ?? values["instance_id"]?.line {
                throw KeyFileError(line: line, problem: .conflict(values["register_mode"] != nil ? "register_mode" : "instance_id", with: "device_secret (they are for product_secret)"))
            }
            if let m = try string("register_mode") {
                guard let mode = DynamicRegistration.Mode.allCases.first(where: { $0.rawValue.equals(m) }) else { throw bad("register_mode") }
                registerMode = mode
            }
            if let id = try string("instance_id") {
                guard isClientId(id) else { throw bad("instance_id") }
                instanceId = id
            }
            if let ds {
                identity = .platform(productKey: pk, deviceName: dn, deviceSecret: ds, signMethod: method, timestamp: stamp)
            } else {
                // No secret at all: registered before (ConfigLoader insists on state_dir/identity).
                identity = .unregistered(productKey: pk, deviceName: dn, productSecret: ps, signMethod: method, timestamp: stamp)
            }
        } else {
            for key in ["sign_method", "sign_timestamp", "register_mode", "instance_id"] where values[key] != nil {
                throw KeyFileError(line: values[key]!.line, problem: .conflict(key, with: "username/password (no product_key)"))
            }
            identity = .plain(username: try string("username"), password: try string("password"))
        }

        var config = DeviceConfig(endpoint: endpoint, identity: identity)
        config.registerMode = registerMode
        config.instanceId = instanceId
        config.sensors = sensors
        config.outputs = outputs
        if let id = try string("client_id") {
            guard isClientId(id) else { throw bad("client_id") }
            config.clientId = id
        }
        if let k = try integer("keepalive", in: DeviceConfig.keepAliveRange) { config.keepAlive = UInt16(k) }
        if let t = try integer("telemetry_interval", in: DeviceConfig.telemetryIntervalRange) { config.telemetryInterval = t }
        config.caFile = try string("ca_file")
        config.bufferSamples = try integer("buffer_samples", in: 1...100_000) ?? max(60, min(100_000, 3600 / config.telemetryInterval))
        config.bufferFile = try string("buffer_file")
        if let module = try string("ota_module") {
            guard OTAInform.isModuleName(module) else { throw bad("ota_module") }
            config.otaModule = module
        }
        if let dir = try string("state_dir") {
            guard dir.startsWith("/"), !dir.utf8.contains(0) else { throw bad("state_dir") }
            config.stateDir = dir
        }
        if let n = try integer("ota_max_bytes", in: 1024...(1 << 30)) { config.otaMaxBytes = Int64(n) }
        if let insecure = try string("tls_insecure") {
            if insecure.equals("true") { config.tlsInsecure = true } else if insecure.equals("false") { config.tlsInsecure = false } else { throw bad("tls_insecure") }
        }
        if let allow = try string("allow_plaintext_control") {
            if allow.equals("true") { config.allowPlaintextControl = true } else if allow.equals("false") { config.allowPlaintextControl = false } else {
                throw bad("allow_plaintext_control")
            }
        }
        // Settings that act as root moved to the board settings: read there, not here (a key
        // file that still has them keeps working, and `wisp check` and `run` say so).
        for key in ["allow_reboot", "ota_confirm_seconds"] where values[key] != nil { config.movedToBoard.append(key) }
        if let p = try string("proxy") {
            guard let proxy = Endpoint(parsing: p, allowing: [.http]), proxy.path.equals(Endpoint.defaultPath) else { throw bad("proxy") }
            config.proxy = proxy
        }
        if config.tlsInsecure, let line = values["product_secret"]?.line {
            // A man-in-the-middle could answer the registration and plant a secret kept for good.
            throw KeyFileError(line: line, problem: .conflict("product_secret", with: "tls_insecure (registration hands out a secret that is kept for good: the server must be verified)"))
        }
        try observability(&config, values: values, bad: bad)
        if let topic = try string("will_topic") {
            config.will = Will(topic: topic, payload: values["will_payload"]?.value ?? "offline")
        } else if values["will_payload"] != nil {
            throw missing("will_topic", "will_payload needs a will_topic")
        }
        return config
    }

    /// What a fragment may do with sensors and outputs: retune those the key file itself
    /// declares (same source, other deadband/every); add sensors of the board's kinds
    /// (thermal, hwmon, IIO, 1-Wire, system) and `file:` sensors under /sys or /proc, read
    /// only from sysfs/procfs (`confined`). Never a GPIO line or an output the key file
    /// does not declare, never a file elsewhere.
    static func confine(remote sensors: inout [SensorSpec], _ outputs: [OutputSpec], things: [(name: String, line: Int)],
                        localText: String, keys: [(name: String, allowed: String)]) throws(KeyFileError) {
        var values = Entries(), localSensors: [SensorSpec] = [], localOutputs: [OutputSpec] = [], localThings: [(name: String, line: Int)] = []
        try scan(localText, sign: 1, keys: keys, values: &values, sensors: &localSensors, outputs: &localOutputs, things: &localThings, skip: nil)
        func line(_ name: String) -> Int { things.first(where: { $0.name.equals(name) })?.line ?? 0 }
        for s in sensors where localOutputs.contains(where: { $0.identifier.equals(s.identifier) }) {
            throw KeyFileError(line: line(s.identifier), problem: .notRemote("sensor." + s.identifier + " (the key file declares " + s.identifier + " as an output)"))
        }
        // By bytes: a synthesized == on String would pull in Unicode normalisation (Tokens.swift).
        for o in outputs where !localOutputs.contains(where: { $0.identifier.equals(o.identifier) && $0.chip.equals(o.chip) && $0.line == o.line }) {
            throw KeyFileError(line: line(o.identifier), problem: .notRemote("output." + o.identifier + " (an output the key file does not declare as gpio:" + o.chip + ":\(o.line))"))
        }
        for i in sensors.indices {
            let s = sensors[i]
            if localSensors.contains(where: { $0.identifier.equals(s.identifier) && sameSource($0.source, s.source) }) { continue }
            if let why = remoteRefusal(s.source) {
                throw KeyFileError(line: line(s.identifier), problem: .notRemote("sensor." + s.identifier + " = " + s.describe + " (" + why + ")"))
            }
            if case .file = s.source { sensors[i].confined = true }
        }
    }

    static func sameSource(_ a: SensorSource, _ b: SensorSource) -> Bool {
        if case .file(_, let s1, let o1) = a, case .file(_, let s2, let o2) = b, s1 != s2 || o1 != o2 { return false }
        return SensorSpec(identifier: "", source: a).describe.equals(SensorSpec(identifier: "", source: b).describe)
    }

    /// Why a fragment may not add a sensor of this source, or nil.
    static func remoteRefusal(_ source: SensorSource) -> String? {
        func plain(_ names: String...) -> Bool {
            names.allSatisfy { n in !n.utf8.contains(UInt8(ascii: "/")) && !n.equals(".") && !n.equals("..") }
        }
        switch source {
        case .thermal(let zone): return plain(zone) ? nil : "a name, not a path"
        case .hwmon(let chip, let input): return plain(chip, input) ? nil : "names, not paths"
        case .iio(let device, let channel): return plain(device, channel) ? nil : "names, not paths"
        case .w1(let id): return plain(id) ? nil : "a name, not a path"
        case .system: return nil
        case .gpio: return "a GPIO line the key file does not declare"
        case .file(let path, _, _):
            guard path.startsWith("/sys/") || path.startsWith("/proc/") else { return "a file outside /sys and /proc" }
            for part in path.pieces("/", omittingEmpty: false).dropFirst() where part.isEmpty || part.equals(".") || part.equals("..") {
                return "a path with an empty, . or .. component"
            }
            return nil
        }
    }

    /// The `key = value` lines of `text` into the lists; `sign` -1 numbers the lines of a
    /// remote fragment. `skip` drops keys (and sensor./output. lines) a fragment overrides.
    static func scan(_ text: String, sign: Int, keys: [(name: String, allowed: String)], values: inout Entries, sensors: inout [SensorSpec],
                     outputs: inout [OutputSpec], things: inout [(name: String, line: Int)], skip: ((String) -> Bool)?) throws(KeyFileError) {
        var lineNumber = 0
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let at = lineNumber * sign
            let line = trim(Array(rawLine))
            if line.isEmpty || line[0] == UInt8(ascii: "#") { continue }
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else {
                throw KeyFileError(line: at, problem: .notKeyValue)
            }
            let key = String(decoding: trim(Array(line[0..<eq])), as: UTF8.self)
            var value = trim(Array(line[(eq + 1)...]))
            if value.count >= 2 && value.first == UInt8(ascii: "\"") && value.last == UInt8(ascii: "\"") {
                value = Array(value[1..<(value.count - 1)])
            }
            if let skip, skip(key) { continue }
            if key.startsWith("sensor.") || key.startsWith("output.") {
                let isSensor = key.startsWith("sensor.")
                let name = String(key.utf8.dropFirst(7))!
                guard SensorSyntax.isIdentifier(name) else {
                    throw KeyFileError(line: at, problem: .badValue(key, allowed: "a property identifier after the dot: a letter, then letters, digits or _"))
                }
                if let first = things.first(where: { $0.name.equals(name) }) {
                    throw KeyFileError(line: at, problem: .duplicate(name, firstLine: first.line))
                }
                let text = String(decoding: value, as: UTF8.self)
                if isSensor {
                    guard let spec = SensorSyntax.parseSensor(identifier: name, text) else {
                        throw KeyFileError(line: at, problem: .badValue(key, allowed: SensorSyntax.help))
                    }
                    sensors.append(spec)
                } else {
                    guard let spec = SensorSyntax.parseOutput(identifier: name, text) else {
                        throw KeyFileError(line: at, problem: .badValue(key, allowed: "gpio:gpiochipN:LINE"))
                    }
                    outputs.append(spec)
                }
                things.append((name, at))
                continue
            }
            guard keys.contains(where: { $0.name.equals(key) }) || key.startsWith("tag.") else {
                throw KeyFileError(line: at, problem: .unknownKey(key))
            }
            if let first = values[key] {
                throw KeyFileError(line: at, problem: .duplicate(key, firstLine: first.line))
            }
            values.items.append((key, String(decoding: value, as: UTF8.self), at))
        }
    }

    /// Product keys and device names: no separators the sign-in strings use.
    public static func isPlatformName(_ s: String) -> Bool {
        for b in s.utf8 where b <= 0x20 || b == 0x7F || b == UInt8(ascii: "&") || b == UInt8(ascii: "|") || b == UInt8(ascii: "/") || b == UInt8(ascii: "+") || b == UInt8(ascii: "#") {
            return false
        }
        return !s.utf8.isEmpty
    }

    /// 1 to 64 of A-Z a-z 0-9 - _ . : (the platform's limit; no `|` or `,`).
    public static func isClientId(_ s: String) -> Bool {
        let n = s.utf8.count
        if n == 0 || n > PlatformIdentity.maxClientIdLength { return false }
        for b in s.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
            if !ok { return false }
        }
        return true
    }

    /// A non-negative decimal without sign or spaces, at most 18 digits. Int64 on every
    /// board: armv7's `Int` is 32 bits, so a number becomes `Int` only through `parseInt`.
    public static func parseDecimal(_ s: String) -> Int64? {
        DecimalScan.whole(Array(s.utf8))
    }

    /// `parseDecimal` checked against `range` as Int64 before it becomes an `Int`: nil when
    /// it is not a number or out of range (never a trap on a 32-bit board).
    public static func parseInt(_ s: String, in range: ClosedRange<Int>) -> Int? {
        guard let n = parseDecimal(s), n >= Int64(range.lowerBound), n <= Int64(range.upperBound) else { return nil }
        return Int(exactly: n)
    }

    static func trim(_ bytes: [UInt8]) -> [UInt8] { Array(DecimalScan.trimmed(bytes)) }

    /// The file's `key = value` lines in order: a few dozen at most, so a list searched by
    /// bytes (a `Dictionary<String, _>` would hash with Unicode normalisation; see Tokens.swift).
    struct Entries {
        var items: [(key: String, value: String, line: Int)] = []
        subscript(key: String) -> (value: String, line: Int)? {
            guard let e = items.first(where: { $0.key.equals(key) }) else { return nil }
            return (e.value, e.line)
        }
    }
}
