import CWispPlatform
import WispCore

/// The agent: turns a loaded key file into a running session.
public enum Agent {
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

    /// For the benchmarks (scripts/bench, not the shipped CLI): the agent's own loop, with a
    /// new telemetry cycle as soon as the previous post is acknowledged, `cycles` times, then
    /// a clean DISCONNECT.
    public static func runBench(configPath: String, cycles: Int) -> ExitCode {
        benchCycles = cycles
        return run(configPath: configPath)
    }

    nonisolated(unsafe) static var benchCycles: Int?

    /// Said once at start-up: what an unencrypted or unverified link exposes.
    static func warnAboutThePlainLink(_ device: DeviceConfig) {
        guard !device.linkIsAuthenticated else { return }
        if !device.endpoint.isTLS {
            Log.warning("endpoint " + device.endpoint.description + " is not encrypted: telemetry and commands cross the network "
                        + "in clear and anyone on the path can inject messages; use wss:// (securemode=2)")
        }
        if !device.outputs.isEmpty {
            Log.warning(device.allowPlaintextControl
                ? "allow_plaintext_control = true: property sets may drive outputs over this unauthenticated link"
                : "outputs will not be set by property sets over this unauthenticated link (allow_plaintext_control = false)")
        }
    }

    /// `wisp check --online`: one sign-in attempt, then a clean DISCONNECT. 0 when the
    /// CONNACK accepts, 77 when the platform refuses the credentials (CONNACK 4/5, HTTP
    /// 401/403 at the upgrade), 69 when it cannot be reached (DNS, TCP, TLS, timeouts).
    /// Touches no output, no buffer file and publishes nothing.
    public static func probe(_ loaded: LoadedConfig) -> ExitCode {
        var quiet = loaded
        quiet.device.outputs = []
        quiet.device.bufferFile = nil
        let signals = wisp_signals_open()
        if signals < 0 {
            Log.error("cannot set up signal handling: " + SystemError(errno: -signals).message)
            return .failure
        }
        defer { _ = wisp_close(signals) }
        var runner = Runner(quiet, configPath: loaded.path, backlog: nil, probing: true)
        _ = runner.run(signals: signals)
        return runner.probeResult ?? .unreachable
    }

    /// `wisp run`: runs until SIGTERM/SIGINT; SIGHUP re-reads the key file.
    public static func run(configPath: String) -> ExitCode {
        var loaded: LoadedConfig
        switch ConfigLoader.load(configPath) {
        case .success(let l): loaded = l
        case .failure(let e):
            Log.error(e.message)
            return .configuration
        }
        warnAboutThePlainLink(loaded.device)
        let signals = wisp_signals_open()
        if signals < 0 {
            Log.error("cannot set up signal handling: " + SystemError(errno: -signals).message)
            return .failure
        }
        var backlog: Backlog?
        while true {
            var runner = Runner(loaded, configPath: configPath, backlog: backlog, probing: false)
            switch runner.run(signals: signals) {
            case .stopped:
                Log.info("stopped")
                return .ok
            case .reload(let next):
                Log.info("key file changed: reconnecting with the new settings")
                loaded = next
                backlog = runner.backlog
            }
        }
    }
}

/// One configuration's life: the session, its connection, the telemetry schedule.
struct Runner: ~Copyable {
    enum Outcome {
        case stopped
        case reload(LoadedConfig)
    }

    let loaded: LoadedConfig
    let configPath: String
    var session: Session
    var connection: Connection?
    var thing: Thing
    var clock = ClockSync()
    var values: [PropertyValue] = []
    var json: JSONWriter
    var reply = JSONWriter(capacity: 512)
    let topics: AlinkTopics
    let interval: UInt64
    var nextSample: UInt64
    let backlog: Backlog
    var reload: LoadedConfig?
    var everOnline = false
    /// The connection ended while reading; reported once what was read is parsed (a
    /// broker that refuses credentials sends CONNACK and closes in the same breath).
    var lostConnection: DisconnectReason?
    let watchdogInterval = Systemd.watchdogInterval
    var nextWatchdog: UInt64 = 0
    /// `wisp check --online`: stop after the first attempt; its verdict.
    let probing: Bool
    var probeResult: ExitCode?

