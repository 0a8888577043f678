import WispCore

/// The thing's telemetry: samples on the schedule, out of it when the platform changed
/// something (a property set, `sample_now`), the backlog drained oldest first — history
/// batches on the platform, one property post per sample elsewhere — and the property
/// sets that drive the outputs. Posts are QoS 1 straight into the session (each packet id
/// marks the samples it carries); everything else goes through the outbox.
public struct Telemetry: ~Copyable {
    public var thing: Thing
    public let backlog: Backlog
    let topics: AlinkTopics
    /// The history post names the device (platform devices).
    let productKey: String?
    let deviceName: String?
    var values: [PropertyValue] = []
    /// The post being written: sized from the session's largest outbound packet.
    var json: JSONWriter
    /// Milliseconds between samples: the key file's, or what `set_interval` asked for.
    var interval: UInt64
    var nextSample: UInt64
    /// When `sample_now` or a property set last sampled out of schedule: at most one per
    /// `sampleNowSpacing` (each samples, posts and fsyncs the buffer file); a set within it
    /// samples at `pendingSample` instead.
    var lastSampleNow: UInt64?
    var pendingSample: UInt64?
    static var sampleNowSpacing: UInt64 { 1000 }
    var reportedDrops = 0
    /// The newest sample's id and time (the health's reply latency: its post's reply).
    public private(set) var lastSampled: (seq: UInt64, time: UInt64)?
    /// Posts (property or history) published, and those the broker acknowledged (the status file).
    public internal(set) var posts = 0
    public internal(set) var acks = 0
    var power: PowerWatch
    let log: Log

    /// The backlog of the previous run carries over when the properties and ring size are
    /// the same and no buffer file holds it. `sizePosts` finishes it once the session's
    /// buffers are known.
    public init(_ device: DeviceConfig, board: Board, topics: AlinkTopics, backlog previous: Backlog?, log: Log) {
        productKey = device.productKey
        deviceName = device.deviceName
        self.topics = topics
        self.log = log
        power = PowerWatch(board: board, log: log)
        thing = Thing(device, board: board, log: log)
        if let previous, previous.names.elementsEqual(thing.names, by: { $0.equals($1) }), previous.ring.capacity == device.bufferSamples, device.bufferFile == nil {
            previous.ring.requeueInFlight()
            backlog = previous
        } else {
            backlog = Backlog(names: thing.names, device: device, log: log)
        }
        json = JSONWriter(capacity: 0)
        interval = UInt64(device.telemetryInterval) * 1000
        nextSample = UInt64.max
        values.reserveCapacity(thing.sensors.count + device.outputs.count + 1)
    }

    /// The post buffer (as large as the session's largest packet allows) and the first
    /// sample's time: made after the session, so sensor discovery's buffers and the
    /// session's are not alive at once (the start-up heap peak).
    public mutating func sizePosts(maxOutboundPacket: Int, now: UInt64) {
        json = JSONWriter(capacity: maxOutboundPacket - topics.longestPostTopic - 8)
        nextSample = now + interval
    }

    /// When `advance` has work.
    public var deadline: UInt64 { min(nextSample, pendingSample ?? UInt64.max) }

    /// Samples when the schedule (or a postponed out-of-schedule sample) is due.
    public mutating func advance(now: UInt64, time: UInt64, session: inout Session, out: inout Outbox) {
        if now >= nextSample {
            sample(time: time, session: &session, out: &out)
            while nextSample <= now { nextSample += interval }  // drift-free: k × interval from start
        }
        if let due = pendingSample, now >= due {
            pendingSample = nil
            lastSampleNow = now
            sample(time: time, session: &session, out: &out)
        }
    }

    /// At CONNACK: what waited goes out.
    public mutating func online(session: inout Session) {
        let waiting = backlog.ring.waitingCount
        if waiting > 1 { log.info("sending \(waiting) samples buffered while offline, oldest first") }
        drain(&session)
    }

    /// A PUBACK: the samples it carried leave the backlog; more go out.
    public mutating func delivered(_ id: UInt16, session: inout Session) {
        if backlog.delivered(packetId: id) { acks += 1 }
        drain(&session)
    }

    /// Samples the thing into the backlog, then sends what the window allows.
    public mutating func sample(time: UInt64, session: inout Session, out: inout Outbox) {
        values.removeAll(keepingCapacity: true)
        thing.sample(into: &values)
        backlog.add(time: time, values: values)
        if backlog.ring.count > 0 { lastSampled = (backlog.ring.seq(backlog.ring.count - 1), time) }
        if out.isPlatform { noteEvents(time: time, online: session.isOnline, out: &out) }
        if !session.isOnline { log.debug("offline: sample kept (\(backlog.ring.count) waiting)") }
        out.flush(&session)
        drain(&session)
    }

    // MARK: out of schedule

    /// What a property set (`changed`) or a service call asked of the schedule.
    public mutating func apply(_ effect: Services.Effect, changed: Bool, now: UInt64, time: UInt64, session: inout Session, out: inout Outbox) {
        switch effect {
        case .sampleNow: sampleNow(now: now, time: time, session: &session, out: &out)
        case .setInterval(let seconds): setInterval(seconds: seconds, now: now)
        case .none: if changed { sampleSoon(now: now, time: time, session: &session, out: &out) }
        }
    }

    /// A property set: the outputs change all or nothing, the reply goes out, and the new
    /// state is posted (at most once per `sampleNowSpacing`).
    public mutating func propertySet(_ payload: UnsafeRawBufferPointer, out: inout Outbox) -> Bool {
        let changed = thing.applySet(payload, reply: &out.json)
        out.send(topics.setReply, qos: .atLeastOnce)
        return changed
    }

