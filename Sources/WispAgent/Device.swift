import CWispPlatform
import WispCore

/// The device: one key file's life. The thing model (sensors, outputs), the offline
/// backlog, the platform's clock and the telemetry schedule, on top of a `Driver` that
/// owns the session and its transport. It reacts to what the driver reports; it never
/// touches a socket.
public struct Device<T: Transport> {
    public enum Outcome {
        case stopped
        case failed
        /// SIGHUP found a changed key file: run again with it (the backlog carries over).
        case reload(LoadedConfig)
    }

    let loaded: LoadedConfig
    public var driver: Driver<T>
    var thing: Thing
    var clock = ClockSync()
    var values: [PropertyValue] = []
    var json: JSONWriter
    var reply = JSONWriter(capacity: Device.replyCapacity)
    /// Ids of OTA messages (version reports, firmware.get, progress).
    var otaIds: UInt64 = 0
    /// OTA upgrades and remote config (platform devices only).
    let updater: Updater?
    let remoteConfig: RemoteConfig?
    /// Events waiting for the link (topic, payload), at most `maxEvents`, oldest dropped.
    var events: [(topic: String, payload: [UInt8])] = []
    static var maxEvents: Int { 16 }
    /// Why this process started (`startup` event), reported after the first CONNACK; nil
    /// once reported (a reload hands what is left to the next device).
    public var startupReason: String?
    var reportedDrops = 0
    /// The Pi firmware's throttled word, when the board has one (`power` event).
    var power: Sensor?
    var lastPower: Int64?
    var powerScratch = ByteBuffer(capacity: 64)
    /// Set replies and NTP requests: a code, an id of at most 64 bytes and one sentence.
    static var replyCapacity: Int { 512 }
    let topics: AlinkTopics
    /// Milliseconds between samples: the key file's, or what `set_interval` asked for.
    var interval: UInt64
    var nextSample: UInt64
    public let backlog: Backlog
    var reload: LoadedConfig?
    /// When `sample_now` or a property set last sampled out of schedule: at most one per
    /// `Device.sampleNowSpacing` (each samples, posts and fsyncs the buffer file); a set
    /// within it samples at `pendingSample` instead.
    var lastSampleNow: UInt64?
    var pendingSample: UInt64?
    static var sampleNowSpacing: UInt64 { 1000 }
    var everOnline = false
    let signals: Int32
    let watchdogInterval = Systemd.watchdogInterval
    var nextWatchdog: UInt64 = 0

    /// `driver` carries the session for `loaded` (`Agent.driver` makes the real one). It is
    /// made after the thing model: sensor discovery's directory buffers and the session's
    /// must not be alive at once (the start-up heap peak).
    public init(_ loaded: LoadedConfig, backlog previous: Backlog?, signals: Int32, startup: String? = nil, driver makeDriver: @autoclosure () -> Driver<T>) {
        startupReason = startup
        self.loaded = loaded
        self.signals = signals
        let device = loaded.device
        topics = Agent.topics(loaded)
        thing = Thing(device)
        if let previous, previous.names.elementsEqual(thing.names, by: { $0.equals($1) }), previous.ring.capacity == device.bufferSamples, device.bufferFile == nil {
            previous.ring.requeueInFlight()
            backlog = previous
        } else {
            backlog = Backlog(names: thing.names, device: device)
        }
        updater = topics.otaUpgrade != nil ? Updater(device) : nil
        let sensor = Sensor(SensorSpec(identifier: "power", source: .system(.throttled)))
        if sensor.problem == nil { power = sensor }
        remoteConfig = topics.otaUpgrade != nil ? RemoteConfig(loaded) : nil
        driver = makeDriver()
        json = JSONWriter(capacity: driver.session.config.maxOutboundPacket - topics.longestPostTopic - 8)
        values.reserveCapacity(thing.sensors.count + device.outputs.count + 1)
        interval = UInt64(device.telemetryInterval) * 1000
        nextSample = System.monotonicMillis + interval
    }

