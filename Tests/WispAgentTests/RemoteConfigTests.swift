import Foundation
import Testing
@testable import WispAgent
import WispCore

/// Remote config: the platform's push (or get reply) → the file downloaded → sha256 →
/// validated over the key file → kept in state_dir and handed to the device; anything
/// wrong keeps the running settings and says why in the push reply.
@Suite("Remote config")
struct RemoteConfigTests {
    let dir = TemporaryDirectory("remote-config")
    let clock = SimulatedClock()
    let replyTopic = "/sys/a1PK/board-7/thing/config/push_reply"

    var stateDir: String { dir.file("state") }

    /// The key file in the temporary directory (0600), loaded as `wisp run` would.
    func loaded(endpoint: String = "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt") throws -> LoadedConfig {
        dir.write("device.key", Platform.keyFile(endpoint: endpoint, stateDir: stateDir, [("telemetry_interval", "60")]))
        switch ConfigLoader.load(dir.file("device.key"), log: Log(), board: Board()) {
        case .success(let l): return l
        case .failure(let e):
            Issue.record(Comment(rawValue: e.message))
            throw e
        }
    }

    static func push(_ file: String, id: String = "123", configId: String = "cfg-2", sha256: [UInt8]? = nil) -> String {
        """
        {"id":"\(id)","version":"1.0","method":"thing.config.push","params":{"configId":"\(configId)",\
        "configSize":\(file.utf8.count),"sign":"\(hex(sha256 ?? digestOf(Array(file.utf8))))","signMethod":"Sha256",\
        "url":"https://cfg.example/a1PK/cfg-2.conf?Expires=1&Signature=y","getType":"file"}}
        """
    }

    static func getReply(_ file: String, configId: String) -> String {
        """
        {"code":200,"data":{"configId":"\(configId)","configSize":\(file.utf8.count),"sign":"\(hex(digestOf(Array(file.utf8))))",\
        "signMethod":"Sha256","url":"https://cfg.example/a1PK/\(configId).conf","getType":"file"},"id":"5","message":"success"}
        """
    }

    struct Delivery {
        var next: LoadedConfig?
        var out: Outbox
        var replies: [[String: Any]] { out.messages.map { decoded(out, $0) } }
    }

    /// Hands `message` to remote config and runs the download to its end.
    func deliver(_ message: String, push: Bool = true, serving file: String, loaded: LoadedConfig,
                 script: [FakeHTTPServer.Behaviour] = [.serve]) -> (Delivery, FakeHTTPServer) {
        let server = FakeHTTPServer(file: Array(file.utf8), script: script, clock: clock)
        let d = Downloader<FakeHTTPConnection>(clock: clock.clock, log: Log(), seed: 3) { server.connect($0) }
        let rc = RemoteConfig(loaded, downloader: d, log: Log())
        var out = Outbox(topics: Platform.topics, log: Log())
        Array(message.utf8).withUnsafeBytes { rc.handle($0, push: push, out: &out) }
        var next: LoadedConfig?
        pump(server, clock: clock, downloader: d) {
            next = rc.advance(out: &out)
            return next != nil || rc.download == nil
        }
        #expect(out.messages.allSatisfy { $0.topic == replyTopic && $0.waits }, "push replies wait for the link")
        #expect(!FileManager.default.fileExists(atPath: stateDir + "/remote.part"), "the download's file is gone")
        return (Delivery(next: next, out: out), server)
    }

    @Test func aPushIsDownloadedCheckedAppliedAndAnswered() throws {
        let fragment = "# from the console\ntelemetry_interval = 15\nsensor.uptime = system:uptime\n"
        let (r, server) = deliver(Self.push(fragment), serving: fragment, loaded: try loaded())
        #expect(server.requests.count == 1 && server.requests[0].hasPrefix("GET /a1PK/cfg-2.conf?Expires=1&Signature=y HTTP/1.1"))
        let next = try #require(r.next, "new settings for the device")
        #expect(next.device.telemetryInterval == 15)
        #expect(next.device.sensors.map(\.identifier) == ["uptime"])
        #expect(next.remoteConfigId == "cfg-2")
        #expect(r.replies.count == 1)
        #expect(r.replies.first?["code"] as? Int == 200 && r.replies.first?["id"] as? String == "123")
        #expect(r.replies.first?["message"] as? String == "success")
        #expect(dir.read("state/remote.conf") == fragment + "# configId = cfg-2\n", "kept for the next start")
        #expect(dir.mode("state/remote.conf") == 0o600)
        // What the next start reads: the key file with the kept fragment over it.
        let again = try #require(try? ConfigLoader.load(dir.file("device.key"), log: Log(), board: Board()).get())
        #expect(again.device.telemetryInterval == 15 && again.remoteConfigId == "cfg-2")
    }

