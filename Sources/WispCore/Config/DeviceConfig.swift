/// Everything the key file configures, with defaults applied and values checked.
public struct DeviceConfig: Sendable, Equatable {
    /// How `timestamp` enters the platform signature.
    public enum SignTimestamp: Sendable, Equatable {
        /// The current time in milliseconds at each connect (needs a set clock).
        case now
        /// No timestamp in the client id or the signature.
        case off
        /// A fixed value in milliseconds (the platform's C SDKs sign with a far-future
        /// constant so a board without a clock can still connect).
        case fixed(String)
    }

    /// How the device signs in.
    public enum Identity: Sendable, Equatable {
        /// The IoT Platform's triplet and signature.
        case platform(productKey: String, deviceName: String, deviceSecret: String, signMethod: SignMethod, timestamp: SignTimestamp)
        /// A platform device that has only its product's secret: it registers itself
        /// (dynamic registration) and is then a `.platform` device with the secret it got.
        /// No product secret: a board that registered already (the key file names the device,
        /// `state_dir/identity` holds its secret), with the fleet's secret removed.
        case unregistered(productKey: String, deviceName: String, productSecret: String?, signMethod: SignMethod, timestamp: SignTimestamp)
        /// A device the platform created at registration without pre-registration (`regnwl`):
        /// it signs in with the client id and token it was given.
        case token(productKey: String, deviceName: String, clientId: String, token: String)
        /// Any other broker: plain username and password, both optional.
        case plain(username: String?, password: String?)
    }

    public var endpoint: Endpoint
    public var identity: Identity
    /// nil: the agent uses the board's serial number, else its first MAC address.
    public var clientId: String?
    public var keepAlive: UInt16 = 300
    public var caFile: String?
    public var tlsInsecure = false
    /// Lets property sets drive outputs over a link an attacker on the path could write
    /// to (ws://, mqtt://, or TLS without certificate checks).
    public var allowPlaintextControl = false
    /// Keys of the key file that moved to the board settings (allow_reboot,
    /// ota_confirm_seconds): ignored, and named in a warning.
    public var movedToBoard: [String] = []
    public var proxy: Endpoint?
    public var telemetryInterval = 60
    public var will: Will?
    /// Sensors posted each interval; none configured: the board's CPU temperature, load
    /// and available memory.
    public var sensors: [SensorSpec] = []
    public var outputs: [OutputSpec] = []
    /// Capacity of the offline ring, in samples.
    public var bufferSamples = 60
    /// Where the ring is kept on disk, if anywhere.
    public var bufferFile: String?
    /// The OTA module whose version is reported after every CONNACK (platform devices).
    public var otaModule = "wisp"
    /// Where wisp keeps state that is not configuration: OTA downloads and their records.
    public var stateDir = "/var/lib/wisp"
    /// The largest OTA package wisp downloads.
    public var otaMaxBytes: Int64 = 16 << 20
    /// wisp's own log lines at this level and above go up to the console (`thing.log.post`)
    /// while the console's log switch is on (platform devices).
    public var logUploadLevel = Severity.warning
    /// Seconds between `health` events (platform devices); 0: none.
    public var healthInterval = 3600
    /// Where the agent keeps what `wisp status` prints (rewritten atomically; a tmpfs).
    public var statusFile = DeviceConfig.defaultStatusFile
    public static let defaultStatusFile = "/run/wisp/status"
    /// The user's own device tags (`tag.NAME = VALUE` lines), sent with the device info.
    public var tags: [Tag] = []

    public struct Tag: Sendable, Equatable {
        public let name: String
        public let value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }
    public static let healthIntervalRange: ClosedRange<Int> = 10...604_800
    /// The most tags a key file may hold (the platform takes 200 device-info entries; wisp's
    /// own take the rest).
    public static let maxTags = 190

    /// Whether what arrives is known to come from the broker: TLS with the certificate
    /// verified. Otherwise anyone on the path can inject packets.
    public var linkIsAuthenticated: Bool { endpoint.isTLS && !tlsInsecure }

    /// Whether property sets may drive outputs on this link.
    public var controlAllowed: Bool { linkIsAuthenticated || allowPlaintextControl }

    public static let keepAliveRange: ClosedRange<Int> = 30...1200
    public static let telemetryIntervalRange: ClosedRange<Int> = 1...86_400

    /// Alink topics of the thing model for a platform device; nil for plain brokers.
    public var productKey: String? {
        switch identity {
        case .platform(let pk, _, _, _, _), .unregistered(let pk, _, _, _, _), .token(let pk, _, _, _): return pk
        case .plain: return nil
        }
    }

    public var deviceName: String? {
        switch identity {
        case .platform(_, let dn, _, _, _), .unregistered(_, let dn, _, _, _), .token(_, let dn, _, _): return dn
        case .plain: return nil
        }
    }