    init(_ loaded: LoadedConfig, configPath: String, backlog previous: Backlog?, probing: Bool) {
        self.probing = probing
        self.loaded = loaded
        self.configPath = configPath
        let device = loaded.device
        let endpoint = device.endpoint
        var config = SessionConfig(
            keepAlive: device.keepAlive,
            webSocket: endpoint.isWebSocket ? .init(hostHeader: endpoint.hostHeader, path: endpoint.path) : nil)
        topics = Agent.topics(loaded)
        config.subscriptions = topics.subscriptions
        thing = Thing(device)
        if let previous, previous.names == thing.names, previous.ring.capacity == device.bufferSamples, device.bufferFile == nil {
            previous.ring.requeueInFlight()
            backlog = previous
        } else {
            backlog = Backlog(names: thing.names, device: device)
        }
        let now = System.monotonicMillis
        session = Session(config: config, now: now, random: Entropy.fill)
        json = JSONWriter(capacity: config.maxOutboundPacket - topics.post.utf8.count - 8)
        values.reserveCapacity(thing.sensors.count + device.outputs.count + 1)
        interval = UInt64(device.telemetryInterval) * 1000
        nextSample = probing ? UInt64.max : now + interval
    }

    mutating func run(signals: Int32) -> Outcome {
        while true {
            let now = System.monotonicMillis
            if let period = watchdogInterval, now >= nextWatchdog {
                Systemd.notify("WATCHDOG=1")
                nextWatchdog = now + period
            }
            if now >= nextSample {
                sample(now: now)
                while nextSample <= now { nextSample += interval }  // drift-free: k × interval from start
            }
            switch session.poll(now: now) {
            case .openTransport:
                open(now: now)
            case .closeTransport(let reason):
                writeOutput(now: now)
                connection = nil
                Log.debug("connection closed: " + reason.message)
            case .event(let event):
                handle(event)
            case .stopped:
                connection = nil
                if let next = reload {
                    Systemd.notify("RELOADING=1")
                    return .reload(next)
                }
                Systemd.notify("STOPPING=1")
                return .stopped
            case .wait(let until):
                if let reason = lostConnection {
                    lostConnection = nil
                    session.transportFailed(now: now, reason)
                    continue
                }
                if writeOutput(now: now) > 0 { continue }
                if readInput(now: now) { continue }  // TLS may hold decrypted bytes poll() cannot see
                var deadline = min(until, nextSample)
                if watchdogInterval != nil { deadline = min(deadline, nextWatchdog) }
                let timeout = deadline <= now ? 0 : Int32(min(deadline - now, 3_600_000))
                let fd: Int32 = connection?.fd ?? -1
                let events: Int32 = fd < 0 ? 0 : (session.canReceive ? 1 : 0) | (session.output.isEmpty ? 0 : 2)
                let mask = wisp_poll(fd, events, signals, timeout)
                if mask < 0 {
                    Log.error("poll failed: " + SystemError(errno: -mask).message)
                    return .stopped
                }
                if mask & 8 != 0 { handleSignals(signals) }
                if mask & 5 != 0 { _ = readInput(now: System.monotonicMillis) }
            }
        }
    }

    // MARK: connection

    mutating func open(now: UInt64) {
        let device = loaded.device
        let via = device.proxy.map { " via proxy " + $0.hostHeader } ?? ""
        Log.info("connecting to " + device.endpoint.description + via)
        if device.endpoint.isTLS && device.tlsInsecure {
            Log.warning("tls_insecure = true: the server certificate is NOT verified (lab use only)")
        }
        switch Connection.open(device.endpoint, proxy: device.proxy, caFile: device.caFile, insecure: device.tlsInsecure, timeoutMillis: 10_000) {
        case .failure(let e):
            Log.warning("cannot connect: " + e.message)
            session.transportFailed(now: System.monotonicMillis, .connectFailed)
        case .success(let c):
            connection = consume c
            let creds = Agent.credentials(loaded)
            let connect = MQTTEncoder.Connect(clientId: creds.clientId, username: creds.username, password: creds.password,
                                              keepAlive: device.keepAlive, will: device.will)
            if device.endpoint.isWebSocket {
                Log.debug("WebSocket upgrade: GET " + device.endpoint.path + " HTTP/1.1, Host: " + device.endpoint.hostHeader)
            }
            session.transportOpened(now: System.monotonicMillis, connect: connect, webSocketKey: Entropy.webSocketKey())
        }
    }

