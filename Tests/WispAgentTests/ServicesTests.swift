import Testing
@testable import WispAgent
import WispCore

/// The platform's service calls and RRPC: each answered through the outbox with a code the
/// console shows, and an effect for telemetry when the call runs.
@Suite("Services and RRPC")
struct ServicesTests {
    let state = TemporaryDirectory("services")
    let clock = SimulatedClock()
    let topics = Platform.topics

    struct Answer {
        var effect: Services.Effect
        var topic: String
        var qos: QoS
        var waits: Bool
        var reply: [String: Any]

        var code: Int { reply["code"] as? Int ?? -1 }
        var id: String? { reply["id"] as? String }
        var message: String { reply["message"] as? String ?? "" }
        var data: [String: Any] { reply["data"] as? [String: Any] ?? [:] }
    }

    /// `allow_reboot` is a board setting (board.conf); the rest go to the key file.
    func services(_ extra: [(String, String)] = [], endpoint: String = "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt") -> Services {
        var board = Board()
        board.settings.allowReboot = extra.contains { $0.0 == "allow_reboot" && $0.1 == "true" }
        return Services(Platform.device(endpoint: endpoint, stateDir: state.path, extra.filter { $0.0 != "allow_reboot" }), board: board,
                        topics: topics, clock: clock.clock, log: Log())
    }

    /// Calls service `name` with `payload`; the one reply it queued.
    func call(_ services: Services, _ name: String, _ payload: String, wait: UInt64? = nil) throws -> Answer {
        var out = Outbox(topics: topics, log: Log())
        let effect = Array(payload.utf8).withUnsafeBytes { services.call(name, payload: $0, sampleNowWait: wait, out: &out) }
        try #require(out.messages.count == 1)
        let m = out.messages[0]
        return Answer(effect: effect, topic: m.topic, qos: m.qos, waits: m.waits, reply: decoded(out, m))
    }

    func rrpc(_ services: Services, _ messageId: String, _ payload: String) throws -> Answer {
        var out = Outbox(topics: topics, log: Log())
        let effect = Array(payload.utf8).withUnsafeBytes { services.rrpc(messageId: messageId, payload: $0, sampleNowWait: nil, out: &out) }
        try #require(out.messages.count == 1)
        let m = out.messages[0]
        return Answer(effect: effect, topic: m.topic, qos: m.qos, waits: m.waits, reply: decoded(out, m))
    }

    static func request(_ id: String, _ name: String, params: String = "{}") -> String {
        #"{"id":"\#(id)","version":"1.0","params":\#(params),"method":"thing.service.\#(name)"}"#
    }

    @Test func sampleNowSamplesAndIsAnsweredOnTheServiceReplyTopic() throws {
        let a = try call(services(), "sample_now", Self.request("42", "sample_now"))
        #expect(a.effect == .sampleNow)
        #expect(a.topic == "/sys/a1PK/board-7/thing/service/sample_now_reply")
        #expect(a.qos == .atLeastOnce && !a.waits, "a reply: QoS 1, sent at once or not at all")
        #expect(a.code == 200 && a.id == "42" && a.message == "success")
        #expect(a.reply["version"] as? String == "1.0")
    }

    @Test func sampleNowTooSoonIsRefusedWithTheWait() throws {
        let a = try call(services(), "sample_now", Self.request("43", "sample_now"), wait: 640)
        #expect(a.effect == .none, "nothing sampled")
        #expect(a.code == 429 && a.id == "43")
        #expect(a.message.contains("try again in 640 ms"), "\(a.message)")
    }

