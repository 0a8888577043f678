import WispCore

/// The platform's clock over MQTT (the arithmetic and its bounds are `NTP` in WispCore):
/// post timestamps come from the platform's time once it has answered, from the system
/// clock before.
public struct ClockSync {
    /// Wall-clock ms minus monotonic ms, once the platform has answered.
    public private(set) var offset: Int64?
    var sentAt: UInt64?
    let clock: Clock
    let log: Log

    public init(clock: Clock = .system, log: Log = Log()) {
        self.clock = clock
        self.log = log
    }

    /// Wall-clock milliseconds now.
    public func wallClock(monotonic: UInt64) -> UInt64 {
        if let offset, monotonic < UInt64(Int64.max / 2) {
            let v = Int64(monotonic) + offset  // |offset| < 2^43 (NTP.offset): no overflow
            if v > 0 { return UInt64(v) }
        }
        return clock.realtime()
    }

    /// Wall-clock milliseconds now.
    public var now: UInt64 { wallClock(monotonic: clock.monotonic()) }

    /// At CONNACK: asks the platform for its time (platform devices only).
    public mutating func online(out: inout Outbox) {
        guard let topic = out.topics.ntpRequest else { return }
        request(monotonic: clock.monotonic(), into: &out.json)
        out.send(topic, qos: .atMostOnce)
    }

    /// The platform's answer on `…/ntp/response`.
    public mutating func handle(_ payload: UnsafeRawBufferPointer) {
        switch response(payload, monotonic: clock.monotonic()) {
        case .set: log.info("clock: platform time received; post timestamps follow it")
        case .unsolicited: log.debug("clock: an NTP answer without a request; ignored")
        case .refused(let why): log.warning("clock: NTP answer ignored: " + why + "; keeping the current clock")
        }
    }

    /// The request payload `{"deviceSendTime":"N"}`.
    public mutating func request(monotonic: UInt64, into json: inout JSONWriter) {
        sentAt = monotonic
        NTP.writeRequest(deviceSendTime: monotonic, into: &json)
    }

    public enum Outcome: Equatable {
        case set
        /// No request is outstanding (a repeated or unsolicited answer).
        case unsolicited
        case refused(String)
    }

    /// Takes a response: the offset is set only from a plausible answer to our request.
    public mutating func response(_ payload: UnsafeRawBufferPointer, monotonic: UInt64) -> Outcome {
        guard let sent = sentAt else { return .unsolicited }
        let json: JSONReader
        do { json = try JSONReader(payload) } catch { return .refused("not JSON: " + error.message) }
        guard let recv = millis(json, json.member("serverRecvTime")),
              let send = millis(json, json.member("serverSendTime")) else {
            return .refused("serverRecvTime and serverSendTime must be whole milliseconds")
        }
        switch NTP.offset(serverRecv: recv, serverSend: send, sent: sent, received: monotonic) {
        case .failure(let refusal): return .refused(refusal.message)
        case .success(let value):
            offset = value
            sentAt = nil
            return .set
        }
    }

    /// A millisecond count given as a number or a string of digits.
    func millis(_ json: JSONReader, _ value: JSONReader.Value?) -> Int64? {
        switch value {
        case .number(let scaled, 0)?: return scaled
        case .string(let r)?:
            return json.unsignedDecimal(r)
        default: return nil
        }
    }
}
