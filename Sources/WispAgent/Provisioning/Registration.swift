import CWispPlatform
import WispCore

/// Dynamic registration on the I/O side: one sign-in with the product secret
/// (`DynamicRegistration`), the device secret taken from `/ext/register`, written to
/// `state_dir/identity` (0600: temp file, fsync, rename, fsync of the directory) *before*
/// it is used, then the key file is loaded again — now with the identity in force. A board
/// that loses power between receiving and using the secret finds it there at the next
/// start; the platform would not hand it out twice.
public enum Registration {
    public enum Outcome {
        case registered(LoadedConfig)
        /// The platform refused (not pre-registered, already activated, wrong product
        /// secret): one sentence with the console's remedy.
        case refused(String)
        case unreachable(String)
        case stopped
        case failed(String)
    }

    static let remedy = "check product_key and product_secret, that the device is added in the console with dynamic "
        + "registration enabled for its product, and that it was not activated already (a device registers once; "
        + "reset it in the console to register it again)"

    /// How long the platform has to send the secret after CONNACK.
    static let replyMillis: UInt64 = 10_000

    /// `persistent`: keep trying through outages and refusals (wisp run), with the session's
    /// backoff; otherwise one attempt (wisp register).
    public static func run(_ loaded: LoadedConfig, signals: Int32, persistent: Bool, log: Log) -> Outcome {
        run(loaded, signals: signals, persistent: persistent, log: log) { config, connect in
            Agent.driver(loaded.device, config: config, signals: signals, connect: connect)
        }
    }

    /// The same over the driver `makeDriver` builds for the registration's session config
    /// and CONNECT (`Agent.driver` above; the tests' in-memory transport).
    static func run<T: Transport>(_ loaded: LoadedConfig, signals: Int32, persistent: Bool, log: Log,
                                  driver makeDriver: (SessionConfig, @escaping () -> MQTTEncoder.Connect) -> Driver<T>) -> Outcome {
        guard case .unregistered(let pk, let dn, let ps?, let method, _) = loaded.device.identity else {
            return .registered(loaded)
        }
        let exchange = DynamicRegistration(productKey: pk, deviceName: dn, productSecret: ps, clientId: loaded.clientId, signMethod: method,
                                           mode: loaded.device.registerMode, instanceId: loaded.device.instanceId)
        let device = loaded.device
        var config = SessionConfig(keepAlive: device.keepAlive,
                                   webSocket: device.endpoint.isWebSocket ? .init(hostHeader: device.endpoint.hostHeader, path: device.endpoint.path) : nil)
        config.subscriptions = []  // the platform publishes the reply without a SUBSCRIBE
        var driver = makeDriver(config) {
            var random = [UInt8](repeating: 0, count: 8)
            random.withUnsafeMutableBytes { Entropy.fill($0) }
            let c = exchange.credentials(random: Hex.encode(random), sign: Crypto.hmacHex)
            return MQTTEncoder.Connect(clientId: c.clientId, username: c.username, password: c.password, keepAlive: device.keepAlive, will: nil)
        }
        var replyDeadline = UInt64.max
        var outcome: Outcome?
        while true {
            let event = driver.next(until: replyDeadline)
            switch event {
            case .connecting:
                log.info("registering " + pk + "/" + dn + " with the product secret at " + device.endpoint.description)
            case .openFailed(let message):
                log.warning("cannot connect: " + message)
            case .session(.online):
                log.info("registration: signed in; waiting for the platform's answer on " + exchange.topic)
                replyDeadline = driver.clock.monotonic() + replyMillis
            case .session(.message(let p)):
                let inbound = driver.session.inbound
                guard inbound.bytes(p.topic, equal: exchange.topic) else {
                    log.debug("registration: message on " + LogText.escape(inbound.bytesView(p.topic)) + " ignored")
                    continue
                }
                let parsed = inbound.withBytes { all in exchange.granted(fromReply: UnsafeRawBufferPointer(rebasing: all[p.payload])) }
                switch parsed {
                case .failure(let e):
                    outcome = .failed(e.message)
                case .success(let granted):
                    outcome = persist(granted, loaded: loaded, log: log)
                }
                driver.session.stop(now: driver.clock.monotonic())
            case .deadline:
                replyDeadline = UInt64.max
                let why = "signed in, but no answer arrived on " + exchange.topic + " within \(replyMillis / 1000) s"
                if !persistent {
                    outcome = .failed(why)
                    driver.session.stop(now: driver.clock.monotonic())
                } else {
                    log.warning("registration: " + why + "; trying again")
                    driver.session.stop(now: driver.clock.monotonic())
                    outcome = nil
                }
            case .session(.offline(let reason, let retryIn)):
                replyDeadline = UInt64.max
                if reason.isRefusal {
                    var why = "the platform refused the registration of " + pk + "/" + dn
                    why += " (" + reason.message + "): " + Registration.remedy
                    if !persistent { outcome = .refused(why); driver.session.stop(now: driver.clock.monotonic()) } else {
                        log.error(why + "; trying again in \(retryIn / 1000) s")
                    }
                } else if outcome == nil {
                    if !persistent { outcome = .unreachable(reason.message); driver.session.stop(now: driver.clock.monotonic()) } else {
                        log.warning("registration: " + reason.message + "; trying again in \(retryIn / 1000) s")
                    }
                }
            case .signal:
                Signals.drain(signals) { s in
                    if s != 1 {
                        log.info("signal: stopping the registration")
                        outcome = .stopped
                        driver.session.stop(now: driver.clock.monotonic())
                    }
                }
            case .stopped:
                if let outcome { return outcome }
                if !persistent { return .failed("the registration stopped") }
                // A persistent run that stopped without an outcome (no reply): start over.
                return run(loaded, signals: signals, persistent: persistent, log: log, driver: makeDriver)
            case .pollFailed(let e):
                return .failed("poll failed: " + e.message)
            case .opened, .closed, .extra, .session:
                break
            }
        }
    }

    /// Writes the identity, then loads the key file again with it in force.
    static func persist(_ granted: DynamicRegistration.Granted, loaded: LoadedConfig, log: Log) -> Outcome {
        let device = loaded.device
        let path = ConfigLoader.identityPath(device)
        var record = StateRecord()
        record["product_key"] = device.productKey ?? ""
        record["device_name"] = device.deviceName ?? ""
        switch granted {
        case .secret(let secret):
            record["device_secret"] = secret
        case .token(let cid, let token):
            record["client_id"] = cid
            record["device_token"] = token
        }
        let made = wisp_mkdir(device.stateDir, 0o700)
        if made < 0 { return .failed("cannot create state_dir " + device.stateDir + ": " + SystemError(errno: -made).message) }
        if let e = StateStore.write(record, to: path, mode: 0o600) {
            return .failed("the device secret arrived but cannot be kept in " + path + ": " + e.message)
        }
        log.info("registered: the device " + (record["device_token"] == nil ? "secret" : "token") + " is kept in " + path + " (0600); it is used from now on")
        switch ConfigLoader.load(loaded.path, log: log, board: loaded.board) {
        case .success(let next) where next.registeredFrom != nil: return .registered(next)
        case .success: return .failed(path + " was written but is not read back")
        case .failure(let e): return .failed(e.message)
        }
    }
}
