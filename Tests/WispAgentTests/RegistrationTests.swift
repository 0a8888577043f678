import Foundation
import Testing
@testable import WispAgent
import WispCore

/// Dynamic registration over the fake transport: the test plays the platform, whose
/// answer (CONNACK, then the secret on /ext/register) is waiting when the board connects.
@Suite("Dynamic registration")
struct RegistrationTests {
    let dir = TemporaryDirectory("register")
    let clock = SimulatedClock()
    static let productSecret = "pr0duct-s3cret"

    /// The platform's side: each connection gets the next scripted bytes.
    final class FakePlatform {
        var script: [[UInt8]]
        var openScript: [OpenStep] = [.open]
        var made: [FakeTransport] = []
        let log = FakeLog()

        init(_ script: [[UInt8]]) { self.script = script }

        func connect() -> FakeTransport {
            let t = FakeTransport(openScript: openScript, log: log)
            t.inbound = script.isEmpty ? [] : script.removeFirst()
            made.append(t)
            return t
        }
    }

    var stateDir: String { dir.file("state") }

    func loaded(_ secret: (String, String) = ("product_secret", productSecret)) throws -> LoadedConfig {
        let lines = [("endpoint", "mqtts://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:8883"), ("product_key", "a1PK"),
                     ("device_name", "board-7"), secret, ("client_id", "board-7"), ("state_dir", stateDir),
                     ("ca_file", "/etc/ssl/certs/ca-certificates.crt")]
        dir.write("device.key", lines.map { $0.0 + " = " + $0.1 + "\n" }.joined())
        switch ConfigLoader.load(dir.file("device.key"), log: Log(), board: Board()) {
        case .success(let l): return l
        case .failure(let e):
            Issue.record(Comment(rawValue: e.message))
            throw e
        }
    }

    func register(_ loaded: LoadedConfig, _ platform: FakePlatform) -> Registration.Outcome {
        Registration.run(loaded, signals: -1, persistent: false, log: Log()) { config, connect in
            Driver(session: Session(config: config, now: clock.now, random: Entropy.fill), signals: -1, clock: clock.clock,
                   transport: { platform.connect() }, connect: connect, webSocketKey: { .rfcExample })
        }
    }

    /// Client id, user name and password of a CONNECT packet.
    func signIn(_ packet: [UInt8]) -> (clientId: String, username: String?, password: String?) {
        var i = 1
        while packet[i] & 0x80 != 0 { i += 1 }
        i += 1 + 6 + 1  // remaining length; "MQTT"; level
        let flags = packet[i]
        i += 1 + 2  // flags; keep-alive
        func field() -> String {
            let n = Int(packet[i]) << 8 | Int(packet[i + 1])
            defer { i += 2 + n }
            return String(decoding: packet[(i + 2)..<(i + 2 + n)], as: UTF8.self)
        }
        let clientId = field()
        if flags & 0x04 != 0 { _ = field(); _ = field() }  // a will
        let username = flags & 0x80 != 0 ? field() : nil
        let password = flags & 0x40 != 0 ? field() : nil
        return (clientId, username, password)
    }

    /// HMAC-SHA256 from plain SHA-256 (RFC 2104), hex: the platform's check, made apart from wisp's.
    func hmacSHA256(key: String, _ message: String) -> String {
        var k = Array(key.utf8)
        if k.count > 64 { k = digestOf(k) }
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = digestOf(k.map { $0 ^ 0x36 } + Array(message.utf8))
        return hex(digestOf(k.map { $0 ^ 0x5C } + inner))
    }

    @Test func theSecretFromExtRegisterIsKeptAndUsed() throws {
        let reply = #"{"productKey":"a1PK","deviceName":"board-7","deviceSecret":"gr4nted-s3cret"}"#
        let platform = FakePlatform([connack() + mqttPublish("/ext/register", reply)])
        let outcome = register(try loaded(), platform)

        guard case .registered(let next) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        guard case .platform(let pk, let dn, let secret, _, _) = next.device.identity else {
            Issue.record("not a platform identity: \(next.device.identity)")
            return
        }
        #expect((pk, dn, secret) == ("a1PK", "board-7", "gr4nted-s3cret"), "the key file loaded again, the secret in force")
        #expect(next.registeredFrom == stateDir + "/identity")
        let identity = try #require(dir.record("state/identity"))
        #expect(identity == ["product_key": "a1PK", "device_name": "board-7", "device_secret": "gr4nted-s3cret"])
        #expect(dir.mode("state/identity") == 0o600, "the secret is readable by wisp alone")

        // The sign-in: authType=register, signed with the product secret over a fresh random.
        let packets = try #require(platform.made.first).takePackets()
        #expect(packets.map { $0[0] } == [0x10, 0xE0], "CONNECT, no SUBSCRIBE, then a clean DISCONNECT")
        let c = signIn(try #require(packets.first))
        #expect(c.clientId.hasPrefix("board-7|securemode=2,authType=register,random=") && c.clientId.hasSuffix(",signmethod=hmacsha256|"),
                "\(c.clientId)")
        let random = try #require(c.clientId.split(separator: ",").first { $0.hasPrefix("random=") }?.dropFirst(7))
        #expect(random.count >= 16, "a fresh random from the CSPRNG")
        #expect(c.username == "board-7&a1PK")
        #expect(c.password == hmacSHA256(key: Self.productSecret, "deviceNameboard-7productKeya1PKrandom" + random))
    }

    @Test(arguments: [UInt8(4), 5])
    func aRefusedSignInIsRefusedWithTheRemedy(code: UInt8) throws {
        let platform = FakePlatform([connack(code)])
        let outcome = register(try loaded(), platform)
        guard case .refused(let why) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(why.contains("refused the registration of a1PK/board-7") && why.contains("dynamic registration"), "\(why)")
        #expect(platform.made.count == 1, "one attempt when not persistent")
        #expect(!dir.exists("state/identity"))
    }

    @Test(arguments: [
        (#"{"productKey":"a1PK","deviceName":"board-7"}"#, "deviceSecret"),
        (#"{"productKey":"a1PK","deviceName":"board-8","deviceSecret":"x"}"#, "another device"),
        ("not json", "not usable"),
    ])
    func aMalformedReplyFails(reply: String, words: String) throws {
        let platform = FakePlatform([connack() + mqttPublish("/ext/register", reply)])
        let outcome = register(try loaded(), platform)
        guard case .failed(let why) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(why.contains("not usable") && why.contains(words), "\(why)")
        #expect(!dir.exists("state/identity"))
    }

    @Test func anUnreachablePlatformIsUnreachable() throws {
        let platform = FakePlatform([])
        platform.openScript = [.failed("connection refused")]
        let outcome = register(try loaded(), platform)
        guard case .unreachable = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(!dir.exists("state/identity"))
    }

    @Test func aDeviceWithItsSecretDoesNotRegister() throws {
        let platform = FakePlatform([])
        let outcome = register(try loaded(("device_secret", "s3cr3t")), platform)
        guard case .registered = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(platform.made.isEmpty, "no connection")
    }
}
