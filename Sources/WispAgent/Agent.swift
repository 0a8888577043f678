import CWispPlatform
import WispCore

/// The agent's entry points: `wisp run` (a `Device` per key-file version), `wisp check
/// --online` (a bare `Driver`), and what both need from the key file.
public enum Agent {
    /// wisp's version: `wisp version`, the package, and the OTA version report. Kept in
    /// the C layer (sys.c) behind a marker a build can be found by.
    public static var version: String { String(cString: wisp_version()) }

    /// This build's OTA security counter (sys.c, behind its marker): no package signed
    /// with a lower one is taken.
    public static var securityCounter: Int64 {
        DecimalScan.whole(Array(String(cString: wisp_security_counter()).utf8)) ?? 0
    }

    /// The platform identity, when the key file holds the triplet.
    public static func platformIdentity(_ loaded: LoadedConfig) -> PlatformIdentity? {
        guard case .platform(let pk, let dn, let ds, let method, _) = loaded.device.identity else { return nil }
        return PlatformIdentity(productKey: pk, deviceName: dn, deviceSecret: ds, clientId: loaded.clientId, signMethod: method)
    }

    /// The timestamp to sign with now, per `sign_timestamp`.
    public static func signTimestamp(_ device: DeviceConfig) -> String? {
        guard case .platform(_, _, _, _, let stamp) = device.identity else { return nil }
        switch stamp {
        case .now: return String(System.realtimeMillis)
        case .off: return nil
        case .fixed(let value): return value
        }
    }

    /// CONNECT fields for this attempt.
    public static func credentials(_ loaded: LoadedConfig) -> MQTTCredentials {
        if let identity = platformIdentity(loaded) {
            return identity.credentials(secureMode: loaded.device.endpoint.secureMode, timestamp: signTimestamp(loaded.device),
                                        sign: Crypto.hmacHex)
        }
        if case .token(let pk, let dn, let cid, let token) = loaded.device.identity {
            return TokenIdentity(productKey: pk, deviceName: dn, clientId: cid, token: token).credentials
        }
        guard case .plain(let user, let password) = loaded.device.identity else {
            return MQTTCredentials(clientId: loaded.clientId, username: nil, password: nil)
        }
        return MQTTCredentials(clientId: loaded.clientId, username: user, password: password)
    }

    /// The thing model's topics: the platform's for a platform device, `wisp/{clientId}/…`
    /// on other brokers.
    static func topics(_ loaded: LoadedConfig) -> AlinkTopics {
        if let pk = loaded.device.productKey, let dn = loaded.device.deviceName {
            return AlinkTopics(productKey: pk, deviceName: dn)
        }
        return AlinkTopics(plainClientId: loaded.clientId)
    }

    /// The session's fixed sizes and timings for this key file.
    public static func sessionConfig(_ loaded: LoadedConfig) -> SessionConfig {
        let endpoint = loaded.device.endpoint
        var config = SessionConfig(keepAlive: loaded.device.keepAlive,
                                   webSocket: endpoint.isWebSocket ? .init(hostHeader: endpoint.hostHeader, path: endpoint.path) : nil)
        let topics = topics(loaded)
        config.subscriptions = topics.subscriptions
        if TunnelPolicy.isAllowed(loaded, platform: Outbox.isPlatform(topics)) { config.subscriptions += topics.tunnelSubscriptions }
        // Outbound buffers from what this key file can send: its largest post or a reply
        // (PUBLISH overhead: fixed header ≤ 5, topic length 2, packet id 2).
        let device = loaded.device
        let names = (device.sensors.isEmpty ? Thing.defaults : device.sensors).map { $0.identifier } + device.outputs.map { $0.identifier }
        let post = PropertyPost.maximumSize(names: names) + topics.longestPostTopic
        let reply = Outbox.replyCapacity + max(topics.setReply.utf8.count, topics.ntpRequest?.utf8.count ?? 0)
        config.maxOutboundPacket = max(post, reply) + 9
        return config
    }

    /// A driver for this key file's endpoint: sockets, TLS and proxy as configured, the
    /// key file's sign-in for each attempt, CSPRNG keys.
    public static func driver(_ loaded: LoadedConfig, config: SessionConfig, signals: Int32) -> Driver<SocketTransport> {
        let device = loaded.device
        return driver(device, config: config, signals: signals) {
            let c = credentials(loaded)
            return MQTTEncoder.Connect(clientId: c.clientId, username: c.username, password: c.password,
                                       keepAlive: device.keepAlive, will: device.will)
        }
    }

    /// The same with another sign-in (`connect`: dynamic registration's).
    static func driver(_ device: DeviceConfig, config: SessionConfig, signals: Int32,
                       connect: @escaping () -> MQTTEncoder.Connect) -> Driver<SocketTransport> {
        Driver(session: Session(config: config, now: wisp_monotonic_ms(), random: Entropy.fill), signals: signals,
               transport: { SocketTransport(for: device, to: device.endpoint) }, connect: connect, webSocketKey: Entropy.webSocketKey)
    }

    /// Said once at start-up: what an unencrypted or unverified link exposes.
    static func warnAboutThePlainLink(_ device: DeviceConfig, log: Log) {
        guard !device.linkIsAuthenticated else { return }
        if !device.endpoint.isTLS {
            log.warning("endpoint " + device.endpoint.description + " is not encrypted: telemetry and commands cross the network "
                        + "in clear and anyone on the path can inject messages; use wss:// (securemode=2)")
        }
        if !device.outputs.isEmpty {
            log.warning(device.allowPlaintextControl
                ? "allow_plaintext_control = true: property sets may drive outputs over this unauthenticated link"
                : "outputs will not be set by property sets over this unauthenticated link (allow_plaintext_control = false)")
        }
    }

