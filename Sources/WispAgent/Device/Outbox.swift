import WispCore

/// Every publish that is not telemetry — replies, progress reports, events, the version
/// report — goes through here. The outbox owns the message ids, the one reply buffer a
/// feature writes a message into, and the messages waiting for the link; the device hands
/// them to the session after each step (`flush`), before any telemetry, so a reply leaves
/// before the post it causes. A message holds its bytes only until the session takes them
/// (the reply buffer is fixed; a message's own copy is made when it is queued: a reply or a
/// report is an event, not the steady state, which never queues anything). At most
/// `maxMessages` wait; a connect sends five or six.
///
/// Two kinds: a *reply* goes at the next flush the link is up, or is dropped with a log
/// line (an answer is worth nothing after a reconnect); one that finds the QoS 1 window or
/// the output full waits for the next flush (the device flushes before a PUBACK's slot
/// goes to the backlog). A *report* (`waits`: events, OTA progress, config push replies)
/// waits for the link, oldest first, the oldest dropped when the outbox is full.
public struct Outbox {
    public struct Message {
        public let topic: String
        public let qos: QoS
        public let waits: Bool
        public let payload: [UInt8]
    }

    /// A message: a code, an id of at most 64 bytes and one sentence, or an event.
    public static var replyCapacity: Int { 512 }
    public static var maxMessages: Int { 16 }

    public let topics: AlinkTopics
    /// The platform's own features (OTA, remote config, events, services' reboot) exist only
    /// on an IoT Platform device: decided here, once.
    public let isPlatform: Bool
    /// What the next `send` publishes: features write their message here.
    public var json = JSONWriter(capacity: Outbox.replyCapacity)
    var ids: UInt64 = 0
    public private(set) var messages: [Message] = []
    let log: Log

    public init(topics: AlinkTopics, log: Log) {
        self.topics = topics
        self.log = log
        isPlatform = Outbox.isPlatform(topics)
    }

    /// Whether these are an IoT Platform device's topics (the one place that decides).
    public static func isPlatform(_ topics: AlinkTopics) -> Bool { topics.otaUpgrade != nil }

    /// The next message id (the Alink `id` field of reports and requests).
    public mutating func nextId() -> UInt64 {
        ids &+= 1
        return ids
    }

    /// Queues what `json` holds for `topic`.
    public mutating func send(_ topic: String, qos: QoS, waits: Bool = false) {
        guard json.ok else {
            log.warning("message on " + topic + " not sent: longer than \(Outbox.replyCapacity) bytes")
            return
        }
        if messages.count >= Outbox.maxMessages {
            let oldest = messages.firstIndex(where: { $0.waits }) ?? 0
            log.warning("message on " + messages[oldest].topic + " dropped: the outbox is full (\(messages.count) waiting)")
            messages.remove(at: oldest)
        }
        messages.append(Message(topic: topic, qos: qos, waits: waits, payload: json.buffer.bytes))
    }

    /// Writes event `name` and queues it (QoS 1, waits for the link).
    public mutating func event(_ name: String, _ fields: [EventPost.Field], time: UInt64) {
        EventPost.write(id: nextId(), name: name, fields: fields, time: time, into: &json)
        send(topics.eventPost(name), qos: .atLeastOnce, waits: true)
    }

    public func payload(_ m: Message) -> ArraySlice<UInt8> { m.payload[...] }

    /// Hands the messages to the session, oldest first. Reports that find the link down or
    /// the window full wait (and hold back the reports behind them, to keep their order);
    /// replies are sent, wait for room, or are dropped when the link is down.
    @inline(__always)  // the steady state's flushes find nothing: a test, not a call
    public mutating func flush(_ session: inout Session) {
        if !messages.isEmpty { flushQueued(&session) }
    }

    @inline(never)
    mutating func flushQueued(_ session: inout Session) {
        var i = 0
        var blocked = false
        while i < messages.count {
            let m = messages[i]
            if m.waits && blocked {
                i += 1
                continue
            }
            do {
                _ = try session.publish(topic: m.topic, payload: payload(m), qos: m.qos)  // a slice: the telemetry posts' specialisation
                messages.remove(at: i)
            } catch {
                if m.waits {
                    blocked = true
                    i += 1
                } else if error == .windowFull || error == .outputFull {
                    i += 1
                } else {
                    log.warning("reply on " + m.topic + " not sent: " + error.message)
                    messages.remove(at: i)
                }
            }
        }
    }
}