    @Test(arguments: [1, 60, 86_400])
    func setIntervalWithinTheBoundsIsTakenAndEchoed(seconds: Int) throws {
        let a = try call(services(), "set_interval", Self.request("7", "set_interval", params: #"{"interval":\#(seconds)}"#))
        #expect(a.effect == .setInterval(seconds))
        #expect(a.code == 200 && a.id == "7")
        #expect(a.data["interval"] as? Int == seconds, "the reply carries the interval in force")
    }

    @Test(arguments: [#"{"interval":0}"#, #"{"interval":86401}"#, #"{"interval":2.5}"#, #"{"interval":"30"}"#, "{}"])
    func setIntervalOutOfBoundsIsRefused(params: String) throws {
        let a = try call(services(), "set_interval", Self.request("8", "set_interval", params: params))
        #expect(a.effect == .none)
        #expect(a.code == 460 && a.id == "8")
        #expect(a.message.contains("1 to 86400"), "\(a.message)")
        #expect(a.data.isEmpty)
    }

    @Test func rebootIsRefusedWithoutAllowReboot() throws {
        let a = try call(services(), "reboot", Self.request("9", "reboot"))
        #expect(a.effect == .none)
        #expect(a.code == 460 && a.id == "9" && a.message.contains("allow_reboot"), "\(a.message)")
        #expect(!state.exists("ota/reboot"), "no reboot requested")
    }

    @Test func rebootWithAllowRebootLeavesTheRequestForTheRootStep() throws {
        let a = try call(services([("allow_reboot", "true")]), "reboot", Self.request("10", "reboot"))
        #expect(a.code == 200 && a.id == "10")
        #expect(a.effect == .none, "the root step reboots, not the service")
        let record = try #require(state.record("ota/reboot"), "state_dir/ota/reboot written")
        #expect(record["requested"] == String(clock.epoch + clock.now), "when it was asked for (wall clock, ms)")
    }

    /// ws:// without allow_plaintext_control: anyone on the path could write the call.
    @Test(arguments: ["sample_now", "set_interval", "reboot"])
    func nothingRunsOverAnUnauthenticatedLink(name: String) throws {
        let s = services([("allow_reboot", "true")], endpoint: "ws://broker.example:80/mqtt")
        let a = try call(s, name, Self.request("11", name, params: #"{"interval":5}"#))
        #expect(a.effect == .none)
        #expect(a.code == 403 && a.id == "11" && a.message.contains("allow_plaintext_control"), "\(a.message)")
        #expect(!state.exists("ota/reboot"))
    }

    @Test func allowPlaintextControlLetsCallsRunOverWs() throws {
        let s = services([("allow_plaintext_control", "true")], endpoint: "ws://broker.example:80/mqtt")
        let a = try call(s, "sample_now", Self.request("12", "sample_now"))
        #expect(a.effect == .sampleNow && a.code == 200)
    }

    @Test func anUnknownServiceIsNotFound() throws {
        let a = try call(services(), "self_destruct", Self.request("13", "self_destruct"))
        #expect(a.effect == .none)
        #expect(a.topic == "/sys/a1PK/board-7/thing/service/self_destruct_reply")
        #expect(a.code == 460 && a.id == "13" && a.message == "service not found: self_destruct")
    }

    @Test func aCallThatIsNotJSONIsRefused() throws {
        let a = try call(services(), "sample_now", "sample now please")
        #expect(a.effect == .none)
        #expect(a.code == 460 && a.id == "" && a.message.contains("not JSON"), "\(a.message)")
    }

    /// RRPC: the service comes from the request's method; the answer goes to the same
    /// message id at QoS 0.
    @Test func rrpcIsAnsweredOnTheResponseTopicOfItsMessageId() throws {
        let a = try rrpc(services(), "1234567", Self.request("80", "sample_now"))
        #expect(a.effect == .sampleNow)
        #expect(a.topic == "/sys/a1PK/board-7/rrpc/response/1234567")
        #expect(a.qos == .atMostOnce && !a.waits)
        #expect(a.code == 200 && a.id == "80" && a.message == "success")

        let b = try rrpc(services(), "1234568", Self.request("81", "set_interval", params: #"{"interval":15}"#))
        #expect(b.effect == .setInterval(15) && b.data["interval"] as? Int == 15)
        #expect(b.topic == "/sys/a1PK/board-7/rrpc/response/1234568")
    }

    @Test func rrpcWithoutAServiceMethodIsNotFound() throws {
        let a = try rrpc(services(), "55", #"{"id":"82","version":"1.0","params":{},"method":"thing.event.property.post"}"#)
        #expect(a.effect == .none)
        #expect(a.topic == "/sys/a1PK/board-7/rrpc/response/55")
        #expect(a.code == 460 && a.id == "82" && a.message.contains("service not found"), "\(a.message)")
    }
}