    /// Samples every interval and reacts to the driver until stopped.
    public mutating func run() -> Outcome {
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
            if let due = pendingSample, now >= due {
                pendingSample = nil
                lastSampleNow = now
                sample(now: now)
            }
            var deadline = min(nextSample, pendingSample ?? UInt64.max)
            if watchdogInterval != nil { deadline = min(deadline, nextWatchdog) }
            if let updater, let remoteConfig {
                updater.advance(now: now)
                remoteConfig.advance(now: now)
                sendReports()
                if let next = remoteConfig.ready, reload == nil {
                    reload = next  // the push reply went out first; stop flushes it
                    driver.session.stop(now: now)
                }
                // One extra descriptor in the poll: the upgrade's download first, the config's
                // otherwise (both are also advanced at every wake-up).
                driver.other = updater.poll.fd >= 0 ? updater.poll : remoteConfig.poll
                deadline = min(deadline, updater.deadline, remoteConfig.deadline)
            }
            let event = driver.next(until: deadline)
            switch event {
            case .stopped:
                if let next = reload {
                    Systemd.notify("RELOADING=1")
                    return .reload(next)
                }
                Systemd.notify("STOPPING=1")
                return .stopped
            case .pollFailed(let e):
                Log.error("poll failed: " + e.message)
                return .failed
            case .signal:
                handleSignals()
            default:
                handle(event)
            }
        }
    }

    // MARK: events

    /// What the driver reported, for the log and the thing model.
    public mutating func handle(_ event: Driver<T>.Event) {
        switch event {
        case .connecting:
            let device = loaded.device
            let via = device.proxy.map { " via proxy " + $0.hostHeader } ?? ""
            Log.info("connecting to " + device.endpoint.description + via)
            if device.endpoint.isTLS && device.tlsInsecure {
                Log.warning("tls_insecure = true: the server certificate is NOT verified (lab use only)")
            }
        case .opened:
            let endpoint = loaded.device.endpoint
            if endpoint.isWebSocket { Log.debug("WebSocket upgrade: GET " + endpoint.path + " HTTP/1.1, Host: " + endpoint.hostHeader) }
        case .openFailed(let message):
            Log.warning("cannot connect: " + message)
        case .closed(let reason):
            Log.debug("connection closed: " + reason.message)
        case .session(let e):
            handle(e)
        case .signal, .other, .deadline, .stopped, .pollFailed:
            break
        }
    }

    mutating func handle(_ event: SessionEvent) {
        switch event {
        case .upgraded:
            Log.debug("WebSocket upgrade accepted; sending CONNECT")
        case .online(_, let resent):
            if !everOnline { Systemd.notify("READY=1\nSTATUS=online") }
            if let inform = topics.otaInform {
                otaIds &+= 1
                OTAInform.write(id: otaIds, version: Agent.version, module: loaded.device.otaModule, into: &reply)
                publishReply(inform, qos: .atMostOnce)  // as the platform's SDK does; takes no in-flight slot
            }
            if let updater, let get = topics.firmwareGet {
                updater.online()
                otaIds &+= 1
                FirmwareGet.write(id: otaIds, module: loaded.device.otaModule, into: &reply)
                publishReply(get, qos: .atMostOnce)
                otaIds &+= 1
                ConfigFile.writeGet(id: otaIds, into: &reply)
                publishReply(topics.configGet, qos: .atMostOnce)
                sendReports()
            }
            everOnline = true
            if topics.otaUpgrade != nil {
                if let reason = startupReason {
                    startupReason = nil
                    queueEvent("startup", [.text("reason", reason)])
                }
                noteEvents()
                sendReports()
            }
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
        case .message(let p):
            let inbound = driver.session.inbound
            switch topics.classify(inbound, p.topic) {
            case .propertySet:
                let changed = inbound.withBytes { all in
                    thing.applySet(UnsafeRawBufferPointer(rebasing: all[p.payload]), reply: &reply)
                }
                publishReply(topics.setReply, qos: .atLeastOnce)
                if changed { sampleSoon(now: System.monotonicMillis) }  // report the new state now
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
            case .service(let name):
                let service = String(decoding: inbound.bytesView(name), as: UTF8.self)
                serve(service, payload: p.payload, replyTopic: topics.servicePrefix + service + "_reply", qos: .atLeastOnce)
            case .rrpc(let messageId):
                // The service is named by the request's method; the answer goes to the same message id.
                let id = String(decoding: inbound.bytesView(messageId), as: UTF8.self)
                let name = inbound.withBytes { all -> String? in
                    guard let json = try? JSONReader(UnsafeRawBufferPointer(rebasing: all[p.payload])) else { return nil }
                    return ServiceCall.name(fromMethodOf: json)
                }
                serve(name ?? "(no thing.service method)", payload: p.payload, replyTopic: topics.rrpcResponsePrefix + id, qos: .atMostOnce)
            case .configPush, .configGetReply:
                let push = topics.classify(inbound, p.topic) == .configPush
                inbound.withBytes { all in
                    guard let json = try? JSONReader(UnsafeRawBufferPointer(rebasing: all[p.payload])) else {
                        Log.warning("remote config: a message that is not JSON ignored")
                        return
                    }
                    remoteConfig?.offer(json, push: push)
                }
                sendReports()
            case .eventReply:
                let code = PropertyPost.replyCode(inbound, p.payload)
                if code != 200 { Log.warning("event refused by the platform: " + LogText.escape(inbound.bytesView(p.payload))) }
            case .otaOffer:
                inbound.withBytes { all in updater?.offer(UnsafeRawBufferPointer(rebasing: all[p.payload])) }
            case .other:
                Log.debug("message on " + LogText.escape(inbound.bytesView(p.topic)) + " ignored")
            }
        case .delivered(let id):
            Log.debug("packet \(id) acknowledged")
            backlog.delivered(packetId: id)
            drain()
        case .subscribed(let refused):
            let subscriptions = driver.session.config.subscriptions
            for i in subscriptions.indices where i < 64 && refused & (1 << UInt64(i)) != 0 {
                let topic = subscriptions[i].topic
                Log.error("the broker refused the subscription to " + topic + " (SUBACK 0x80: not authorised?): "
                          + topics.consequenceOfRefusing(topic) + "; asking again at the next connect")
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

    /// Samples out of schedule for a change the platform made, at most once per
    /// `sampleNowSpacing`: a second set within it is posted when the spacing is over.
    mutating func sampleSoon(now: UInt64) {
        if let last = lastSampleNow, now < last + Device.sampleNowSpacing {
            pendingSample = last + Device.sampleNowSpacing
            return
        }
        lastSampleNow = now
        sample(now: now)
    }

    /// Runs a built-in service and answers it on `replyTopic`.
    mutating func serve(_ name: String, payload: Range<Int>, replyTopic: String, qos: QoS) {
        let inbound = driver.session.inbound
        let device = loaded.device  // the closure must not capture self: that copied the whole Device
        let now = System.monotonicMillis
        let last = lastSampleNow
        var call: ServiceCall?
        inbound.withBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[payload])
            guard let json = try? JSONReader(bytes) else {
                ServiceCall.writeReply(code: 460, id: nil, json: nil, message: "request parameter error: not JSON", into: &reply)
                return
            }
            switch ServiceCall.parse(name: name, json) {
            case .failure(let refusal):
                ServiceCall.writeReply(code: refusal.code, id: refusal.id, json: json, message: refusal.message, into: &reply)
            case .success(let (id, parsed)):
                if let (code, message) = Device.serviceRefusal(of: parsed, name, device, now: now, lastSampleNow: last) {
                    ServiceCall.writeReply(code: code, id: id, json: json, message: message, into: &reply)
                    return
                }
                call = parsed
                var interval: Int?
                if case .setInterval(let seconds) = parsed { interval = seconds }
                ServiceCall.writeReply(code: 200, id: id, json: json, message: "success", interval: interval, into: &reply)
            }
        }
        publishReply(replyTopic, qos: qos)
        let shown = LogText.escape(Array(name.utf8))
        switch call {
        case .sampleNow?:
            Log.info("service sample_now: posting now")
            lastSampleNow = now
            sample(now: System.monotonicMillis)
        case .reboot?:
            Log.warning("service reboot: the platform asked for a reboot; wisp-update.service restarts the board")
        case .setInterval(let seconds)?:
            Log.info("service set_interval: posting every \(seconds) s until the key file is read again")
            interval = UInt64(seconds) * 1000
            nextSample = System.monotonicMillis + interval
        case nil:
            Log.warning("service " + shown + " refused (see the reply on " + replyTopic + ")")
        }
    }

    /// Why a parsed service call is not run here, or nil to run it (the reboot request is
    /// left for the root step on the way).
    static func serviceRefusal(of call: ServiceCall, _ name: String, _ device: DeviceConfig, now: UInt64, lastSampleNow: UInt64?) -> (Int64, String)? {
        if !device.controlAllowed { return (403, name + " refused over an unauthenticated link (allow_plaintext_control)") }
        if call == .sampleNow {
            guard let last = lastSampleNow, now < last + sampleNowSpacing else { return nil }
            return (429, "too many requests: sample_now runs at most once per second; try again in \(last + sampleNowSpacing - now) ms")
        }
        guard call == .reboot else { return nil }
        guard device.allowReboot else { return (460, "reboot is not allowed on this device (allow_reboot = false)") }
        if let e = Device.requestReboot(device) { return (400, "request error: cannot ask for the reboot: " + e.message) }
        return nil
    }

    /// Leaves the reboot request for the root step (wisp-update.path watches for it).
    static func requestReboot(_ device: DeviceConfig) -> SystemError? {
        let files = UpdateFiles(stateDir: device.stateDir)
        if let e = files.create() { return e }
        var r = UpdateRecord()
        r["requested"] = "\(System.realtimeMillis)"
        return UpdateFiles.write(r, to: files.reboot, mode: 0o644)
    }

    /// Queues event `name` for the platform (sent when online, oldest first).
    mutating func queueEvent(_ name: String, _ fields: [EventPost.Field]) {
        otaIds &+= 1
        var json = JSONWriter(capacity: 512)
        EventPost.write(id: otaIds, name: name, fields: fields, time: clock.wallClock(monotonic: System.monotonicMillis), into: &json)
        if events.count >= Device.maxEvents {
            Log.warning("event " + events[0].topic + " dropped: more than \(Device.maxEvents) waiting")
            events.removeFirst()
        }
        events.append((topics.eventPost(name), json.buffer.bytes))
    }

    /// After each sample: sensors lost or back, the power word, offline-buffer drops.
    mutating func noteEvents() {
        for t in thing.transitions {
            queueEvent(t.reading ? "sensor_back" : "sensor_lost", [.text("sensor", thing.sensors[t.index].spec.identifier)])
        }
        if var p = power, case .success(let v) = p.read(scratch: &powerScratch) {
            let flags = Int64(v)
            if lastPower.map({ $0 & 0xF != flags & 0xF }) ?? (flags & 0xF != 0) {
                Log.warning("power: the firmware reports \(flags & 1 != 0 ? "under-voltage" : "no under-voltage")"
                            + (flags & 0xE != 0 ? ", throttling" : "") + " (flags 0x" + Hex.encode([UInt8(flags >> 16 & 0xFF), UInt8(flags >> 8 & 0xFF), UInt8(flags & 0xFF)]) + ")")
                queueEvent("power", EventPost.powerFields(flags))
            }
            lastPower = flags
            power = p
        }
        let dropped = backlog.ring.dropped
        if dropped > reportedDrops && driver.session.isOnline {
            reportedDrops = dropped
            queueEvent("buffer_overflow", [.number("dropped", Int64(dropped))])
        }
    }

    /// Publishes waiting events (QoS 1), the updater's progress reports and the remote
    /// config's push replies while online (QoS 0, as the SDK does).
    mutating func sendReports() {
        while driver.session.isOnline, !events.isEmpty {
            let e = events[0]
            do {
                _ = try driver.session.publish(topic: e.topic, payload: e.payload[...], qos: .atLeastOnce)
                events.removeFirst()
            } catch {
                break  // the window or the output is full: next time
            }
        }
        guard let updater, let remoteConfig, let topic = topics.otaProgress, driver.session.isOnline else { return }
        while !remoteConfig.replies.isEmpty {
            let r = remoteConfig.replies.removeFirst()
            ConfigFile.writePushReply(code: r.code, id: r.id, message: r.message, into: &reply)
            publishReply(topics.configPushReply, qos: .atMostOnce)
        }
        while !updater.reports.isEmpty {
            let r = updater.reports.removeFirst()
            otaIds &+= 1
            OTAProgress.write(id: otaIds, step: r.step, desc: r.desc, module: loaded.device.otaModule, into: &reply)
            publishReply(topic, qos: .atMostOnce)
        }
    }

    // MARK: telemetry

    /// Publishes what `reply` holds.
    mutating func publishReply(_ topic: String, qos: QoS) {
        guard reply.ok else {
            Log.warning("reply on " + topic + " not sent: longer than \(Device.replyCapacity) bytes")
            return
        }
        do {
            _ = try driver.session.publish(topic: topic, payload: reply.buffer.bytesView(0..<reply.buffer.count), qos: qos)
        } catch {
            Log.warning("reply on " + topic + " not sent: " + error.message)
        }
    }

    /// Samples the thing into the backlog, then sends what the window allows.
    public mutating func sample(now: UInt64) {
        values.removeAll(keepingCapacity: true)
        thing.sample(into: &values)
        backlog.add(time: clock.wallClock(monotonic: now), values: values)
        if topics.otaUpgrade != nil { noteEvents() }
        if !driver.session.isOnline { Log.debug("offline: sample kept (\(backlog.ring.count) waiting)") }
        drain()
    }

    static func render(_ backlog: Backlog, _ position: Int, into json: inout JSONWriter) -> Bool {
        PropertyPost.write(id: backlog.ring.seq(position), values: backlog.ring.values(position), names: backlog.names,
                           time: backlog.ring.time(position), into: &json)
    }

    mutating func render(_ position: Int) -> Bool { Device.render(backlog, position, into: &json) }

    /// Publishes waiting samples oldest first, QoS 1, while the in-flight window has room.
    /// Each post's id is the sample's sequence number and each value carries its sample time.
    /// On the platform, samples kept while offline go out as history batches and only the
    /// newest as a property post (the console's current value).
    mutating func drain() {
        while driver.session.isOnline, let position = backlog.ring.nextWaiting() {
            if topics.historyPost != nil && position < backlog.ring.count - 1 {
                switch sendBatch(from: position) {
                case .sent: continue
                case .notSent: return
                case .nothingFits: break  // one sample alone, as a property post
                }
            }
            // No local copy of the ring: one alive during markSent would copy its storage.
            let seq = backlog.ring.seq(position)
            guard render(position) else {
                Log.error("sample \(seq) does not fit a property post; dropped")
                backlog.ring.deliver(seq: seq)
                continue
            }
            do {
                let id = try driver.session.publish(topic: topics.post, payload: json.buffer.bytesView(0..<json.buffer.count), qos: .atLeastOnce)
                backlog.ring.markSent(position, packetId: id)
                Log.debug("post \(seq) sent as packet \(id)")
            } catch {
                if error != .windowFull && error != .outputFull { Log.warning("post \(seq) not sent: " + error.message) }
                return
            }
        }
    }

    enum BatchOutcome { case sent, notSent, nothingFits }

    /// One history post of the waiting samples from `position` on, the newest excepted: as
    /// many as the post buffer (and `HistoryPost.maxValues`) takes. They leave the ring on
    /// its PUBACK, all together.
    mutating func sendBatch(from position: Int) -> BatchOutcome {
        guard let topic = topics.historyPost, let pk = loaded.device.productKey, let dn = loaded.device.deviceName else { return .nothingFits }
        HistoryPost.begin(id: backlog.ring.seq(position), productKey: pk, deviceName: dn, into: &json)
        var end = position
        var samples = 0
        var values = 0
        while end < backlog.ring.count - 1 {
            if backlog.ring.isWaiting(end) {
                values += backlog.ring.valueCount(end)
                guard values <= HistoryPost.maxValues,
                      HistoryPost.add(values: backlog.ring.values(end), names: backlog.names, time: backlog.ring.time(end),
                                      first: samples == 0, into: &json) else { break }
                samples += 1
            }
            end += 1
        }
        guard samples > 0, HistoryPost.finish(into: &json) else { return .nothingFits }
        let first = backlog.ring.seq(position)
        do {
            let id = try driver.session.publish(topic: topic, payload: json.buffer.bytesView(0..<json.buffer.count), qos: .atLeastOnce)
            for p in position..<end where backlog.ring.isWaiting(p) { backlog.ring.markSent(p, packetId: id) }
            Log.debug("history post of \(samples) samples from \(first) sent as packet \(id)")
            return .sent
        } catch {
            if error != .windowFull && error != .outputFull { Log.warning("history post from \(first) not sent: " + error.message) }
            return .notSent
        }
    }

    // MARK: signals

    mutating func handleSignals() {
        while true {
            let signal = wisp_signal_next(signals)
            if signal == 0 { return }
            let now = System.monotonicMillis
            if signal == 1 {
                switch ConfigLoader.load(loaded.path) {
                case .failure(let e):
                    Log.error("SIGHUP: " + e.message + "; keeping the running settings")
                case .success(let next):
                    if next.fingerprint == loaded.fingerprint {
                        Log.info("SIGHUP: key file unchanged")
                    } else {
                        reload = next
                        driver.session.stop(now: now)
                    }
                }
            } else {
                Log.info(signal == 15 ? "SIGTERM: disconnecting" : "SIGINT: disconnecting")
                driver.session.stop(now: now)
            }
        }
    }
}