    @Test func aFileWhoseSha256DiffersIsRefused() throws {
        let fragment = "telemetry_interval = 15\n"
        let (r, _) = deliver(Self.push(fragment, sha256: digestOf(Array("telemetry_interval = 16\n".utf8))), serving: fragment,
                             loaded: try loaded())
        #expect(r.next == nil, "the running settings stay")
        #expect(r.replies.first?["code"] as? Int == 460 && r.replies.first?["id"] as? String == "123")
        #expect((r.replies.first?["message"] as? String)?.contains("sha256 is " + hex(digestOf(Array(fragment.utf8)))) == true,
                "\(r.replies)")
        #expect(!dir.exists("state/remote.conf"))
    }

    /// A fragment may set how often and what to post, never the endpoint, the identity or
    /// a file outside /sys and /proc.
    @Test(arguments: ["endpoint = wss://evil.example:443/mqtt\n", "device_secret = other\n", "sensor.secret = file:/etc/shadow\n",
                      "state_dir = /tmp\n"])
    func aFragmentThatReachesPastTheKeyFileIsRefused(fragment: String) throws {
        let (r, _) = deliver(Self.push(fragment), serving: fragment, loaded: try loaded())
        #expect(r.next == nil)
        #expect(r.replies.first?["code"] as? Int == 460, "\(r.replies)")
        #expect((r.replies.first?["message"] as? String)?.hasPrefix("request parameter error: remote config line 1") == true, "\(r.replies)")
        #expect(!dir.exists("state/remote.conf"))
    }

    @Test func aPushOverAnUnauthenticatedLinkIsRefused() throws {
        let fragment = "telemetry_interval = 15\n"
        let (r, server) = deliver(Self.push(fragment), serving: fragment, loaded: try loaded(endpoint: "ws://broker.example:80/mqtt"))
        #expect(r.next == nil)
        #expect(r.replies.first?["code"] as? Int == 403 && r.replies.first?["id"] as? String == "123", "\(r.replies)")
        #expect(server.opened == 0, "nothing downloaded")
    }

    @Test func aDownloadThatFailsIsAnsweredWith400() throws {
        let fragment = "telemetry_interval = 15\n"
        let (r, _) = deliver(Self.push(fragment), serving: fragment, loaded: try loaded(), script: [.status(404)])
        #expect(r.next == nil)
        #expect(r.replies.first?["code"] as? Int == 400, "\(r.replies)")
        #expect((r.replies.first?["message"] as? String)?.contains("HTTP 404") == true, "\(r.replies)")
    }

    /// At connect the platform answers the get with the config in force: nothing to do.
    @Test func aGetReplyWithTheConfigInForceDownloadsNothing() throws {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        dir.write("state/remote.conf", "telemetry_interval = 30\n# configId = cfg-1\n")
        let l = try loaded()
        #expect(l.remoteConfigId == "cfg-1" && l.device.telemetryInterval == 30)
        let (r, server) = deliver(Self.getReply("telemetry_interval = 30\n", configId: "cfg-1"), push: false,
                                  serving: "telemetry_interval = 30\n", loaded: l)
        #expect(r.next == nil && r.out.messages.isEmpty, "a get reply is not answered")
        #expect(server.opened == 0)

        let (p, again) = deliver(Self.push("telemetry_interval = 30\n", configId: "cfg-1"), serving: "telemetry_interval = 30\n", loaded: l)
        #expect(p.next == nil && again.opened == 0)
        #expect(p.replies.first?["code"] as? Int == 200, "a push of the config in force is simply acknowledged")
    }

    /// A get reply with another config is applied like a push, without a reply.
    @Test func aGetReplyWithANewConfigIsAppliedSilently() throws {
        let fragment = "telemetry_interval = 20\n"
        let (r, server) = deliver(Self.getReply(fragment, configId: "cfg-3"), push: false, serving: fragment, loaded: try loaded())
        #expect(server.opened == 1)
        #expect(r.next?.device.telemetryInterval == 20 && r.next?.remoteConfigId == "cfg-3")
        #expect(r.out.messages.isEmpty)
    }

    /// The link drops during the download; at the next CONNACK the get reply names the same
    /// config again: one download goes on to the end, and none is left in the downloader
    /// (a transfer nobody advances holds a slot, and its past deadline would wake the
    /// device's loop at once, forever).
    @Test func aSecondOfferDuringTheDownloadLeavesNoTransferBehind() throws {
        let fragment = "telemetry_interval = 15\n# " + String(repeating: "padding ", count: 200) + "\n"
        let server = FakeHTTPServer(file: Array(fragment.utf8), clock: clock)
        server.bytesPerTurn = 200
        let d = Downloader<FakeHTTPConnection>(clock: clock.clock, log: Log(), seed: 3) { server.connect($0) }
        let rc = RemoteConfig(try loaded(), downloader: d, log: Log())
        var out = Outbox(topics: Platform.topics, log: Log())
        Array(Self.push(fragment).utf8).withUnsafeBytes { rc.handle($0, push: true, out: &out) }
        for _ in 0..<3 {
            server.tick()
            #expect(rc.advance(out: &out) == nil)
            clock.advance(1)
        }
        Array(Self.getReply(fragment, configId: "cfg-2").utf8).withUnsafeBytes { rc.handle($0, push: false, out: &out) }
        var next: LoadedConfig?
        pump(server, clock: clock, downloader: d) {
            next = rc.advance(out: &out)
            return next != nil || rc.download == nil
        }
        #expect(next?.remoteConfigId == "cfg-2")
        #expect(d.isIdle, "a transfer was left in the downloader")
        #expect(d.deadline == UInt64.max)
    }
}
