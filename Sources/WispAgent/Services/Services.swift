import WispCore

/// The platform's service calls and RRPC: parses the call, checks it may run here, answers
/// it through the outbox, and tells the device what to do (`Effect`): sampling and the
/// interval belong to telemetry. The reboot request is left for the root step.
public final class Services {
    public enum Effect: Equatable {
        case none
        case sampleNow
        case setInterval(Int)
    }

    /// False over a link anyone on the path can write to: nothing is run.
    let controlAllowed: Bool
    let allowReboot: Bool
    /// `…/thing/service/` and `…/rrpc/response/`: where the answers go.
    let servicePrefix: String
    let rrpcResponsePrefix: String
    let clock: Clock
    let files: OTAFiles
    let log: Log

    public init(_ device: DeviceConfig, board: Board, topics: AlinkTopics, clock: Clock, log: Log) {
        self.log = log
        controlAllowed = device.controlAllowed
        allowReboot = board.settings.allowReboot
        servicePrefix = topics.servicePrefix
        rrpcResponsePrefix = topics.rrpcResponsePrefix
        self.clock = clock
        files = OTAFiles(stateDir: device.stateDir)
    }

    /// `thing.service.{name}`, answered on `…/service/{name}_reply` (QoS 1).
    public func call(_ name: String, payload: UnsafeRawBufferPointer, sampleNowWait: UInt64?, out: inout Outbox) -> Effect {
        serve(name, payload: payload, replyTopic: servicePrefix + name + "_reply", qos: .atLeastOnce, sampleNowWait: sampleNowWait, out: &out)
    }

    /// An RRPC request: the service is named by the request's method; the answer goes to
    /// the same message id (QoS 0, as the platform's SDK does).
    public func rrpc(messageId: String, payload: UnsafeRawBufferPointer, sampleNowWait: UInt64?, out: inout Outbox) -> Effect {
        var name = "(no thing.service method)"
        if let json = try? JSONReader(payload), let n = ServiceCall.name(fromMethodOf: json) { name = n }
        return serve(name, payload: payload, replyTopic: rrpcResponsePrefix + messageId, qos: .atMostOnce,
                     sampleNowWait: sampleNowWait, out: &out)
    }

    func serve(_ name: String, payload: UnsafeRawBufferPointer, replyTopic: String, qos: QoS, sampleNowWait: UInt64?, out: inout Outbox) -> Effect {
        var call: ServiceCall?
        // The reply's fields, written once below (one inlined copy of the writer).
        var code: Int64 = 460, id: Range<Int>?, message = "request parameter error: not JSON", interval: Int?
        let json = try? JSONReader(payload)
        if let json {
            switch ServiceCall.parse(name: name, json) {
            case .failure(let refusal):
                (code, id, message) = (refusal.code, refusal.id, refusal.message)
            case .success(let (callId, parsed)):
                id = callId
                if let (refusedCode, why) = refusal(of: parsed, name, sampleNowWait: sampleNowWait) {
                    (code, message) = (refusedCode, why)
                } else {
                    call = parsed
                    (code, message) = (200, "success")
                    if case .setInterval(let seconds) = parsed { interval = seconds }
                }
            }
        }
        ServiceCall.writeReply(code: code, id: id, json: json, message: message, interval: interval, into: &out.json)
        out.send(replyTopic, qos: qos)
        switch call {
        case .sampleNow?:
            log.info("service sample_now: posting now")
            return .sampleNow
        case .reboot?:
            log.warning("service reboot: the platform asked for a reboot; wisp-update.service restarts the board")
            return .none
        case .setInterval(let seconds)?:
            log.info("service set_interval: posting every \(seconds) s until the key file is read again")
            return .setInterval(seconds)
        case nil:
            log.warning("service " + LogText.escape(Array(name.utf8)) + " refused (see the reply on " + replyTopic + ")")
            return .none
        }
    }

    /// Why a parsed call is not run here, or nil to run it (the reboot request is left for
    /// the root step on the way).
    func refusal(of call: ServiceCall, _ name: String, sampleNowWait: UInt64?) -> (Int64, String)? {
        if !controlAllowed { return (403, name + " refused over an unauthenticated link (allow_plaintext_control)") }
        if call == .sampleNow {
            guard let wait = sampleNowWait else { return nil }
            return (429, "too many requests: sample_now runs at most once per second; try again in \(wait) ms")
        }
        guard call == .reboot else { return nil }
        guard allowReboot else { return (460, "reboot is not allowed on this device (allow_reboot = false in the board settings, board.conf)") }
        if let e = requestReboot() { return (400, "request error: cannot ask for the reboot: " + e.message) }
        return nil
    }

    /// Leaves the reboot request for the root step (wisp-update.path watches for it).
    func requestReboot() -> SystemError? {
        if let e = files.create() { return e }
        var r = StateRecord()
        r["requested"] = "\(clock.realtime())"
        return StateStore.write(r, to: files.reboot, mode: 0o644)
    }
}