    /// Writes what the session has queued, as far as the socket takes it.
    @discardableResult
    mutating func writeOutput(now: UInt64) -> Int {
        guard connection != nil, !session.output.isEmpty else { return 0 }
        let n = sendOutput()
        if n < 0 {
            Log.debug("write failed: " + SystemError(errno: Int32(-n)).message)
            connection = nil
            session.transportFailed(now: now, .transportError(Int32(-n)))
            return 0
        }
        session.didWrite(Int(n), now: now)
        return Int(n)
    }

    /// Sends from the session's output without holding a second reference to it (a copy
    /// alive during `didWrite` would make the buffer copy itself).
    func sendOutput() -> Int64 {
        session.output.withBytes { connection?.send($0) ?? 0 }
    }

    /// Reads what is there into the session's input. True when bytes arrived.
    mutating func readInput(now: UInt64) -> Bool {
        guard connection != nil else { return false }
        let input = session.input
        var total = 0
        while input.available > 0 {
            let n = input.append { buffer in Int(connection?.receive(buffer) ?? 0) }
            if n > 0 {
                total += n
                continue
            }
            if n == 0 { break }
            connection = nil
            session.didReceive(total, now: now)
            lostConnection = n == Int(WISP_IO_CLOSED) ? .transportClosed : .transportError(Int32(-n))
            return true
        }
        session.didReceive(total, now: now)
        return total > 0
    }

    // MARK: events

    mutating func handle(_ event: SessionEvent) {
        switch event {
        case .upgraded:
            Log.debug("WebSocket upgrade accepted; sending CONNECT")
        case .online where probing:
            Log.info("signed in: " + loaded.device.endpoint.description + " accepted " + loaded.clientId)
            probeResult = .ok
            session.stop(now: System.monotonicMillis)
        case .offline(let reason, _) where probing:
            Log.error("sign-in failed: " + reason.message)
            probeResult = reason.isRefusal ? .refused : .unreachable
            session.stop(now: System.monotonicMillis)
        case .online(_, let resent):
            if !everOnline { Systemd.notify("READY=1\nSTATUS=online") }
            everOnline = true
            let extra = resent > 0 ? ", \(resent) unacknowledged posts resent" : ""
            Log.info("online: " + loaded.device.endpoint.description + " as " + loaded.clientId
                     + " (keep-alive \(loaded.device.keepAlive) s" + extra + ")")
            if let ntpRequest = topics.ntpRequest {
                clock.request(monotonic: System.monotonicMillis, into: &reply)
                publishReply(ntpRequest, qos: .atMostOnce)
            }
            let waiting = backlog.ring.waitingCount
            if waiting > 1 { Log.info("sending \(waiting) samples buffered while offline, oldest first") }
            drain()
            if Agent.benchCycles != nil { sample(now: System.monotonicMillis) }
        case .message(let p):
            let inbound = session.inbound
            switch topics.classify(inbound, p.topic) {
            case .propertySet:
                let changed = inbound.withBytes { all in
                    thing.applySet(UnsafeRawBufferPointer(rebasing: all[p.payload]), reply: &reply)
                }
                publishReply(topics.setReply, qos: .atLeastOnce)
                if changed { sample(now: System.monotonicMillis) }  // report the new state now
            case .ntpResponse:
                let now = System.monotonicMillis
                let outcome = inbound.withBytes { all in clock.response(UnsafeRawBufferPointer(rebasing: all[p.payload]), monotonic: now) }
                switch outcome {
                case .set: Log.info("clock: platform time received; post timestamps follow it")
                case .unsolicited: Log.debug("clock: an NTP answer without a request; ignored")
                case .refused(let why): Log.warning("clock: NTP answer ignored: " + why + "; keeping the current clock")
                }
            case .postReply:
                let code = PropertyPost.replyCode(inbound, p.payload)
                if code != 200 {
                    Log.warning("property post refused by the platform: " + LogText.escape(inbound.bytesView(p.payload)))
                } else {
                    Log.debug("property post accepted")
                }
            case .other:
                Log.debug("message on " + LogText.escape(inbound.bytesView(p.topic)) + " ignored")
            }
        case .delivered(let id):
            Log.debug("packet \(id) acknowledged")
            backlog.delivered(packetId: id)
            drain()
            if let left = Agent.benchCycles, backlog.ring.count == 0 {
                Agent.benchCycles = left - 1
                if left > 1 { sample(now: System.monotonicMillis) } else { session.stop(now: System.monotonicMillis) }
            }
        case .subscribed(let refused):
            let subscriptions = session.config.subscriptions
            for i in subscriptions.indices where i < 64 && refused & (1 << UInt64(i)) != 0 {
                let topic = subscriptions[i].topic
                let consequence = topics.consequenceOfRefusing(topic)
                Log.error("the broker refused the subscription to " + topic + " (SUBACK 0x80: not authorised?): "
                          + consequence + "; asking again at the next connect")
            }
            if refused == 0 { Log.debug("subscribed to \(subscriptions.count) topic(s)") }
        case .skippedOversized(let length):
            Log.warning("skipped a \(length)-byte message larger than the input buffer")
        case .offline(let reason, let retryIn):
            let line = "offline: " + reason.message + "; reconnecting in " + seconds(retryIn)
            if case .refused = reason { Log.error(line) } else { Log.warning(line) }
        }
    }