    /// `wisp check --online`: one sign-in attempt, then a clean DISCONNECT. 0 when the
    /// CONNACK accepts, 77 when the platform refuses the credentials (CONNACK 4/5, HTTP
    /// 401/403 at the upgrade), 69 when it cannot be reached (DNS, TCP, TLS, timeouts).
    /// Touches no output, no buffer file and publishes nothing.
    public static func probe(_ loaded: LoadedConfig, log: Log) -> ExitCode {
        if case .unregistered = loaded.device.identity {
            log.error("not registered yet: `wisp register` (or `wisp run`) registers with the product secret first")
            return .configuration
        }
        var config = sessionConfig(loaded)
        config.subscriptions = []
        var driver = driver(loaded, config: config, signals: -1)
        var result = ExitCode.unreachable
        while true {
            switch driver.next(until: UInt64.max) {
            case .connecting:
                log.info("connecting to " + loaded.device.endpoint.description)
            case .openFailed(let message):
                log.warning("cannot connect: " + message)
            case .session(.online):
                log.info("signed in: " + loaded.device.endpoint.description + " accepted " + loaded.clientId)
                result = .ok
                driver.session.stop(now: System.monotonicMillis)
            case .session(.offline(let reason, _)):
                log.error("sign-in failed: " + reason.message)
                result = reason.isRefusal ? .refused : .unreachable
                driver.session.stop(now: System.monotonicMillis)
            case .stopped:
                return result
            case .pollFailed(let e):
                log.error("poll failed: " + e.message)
                return .failure
            case .opened, .session, .closed, .signal, .extra, .deadline:
                break
            }
        }
    }

    /// `wisp run`: runs until SIGTERM/SIGINT; SIGHUP re-reads the key file.
    public static func run(configPath: String, log: Log, board: Board) -> ExitCode {
        var loaded: LoadedConfig
        switch ConfigLoader.load(configPath, log: log, board: board) {
        case .success(let l): loaded = l
        case .failure(let e):
            log.error(e.message)
            return .configuration
        }
        // wisp's own lines for the console (platform devices): one ring for the process,
        // kept from here on; LogUpload sends them while the console's switch is on.
        let sink = Outbox.isPlatform(topics(loaded)) ? LogSink(threshold: loaded.device.logUploadLevel, monotonic: { wisp_monotonic_ms() }) : nil
        let log = log.uploading(to: sink)
        warnAboutThePlainLink(loaded.device, log: log)
        if loaded.productSecretLeft { log.warning(loaded.productSecretWarning) }
        for key in loaded.device.movedToBoard {
            log.warning(loaded.path + ": " + key + " is ignored in the key file: it moved to the board settings (root's /etc/wisp/board.conf)")
        }
        if let why = board.settingsRefused { log.error(why + "; OTA upgrades and reboots are refused until it is fixed") }
        let signals = wisp_signals_open()
        if signals < 0 {
            log.error("cannot set up signal handling: " + SystemError(errno: -signals).message)
            return .failure
        }
        if case .unregistered = loaded.device.identity {
            switch Registration.run(loaded, signals: signals, persistent: true, log: log) {
            case .registered(let next):
                loaded = next
                if loaded.productSecretLeft { log.warning(loaded.productSecretWarning) }
            case .stopped:
                log.info("stopped")
                return .ok
            case .refused(let why), .unreachable(let why), .failed(let why):
                log.error("registration: " + why)
                return .failure
            }
        }
        var backlog: Backlog?
        var startup = LastRun.start(loaded.device, board: loaded.board, log: log)
        while true {
            let (outcome, left, reason) = runDevice(loaded, backlog: backlog, signals: signals, startup: startup, log: log)
            switch outcome {
            case .stopped:
                LastRun.stopped(loaded.device, board: loaded.board, log: log)
                log.info("stopped")
                return .ok
            case .failed:
                return .failure
            case .reload(let next):
                log.info("key file changed: reconnecting with the new settings")
                loaded = next
                sink?.threshold = next.device.logUploadLevel
                backlog = left
                startup = reason
            }
        }
    }

    /// One key file's device, made and run in a frame of its own: the device is about 5 KB
    /// and its making needs temporaries of that size; inlined into `run`, they made run's
    /// frame 21 KB of stack, dirty (Private_Dirty) for the life of the process.
    /// What the device ended with, its backlog and the start-up reason it did not report.
    @inline(never)
    static func runDevice(_ loaded: LoadedConfig, backlog: Backlog?, signals: Int32, startup: String?,
                          log: Log) -> (Device<SocketTransport>.Outcome, Backlog, String?) {
        // The driver is made in place: a second reference alive beside the device's would
        // make every buffer copy itself on its first write.
        let settings = loaded.device
        var device = Device(loaded, backlog: backlog, signals: signals, startup: startup, log: log,
                            downloads: { SocketTransport(for: settings, to: $0) },
                            loopback: { SocketTransport(endpoint: Endpoint(scheme: .mqtt, host: "127.0.0.1", port: $0), proxy: nil, caFile: nil, insecure: false) },
                            driver: driver(loaded, config: sessionConfig(loaded), signals: signals))
        let outcome = device.run()
        return (outcome, device.backlog, device.startupReason)
    }
}