    /// Samples now for a change the platform made, or at the end of the spacing when the
    /// last such sample is too recent.
    public mutating func sampleSoon(now: UInt64, time: UInt64, session: inout Session, out: inout Outbox) {
        if let last = lastSampleNow, now < last + Telemetry.sampleNowSpacing {
            pendingSample = last + Telemetry.sampleNowSpacing
            return
        }
        lastSampleNow = now
        sample(time: time, session: &session, out: &out)
    }

    /// `sample_now`, which the service's rate limit let through.
    public mutating func sampleNow(now: UInt64, time: UInt64, session: inout Session, out: inout Outbox) {
        lastSampleNow = now
        sample(time: time, session: &session, out: &out)
    }

    /// How long `sample_now` must wait (ms), or nil when it may run now.
    public func sampleNowWait(now: UInt64) -> UInt64? {
        guard let last = lastSampleNow, now < last + Telemetry.sampleNowSpacing else { return nil }
        return last + Telemetry.sampleNowSpacing - now
    }

    /// `set_interval`: posts every `seconds` until the key file is read again.
    public mutating func setInterval(seconds: Int, now: UInt64) {
        interval = UInt64(seconds) * 1000
        nextSample = now + interval
    }

    // MARK: events

    /// After each sample: sensors lost or back, the power word, offline-buffer drops.
    mutating func noteEvents(time: UInt64, online: Bool, out: inout Outbox) {
        for t in thing.transitions {
            out.event(t.reading ? "sensor_back" : "sensor_lost", [.text("sensor", thing.sensors[t.index].spec.identifier)], time: time)
        }
        power.check(time: time, out: &out)
        if online { noteDrops(time: time, out: &out) }
    }

    /// Samples the offline buffer dropped since the last `buffer_overflow` event.
    public mutating func noteDrops(time: UInt64, out: inout Outbox) {
        let dropped = backlog.ring.dropped
        guard dropped > reportedDrops else { return }
        reportedDrops = dropped
        out.event("buffer_overflow", [.number("dropped", Int64(dropped))], time: time)
    }

    // MARK: posting

    static func render(_ ring: SampleRing, _ names: [String], _ position: Int, into json: inout JSONWriter) -> Bool {
        PropertyPost.write(id: ring.seq(position), values: ring.values(position), names: names, time: ring.time(position), into: &json)
    }

    /// Publishes waiting samples oldest first, QoS 1, while the in-flight window has room.
    /// Each post's id is the sample's sequence number and each value carries its sample time.
    /// On the platform, samples kept while offline go out as history batches and only the
    /// newest as a property post (the console's current value).
    public mutating func drain(_ session: inout Session) {
        // The ring in place (the backlog's `modify`): read through the class one call at a
        // time, each read copied the ring (a retain and a release per array) and a local
        // copy alive during markSent would copy its storage.
        let backlog = backlog
        backlog.withRing { ring in drain(&ring, names: backlog.names, &session) }
    }

    mutating func drain(_ ring: inout SampleRing, names: [String], _ session: inout Session) {
        while session.isOnline, let position = ring.nextWaiting() {
            if topics.historyPost != nil && position < ring.count - 1 {
                switch sendBatch(from: position, &ring, names: names, &session) {
                case .sent: continue
                case .notSent: return
                case .nothingFits: break  // one sample alone, as a property post
                }
            }
            let seq = ring.seq(position)
            guard Telemetry.render(ring, names, position, into: &json) else {
                log.error("sample \(seq) does not fit a property post; dropped")
                ring.deliver(seq: seq)
                continue
            }
            do {
                let id = try session.publish(topic: topics.post, payload: json.buffer.bytesView(0..<json.buffer.count), qos: .atLeastOnce)
                ring.markSent(position, packetId: id)
                posts += 1
                log.debug("post \(seq) sent as packet \(id)")
            } catch {
                if error != .windowFull && error != .outputFull { log.warning("post \(seq) not sent: " + error.message) }
                return
            }
        }
    }

    enum BatchOutcome { case sent, notSent, nothingFits }

    /// One history post of the waiting samples from `position` on, the newest excepted: as
    /// many as the post buffer (and `HistoryPost.maxValues`) takes. They leave the ring on
    /// its PUBACK, all together.
    mutating func sendBatch(from position: Int, _ ring: inout SampleRing, names: [String], _ session: inout Session) -> BatchOutcome {
        guard let topic = topics.historyPost, let pk = productKey, let dn = deviceName else { return .nothingFits }
        HistoryPost.begin(id: ring.seq(position), productKey: pk, deviceName: dn, into: &json)
        var end = position
        var samples = 0
        var values = 0
        while end < ring.count - 1 {
            if ring.isWaiting(end) {
                values += ring.valueCount(end)
                guard values <= HistoryPost.maxValues,
                      HistoryPost.add(values: ring.values(end), names: names, time: ring.time(end),
                                      first: samples == 0, into: &json) else { break }
                samples += 1
            }
            end += 1
        }
        guard samples > 0, HistoryPost.finish(into: &json) else { return .nothingFits }
        let first = ring.seq(position)
        do {
            let id = try session.publish(topic: topic, payload: json.buffer.bytesView(0..<json.buffer.count), qos: .atLeastOnce)
            for p in position..<end where ring.isWaiting(p) { ring.markSent(p, packetId: id) }
            posts += 1
            log.debug("history post of \(samples) samples from \(first) sent as packet \(id)")
            return .sent
        } catch {
            if error != .windowFull && error != .outputFull { log.warning("history post from \(first) not sent: " + error.message) }
            return .notSent
        }
    }
}
