import WispCore

/// The device: one key file's life. It keeps the schedule, the watchdog and the signals,
/// and dispatches what the driver reports to the features — telemetry, services and RRPC,
/// clock sync, OTA, remote config, device info — each a type of its own that publishes
/// through the outbox. It never touches a socket.
public struct Device<T: Transport>: ~Copyable {
    public enum Outcome {
        case stopped
        case failed
        /// SIGHUP or a remote config found new settings: run again with them (the backlog carries over).
        case reload(LoadedConfig)
    }

    let loaded: LoadedConfig
    public var driver: Driver<T>
    let clock: Clock
    public var telemetry: Telemetry
    var outbox: Outbox
    var status: StatusFile
    var clockSync: ClockSync
    let services: Services
    /// The downloads (OTA packages, remote config files), OTA upgrades, remote config and
    /// device info: platform devices only.
    let downloader: Downloader<T>?
    let updater: Updater<T>?
    let remoteConfig: RemoteConfig<T>?
    /// wisp's log lines and the link's health for the console (platform devices).
    var console: Console
    /// The secure tunnel to this board's loopback services: only when the board settings
    /// allow it over this link.
    let remoteAccess: RemoteAccess<T>?
    /// Why this process started (`startup` event), reported after the first CONNACK; nil
    /// once reported (a reload hands what is left to the next device).
    public var startupReason: String?
    var everOnline = false
    var reload: LoadedConfig?
    let signals: Int32
    let watchdogInterval = Systemd.watchdogInterval
    var nextWatchdog: UInt64 = 0
    let log: Log

    public var backlog: Backlog { telemetry.backlog }

    /// `driver` carries the session for `loaded` (`Agent.driver` makes the real one) and
    /// the clock; `downloads` opens a connection for a download. The driver is made after
    /// the thing model: sensor discovery's directory buffers and the session's must not be
    /// alive at once (the start-up heap peak).
    @inline(never)  // inlined, the caller built the device beside its variable and copied it over
    public init(_ loaded: LoadedConfig, backlog previous: Backlog?, signals: Int32, startup: String? = nil, log: Log,
                downloads: @escaping (Endpoint) -> T, loopback: ((UInt16) -> T)? = nil,
                driver makeDriver: @autoclosure () -> Driver<T>) {
        startupReason = startup
        self.loaded = loaded
        self.signals = signals
        self.log = log
        let topics = Agent.topics(loaded)
        telemetry = Telemetry(loaded.device, board: loaded.board, topics: topics, backlog: previous, log: log)
        driver = makeDriver()
        clock = driver.clock
        telemetry.sizePosts(maxOutboundPacket: driver.session.config.maxOutboundPacket, now: clock.monotonic())
        outbox = Outbox(topics: topics, log: log)
        clockSync = ClockSync(clock: clock, log: log)
        status = StatusFile(loaded.device, clock: clock, log: log)
        services = Services(loaded.device, board: loaded.board, topics: topics, clock: clock, log: log)
        let downloader = outbox.isPlatform ? Downloader(clock: clock, log: log, seed: clock.realtime() ^ clock.monotonic(), transport: downloads) : nil
        self.downloader = downloader
        updater = downloader.map { Updater(loaded.device, board: loaded.board, downloader: $0, log: log) }
        remoteConfig = downloader.map { RemoteConfig(loaded, downloader: $0, log: log) }
        console = Console(loaded.device, board: loaded.board, platform: outbox.isPlatform, clock: clock, log: log)
        remoteAccess = RemoteAccess.make(loaded, platform: outbox.isPlatform, log: log, connect: downloads, loopback: loopback)
    }

    /// Samples every interval and reacts to the driver until stopped.
    public mutating func run() -> Outcome {
        while true {
            let now = clock.monotonic()
            if let period = watchdogInterval, now >= nextWatchdog {
                if let e = Systemd.notify("WATCHDOG=1") { log.debug("sd_notify failed: " + e.message) }
                nextWatchdog = now + period
            }
            telemetry.advance(now: now, time: clockSync.wallClock(monotonic: now), session: &driver.session, out: &outbox)
            updater?.advance(out: &outbox)
            remoteAccess?.advance(now: now, online: driver.session.isOnline, out: &outbox)
            console.advance(now: now, telemetry: telemetry, clockSync: clockSync, session: driver.session, out: &outbox)
            if let next = remoteConfig?.advance(out: &outbox), reload == nil {
                reload = next
                outbox.flush(&driver.session)  // the push reply goes out first; stop flushes it
                driver.session.stop(now: now)
            }
            outbox.flush(&driver.session)
            var deadline = min(telemetry.deadline, console.deadline,
                               status.advance(now: now, wall: clockSync.wallClock(monotonic: now), telemetry: telemetry, ota: updater?.reported))
            driver.extra.clear()
            if let downloader {
                downloader.register(into: &driver.extra)
                deadline = min(deadline, downloader.deadline)
            }
            if let remoteAccess {
                remoteAccess.register(into: &driver.extra)
                deadline = min(deadline, remoteAccess.deadline)
            }
            if watchdogInterval != nil { deadline = min(deadline, nextWatchdog) }
            let next = driver.next(until: deadline)
            // A busy tunnel keeps the deadline at "now" and the driver then returns before
            // its poll: the (non-blocking) signal descriptor is read here instead.
            if case .deadline = next, remoteAccess?.busy == true { handleSignals() }
            switch next {
            case .stopped:
                Systemd.notify(reload == nil ? "STOPPING=1" : "RELOADING=1")
                return reload.map { .reload($0) } ?? .stopped
            case .pollFailed(let e):
                log.error("poll failed: " + e.message)
                return .failed
            case .signal:
                handleSignals()
            case let event:
                handle(event)
            }
        }
    }