    func seconds(_ ms: UInt64) -> String {
        "\(ms / 1000).\(ms % 1000 / 100) s"
    }

    // MARK: telemetry

    /// Publishes what `reply` holds.
    mutating func publishReply(_ topic: String, qos: QoS) {
        guard reply.ok else { return }
        do {
            _ = try session.publish(topic: topic, payload: reply.buffer.bytesView(0..<reply.buffer.count), qos: qos)
        } catch {
            Log.warning("reply on " + topic + " not sent: " + error.message)
        }
    }

    /// Samples the thing into the backlog, then sends what the window allows.
    mutating func sample(now: UInt64) {
        values.removeAll(keepingCapacity: true)
        thing.sample(into: &values)
        backlog.add(time: clock.wallClock(monotonic: now), values: values)
        if !session.isOnline { Log.debug("offline: sample kept (\(backlog.ring.count) waiting)") }
        drain()
    }

    static func render(_ backlog: Backlog, _ position: Int, into json: inout JSONWriter) -> Bool {
        PropertyPost.write(id: backlog.ring.seq(position), values: backlog.ring.values(position), names: backlog.names,
                           time: backlog.ring.time(position), into: &json)
    }

    mutating func render(_ position: Int) -> Bool { Runner.render(backlog, position, into: &json) }

    /// Publishes waiting samples oldest first, QoS 1, while the in-flight window has room.
    /// Each post's id is the sample's sequence number and each value carries its sample time.
    mutating func drain() {
        while session.isOnline, let position = backlog.ring.nextWaiting() {
            // No local copy of the ring: one alive during markSent would copy its storage.
            let seq = backlog.ring.seq(position)
            guard render(position) else {
                Log.error("sample \(seq) does not fit a property post; dropped")
                backlog.ring.deliver(seq: seq)
                continue
            }
            do {
                let id = try session.publish(topic: topics.post, payload: json.buffer.bytesView(0..<json.buffer.count), qos: .atLeastOnce)
                backlog.ring.markSent(position, packetId: id)
                Log.debug("post \(seq) sent as packet \(id)")
            } catch {
                if error != .windowFull && error != .outputFull { Log.warning("post \(seq) not sent: " + error.message) }
                return
            }
        }
    }

    // MARK: signals

    mutating func handleSignals(_ fd: Int32) {
        while true {
            let signal = wisp_signal_next(fd)
            if signal == 0 { return }
            let now = System.monotonicMillis
            if signal == 1 {
                switch ConfigLoader.load(configPath) {
                case .failure(let e):
                    Log.error("SIGHUP: " + e.message + "; keeping the running settings")
                case .success(let next):
                    if next.fingerprint == loaded.fingerprint {
                        Log.info("SIGHUP: key file unchanged")
                    } else {
                        reload = next
                        session.stop(now: now)
                    }
                }
            } else {
                Log.info(signal == 15 ? "SIGTERM: disconnecting" : "SIGINT: disconnecting")
                session.stop(now: now)
            }
        }
    }
}