    /// How a product secret registers (`register_mode`), and the instance id of a
    /// new-style instance (`securemode=-2`).
    public var registerMode = DynamicRegistration.Mode.register
    public var instanceId: String?

    /// The identity with the token a registration without pre-registration gave it.
    public func registered(clientId: String, token: String) -> DeviceConfig {
        var c = self
        if case .unregistered(let pk, let dn, _, _, _) = identity {
            c.identity = .token(productKey: pk, deviceName: dn, clientId: clientId, token: token)
        }
        return c
    }

    /// Whether the device name was left to the board (product secret, no device_name).
    public var deviceNameFromBoard: Bool {
        if case .unregistered(_, let dn, _, _, _) = identity { return dn.isEmpty }
        return false
    }

    /// The identity with the board's name filled in for a device name the key file left out.
    public func named(_ board: String) -> DeviceConfig {
        var c = self
        if case .unregistered(let pk, let dn, let ps, let method, let stamp) = identity, dn.isEmpty {
            c.identity = .unregistered(productKey: pk, deviceName: board, productSecret: ps, signMethod: method, timestamp: stamp)
        }
        return c
    }

    /// The identity with the device secret dynamic registration gave it.
    public func registered(deviceSecret: String) -> DeviceConfig {
        var c = self
        if case .unregistered(let pk, let dn, _, let method, let stamp) = identity {
            c.identity = .platform(productKey: pk, deviceName: dn, deviceSecret: deviceSecret, signMethod: method, timestamp: stamp)
        }
        return c
    }

    /// The settings as `key = value` lines, secrets redacted (what `wisp check` prints).
    public func describe(effectiveClientId: String) -> String {
        var lines: [String] = []
        lines.append("endpoint = " + endpoint.description)
        switch identity {
        case .platform(let pk, let dn, _, let method, let ts), .unregistered(let pk, let dn, _, let method, let ts):
            lines.append("product_key = " + pk)
            lines.append("device_name = " + dn)
            if case .unregistered = identity {
                lines.append("product_secret = (set, redacted)")
                lines.append("register_mode = " + registerMode.rawValue + (instanceId.map { ", instance_id = " + $0 } ?? ""))
                lines.append("identity = not registered yet: wisp registers at its first connect (or run `wisp register`)")
            } else {
                lines.append("device_secret = (set, redacted)")
            }
            lines.append("sign_method = " + method.rawValue)
            lines.append("ota_module = " + otaModule)
            lines.append("ota_max_bytes = \(otaMaxBytes)")
            lines.append("log_upload_level = " + logUploadLevel.name + " (while the console's log switch is on)")
            lines.append("health_interval = \(healthInterval)" + (healthInterval == 0 ? " (no health events)" : ""))
            for t in tags { lines.append("tag." + t.name + " = " + t.value) }
            switch ts {
            case .now: lines.append("sign_timestamp = now")
            case .off: lines.append("sign_timestamp = off")
            case .fixed(let value): lines.append("sign_timestamp = " + value)
            }
        case .token(let pk, let dn, let cid, _):
            lines.append("product_key = " + pk)
            lines.append("device_name = " + dn)
            lines.append("product_secret = (set, redacted; registered without pre-registration: client id " + cid + ", token redacted)")
        case .plain(let user, let password):
            lines.append("username = " + (user ?? "(none)"))
            lines.append("password = " + (password == nil ? "(none)" : "(set, redacted)"))
        }
        lines.append("client_id = " + effectiveClientId + (clientId == nil ? " (from the board)" : ""))
        lines.append("keepalive = \(keepAlive)")
        lines.append("telemetry_interval = \(telemetryInterval)")
        if endpoint.isTLS {
            lines.append("ca_file = " + (caFile ?? "/etc/ssl/certs/ca-certificates.crt (system bundle)"))
            lines.append("tls_insecure = " + (tlsInsecure ? "true (certificate NOT verified)" : "false"))
        }
        if let proxy { lines.append("proxy = http://" + proxy.hostHeader) }
        lines.append("state_dir = " + stateDir)
        lines.append("status_file = " + statusFile)
        for key in movedToBoard { lines.append(key + " = (ignored here: it moved to the board settings, board.conf)") }
        lines.append("buffer_samples = \(bufferSamples)")
        if let bufferFile { lines.append("buffer_file = " + bufferFile) }
        if let will { lines.append("will_topic = " + will.topic) }
        for s in sensors { lines.append("sensor." + s.identifier + " = " + s.describe) }
        for o in outputs { lines.append("output." + o.identifier + " = gpio:" + o.chip + ":\(o.line)") }
        if !linkIsAuthenticated {
            lines.append("allow_plaintext_control = " + (allowPlaintextControl
                ? "true (anyone on the path of this unauthenticated link may set outputs, call services, push config and offer OTA upgrades)"
                : "false (nothing that arrives over this link controls the board: sets, services, remote config and OTA are refused)"))
        }
        var out = ""
        for line in lines { out += line + "\n" }
        return out
    }
}