    /// What the driver reported: dispatched, and what the link did logged.
    public mutating func handle(_ event: Driver<T>.Event) {
        status.note(event)
        switch event {
        case .session(.message(let p)):
            dispatch(p)
        case .session(.delivered(let id)):  // the hot path: nothing more is logged
            log.debug("packet \(id) acknowledged", local: true)
            outbox.flush(&driver.session)  // a reply waiting for room goes before the backlog
            telemetry.delivered(id, session: &driver.session)
        default:
            LinkLog.note(event, loaded, log: log, topics: outbox.topics, subscriptions: driver.session.config.subscriptions)
            console.note(event)
            if case .session(.online) = event { online() }
        }
    }

    /// Samples now, out of schedule (the benchmark's cycles).
    public mutating func sample() { telemetry.sample(time: clockSync.now, session: &driver.session, out: &outbox) }

    /// At every CONNACK: each feature's connect-time messages, then the backlog.
    mutating func online() {
        if !everOnline { Systemd.notify("READY=1\nSTATUS=online") }
        everOnline = true
        updater?.online(out: &outbox)
        remoteConfig?.online(out: &outbox)
        console.online(out: &outbox)
        remoteAccess?.online(out: &outbox)
        if outbox.isPlatform {
            if let reason = startupReason {
                startupReason = nil
                outbox.event("startup", [.text("reason", reason)], time: clockSync.now)
            }
            telemetry.noteDrops(time: clockSync.now, out: &outbox)
        }
        clockSync.online(out: &outbox)
        outbox.flush(&driver.session)
        telemetry.online(session: &driver.session)
        System.releaseFreeHeap()
    }

    /// One inbound message, to the feature its topic names.
    mutating func dispatch(_ p: InboundPublish) {
        let inbound = driver.session.inbound
        let kind = outbox.topics.classify(inbound, p.topic)
        let now = clock.monotonic()
        var effect = Services.Effect.none
        var changed = false
        inbound.withBytes { all in
            let payload = UnsafeRawBufferPointer(rebasing: all[p.payload])
            switch kind {
            case .propertySet: changed = telemetry.propertySet(payload, out: &outbox)
            case .ntpResponse: clockSync.handle(payload)
            case .postReply, .eventReply, .logPostReply, .deviceInfoReply:
                status.reply(kind, console.reply(kind, inbound, p.payload, payload, newest: telemetry.lastSampled, wallNow: clockSync.wallClock(monotonic: now), out: &outbox))
            case .service(let range), .rrpc(let range):  // the service's name, or the request's message id
                let text = String(decoding: inbound.bytesView(range), as: UTF8.self), wait = telemetry.sampleNowWait(now: now)
                if case .service = kind { effect = services.call(text, payload: payload, sampleNowWait: wait, out: &outbox) }
                else { effect = services.rrpc(messageId: text, payload: payload, sampleNowWait: wait, out: &outbox) }
            case .configPush, .configGetReply: remoteConfig?.handle(payload, push: kind == .configPush, out: &outbox)
            case .otaOffer: updater?.offer(payload, out: &outbox)
            case .logConfig: console.logs?.handleSwitch(payload)
            case .tunnelNotify, .tunnelReply: remoteAccess?.handle(payload, reply: kind == .tunnelReply, now: now)
            case .other: log.debug("message on " + LogText.escape(inbound.bytesView(p.topic)) + " ignored")
            }
        }
        outbox.flush(&driver.session)
        telemetry.apply(effect, changed: changed, now: now, time: clockSync.wallClock(monotonic: now), session: &driver.session, out: &outbox)
    }

    /// SIGHUP reads the key file again (a changed one reconnects with it); SIGTERM and
    /// SIGINT disconnect cleanly.
    mutating func handleSignals() {
        Signals.drain(signals) { signal in
            let now = clock.monotonic()
            guard signal == 1 else {
                log.info(signal == 15 ? "SIGTERM: disconnecting" : "SIGINT: disconnecting")
                driver.session.stop(now: now)
                return
            }
            switch ConfigLoader.load(loaded.path, log: log, board: loaded.board) {
            case .failure(let e):
                log.error("SIGHUP: " + e.message + "; keeping the running settings")
            case .success(let next) where next.fingerprint == loaded.fingerprint:
                log.info("SIGHUP: key file unchanged")
            case .success(let next):
                reload = next
                driver.session.stop(now: now)
            }
        }
    }
}
