import WispCore

/// Device logs in the console (`thing.log.post`), platform devices only. The log keeps
/// wisp's lines at `log_upload_level` and above in the `LogSink` ring from the start; at
/// every connect this asks the console's switch (`thing.config.log.get`) and follows its
/// pushes. Switch on: the waiting lines go up, oldest first, at most one post a second
/// (each within the outbox's 512-byte buffer, at most 40 entries; a longer line is cut
/// and marked `…`). Switch off: the ring is emptied and nothing is kept until the next
/// connect asks again. Lines dropped from the full ring are counted in the next post.
struct LogUpload {
    let sink: LogSink
    /// The console's switch: nil while asking, then on or off.
    var on: Bool?
    /// The link is up (from CONNACK to the next offline): no deadline while it is down, or
    /// the loop would wake at once, again and again, for a post it cannot send.
    var linkUp = false
    var nextPost: UInt64 = 0
    let log: Log
    static let spacing: UInt64 = 1000

    init(sink: LogSink, log: Log) {
        self.sink = sink
        self.log = log
    }

    /// At CONNACK: asks the switch (lines are kept meanwhile).
    mutating func online(out: inout Outbox) {
        guard let topic = out.topics.logConfigGet else { return }
        on = nil
        linkUp = true
        sink.keeping = true
        LogPost.writeSwitchGet(id: out.nextId(), into: &out.json)
        out.send(topic, qos: .atMostOnce)
    }

    /// The switch's reply or a push.
    mutating func handleSwitch(_ payload: UnsafeRawBufferPointer) {
        guard let json = try? JSONReader(payload), let mode = LogPost.switchMode(json) else {
            log.write(.warning, "console log switch: a message without data.content.mode (0 or 1) ignored: "
                      + LogText.escape(Array(payload.prefix(200))), local: true)
            return
        }
        if mode != on {
            log.write(.info, mode ? "console log switch: on; lines at " + sink.threshold.name + " and above go up"
                                  : "console log switch: off; no lines go up", local: true)
        }
        on = mode
        sink.keeping = mode
        if !mode {
            sink.ring.removeAll()
            _ = sink.ring.takeDropped()
        }
    }

    /// When the next post may go (the loop's deadline), or nil when nothing waits.
    var deadline: UInt64? { linkUp && on == true && (!sink.ring.isEmpty || sink.ring.dropped > 0) ? nextPost : nil }

    /// One post of the oldest waiting lines, when the switch is on, the link up and the
    /// spacing passed. `wallNow`: the wall clock at `now` (the entries' times follow it).
    mutating func advance(now: UInt64, wallNow: UInt64, online: Bool, out: inout Outbox) {
        guard online, let due = deadline, now >= due, let topic = out.topics.logPost else { return }
        nextPost = now + LogUpload.spacing
        // One log post waiting at a time, and only in a half-empty outbox: a slow or full link
        // holds the logs back, never an OTA report, an event or a reply.
        guard out.messages.count < Outbox.maxMessages / 2, !out.messages.contains(where: { $0.topic.equals(topic) }) else { return }
        LogPost.start(id: out.nextId(), into: &out.json)
        let tail = 40  // `"}` of an entry, `],"method":"thing.log.post"}`
        var entries = 0
        let dropped = sink.ring.takeDropped()
        if dropped > 0 {
            LogPost.entry(first: true, time: wallNow, level: .warning, module: 0, into: &out.json) { json in
                json.string("\(dropped) log lines dropped: the ring of \(sink.ring.capacity) bytes was full")
            }
            entries = 1
        }
        var taken = 0
        var next: LogRing.Entry? = sink.ring.isEmpty ? nil : sink.ring.oldest
        while let e = next, entries < LogPost.maxEntries {
            let mark = out.json.buffer.count
            let age = now >= e.at ? now - e.at : 0
            var content = LogPost.Content(out.json, reserve: tail)
            let ring = sink.ring
            LogPost.entry(first: entries == 0, time: wallNow >= age ? wallNow - age : 0, level: e.level, module: e.module, into: &out.json) { json in
                json.byte(UInt8(ascii: "\""))
                ring.content(e) { content.add($0, into: &json) }
                json.byte(UInt8(ascii: "\""))
            }
            // A line cut to fit goes only as the first of a post; otherwise it waits for the next.
            if !out.json.ok || (content.cut && entries > 0) {
                out.json.rollBack(to: mark)
                break
            }
            next = sink.ring.entry(after: e, index: taken)
            entries += 1
            taken += 1
        }
        guard entries > 0 else {
            sink.ring.removeFirst(1)  // cannot happen (a cut line always fits): never stuck on one
            return
        }
        LogPost.finish(into: &out.json)
        sink.ring.removeFirst(taken)  // before `send`, which may log (and so append to the ring)
        out.send(topic, qos: .atLeastOnce, waits: true)
    }
}
