import CWispPlatform
import Foundation
import TestSupport
import Testing
@testable import WispAgent
import WispCore

// What the feature tests share: a simulated clock, a temporary state_dir, key files, a
// session brought online over the fake transport, and readers for what went out.

/// Time the test moves by hand: `clock` is what the feature under test reads.
final class SimulatedClock {
    var now: UInt64 = 1_000_000
    /// Wall-clock milliseconds at `now` = 0.
    var epoch: UInt64 = 1_700_000_000_000

    var clock: Clock { Clock(monotonic: { self.now }, realtime: { self.epoch + self.now }) }

    func advance(_ ms: UInt64) { now += ms }
}

/// A fresh directory, removed with everything in it when the value goes away.
final class TemporaryDirectory {
    let path: String

    init(_ name: String) {
        path = NSTemporaryDirectory() + "wisp-feature-" + name + "-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

    func read(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }

    func bytes(_ name: String) -> [UInt8]? { FileManager.default.contents(atPath: file(name)).map { Array($0) } }

    func write(_ name: String, _ text: String, mode: Int = 0o600) {
        FileManager.default.createFile(atPath: file(name), contents: Data(text.utf8), attributes: [.posixPermissions: mode])
    }

    /// `key = value` records as OTAFiles writes them (state_dir/ota/…).
    func record(_ name: String) -> [String: String]? {
        guard let text = read(name) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        return fields
    }

    func mode(_ name: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: file(name)))?[.posixPermissions] as? Int
    }
}

/// The platform identity the feature tests use.
enum Platform {
    static let productKey = "a1PK"
    static let deviceName = "board-7"
    static var topics: AlinkTopics { AlinkTopics(productKey: productKey, deviceName: deviceName) }

    /// Key-file lines of a platform device over `endpoint` with its state in `stateDir`.
    static func keyFile(endpoint: String = "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt", stateDir: String,
                        _ extra: [(String, String)] = []) -> String {
        var lines = [("endpoint", endpoint), ("product_key", productKey), ("device_name", deviceName),
                     ("device_secret", "s3cr3t"), ("client_id", "board-7"), ("state_dir", stateDir),
                     ("ca_file", "/etc/ssl/certs/ca-certificates.crt")]
        lines += extra
        return lines.map { $0.0 + " = " + $0.1 + "\n" }.joined()
    }

    /// The parsed settings of such a key file.
    static func device(endpoint: String = "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt", stateDir: String,
                       _ extra: [(String, String)] = []) -> DeviceConfig {
        try! KeyFile.parse(keyFile(endpoint: endpoint, stateDir: stateDir, extra))
    }
}

/// A message the agent published, as it went out.
struct Published {
    var topic: String
    var qos: UInt8
    var packetId: UInt16
    var payload: [UInt8]

    var text: String { String(decoding: payload, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] ?? [:] }

    /// A PUBLISH packet (plain MQTT framing), or nil for any other packet.
    init?(packet p: [UInt8]) {
        guard p.first.map({ $0 >> 4 }) == 3 else { return nil }
        var i = 1
        while p[i] & 0x80 != 0 { i += 1 }
        i += 1
        let topicLength = Int(p[i]) << 8 | Int(p[i + 1])
        topic = String(decoding: p[(i + 2)..<(i + 2 + topicLength)], as: UTF8.self)
        i += 2 + topicLength
        qos = (p[0] >> 1) & 3
        packetId = 0
        if qos > 0 {
            packetId = UInt16(p[i]) << 8 | UInt16(p[i + 1])
            i += 2
        }
        payload = Array(p[i...])
    }
}

/// What an outbox message holds, as JSON.
func decoded(_ out: Outbox, _ m: Outbox.Message) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(out.payload(m)))) as? [String: Any] ?? [:]
}

/// The `params` of an OTA progress report.
func progress(_ out: Outbox, _ m: Outbox.Message) -> (step: Int, desc: String) {
    let params = decoded(out, m)["params"] as? [String: Any] ?? [:]
    return (Int(params["step"] as? String ?? "") ?? Int.min, params["desc"] as? String ?? "")
}


/// A QoS 0 PUBLISH from the broker.
func mqttPublish(_ topic: String, _ payload: String) -> [UInt8] {
    let t = Array(topic.utf8)
    return mqttPacket(0x30, [UInt8(t.count >> 8), UInt8(t.count & 0xFF)] + t + Array(payload.utf8))
}

func connack(_ code: UInt8 = 0) -> [UInt8] { [0x20, 0x02, 0x00, code] }

/// A session over the fake transport on a simulated clock, brought online by `online()`:
/// the test reads what the agent published with `published()`.
struct FakeLink {
    var driver: Driver<FakeTransport>
    let log = FakeLog()

    init(clock: SimulatedClock) {
        var config = SessionConfig(keepAlive: 60, webSocket: nil)
        config.maxOutboundPacket = 1024
        let log = self.log
        driver = Driver(session: Session(config: config, now: clock.now, random: Entropy.fill), signals: -1, clock: clock.clock,
                        transport: { FakeTransport(openScript: [.open], log: log) },
                        connect: { MQTTEncoder.Connect(clientId: "board-7", keepAlive: 60) },
                        webSocketKey: { .rfcExample })
    }

    /// Steps the driver without sleeping (`until: 0`) until `match` or `limit` steps.
    @discardableResult
    mutating func step(limit: Int = 20, until match: (Driver<FakeTransport>.Event) -> Bool = { _ in false }) -> [Driver<FakeTransport>.Event] {
        var seen: [Driver<FakeTransport>.Event] = []
        for _ in 0..<limit {
            let e = driver.next(until: 0)
            if case .deadline = e { break }
            seen.append(e)
            if match(e) { break }
        }
        return seen
    }

    /// Opens the transport and answers CONNECT with an accepting CONNACK.
    mutating func online() {
        step { if case .opened = $0 { return true }; return false }
        step()
        _ = log.current?.takePackets()  // the CONNECT
        log.current?.inbound = connack()
        let events = step { if case .session(.online) = $0 { return true }; return false }
        #expect(driver.session.isOnline, "the fake broker's CONNACK: \(events)")
    }

    /// The PUBLISHes written since the last call.
    mutating func published() -> [Published] {
        step()
        return (log.current?.takePackets() ?? []).compactMap { Published(packet: $0) }
    }

    /// The broker acknowledges QoS 1 message `id`.
    mutating func acknowledge(_ id: UInt16) {
        log.current?.inbound += [0x40, 0x02, UInt8(id >> 8), UInt8(id & 0xFF)]
        step()
    }
}

/// SHA-256 (or MD5) through the C layer, for the digests an offer announces.
func digestOf(_ bytes: [UInt8], _ method: DigestMethod = .sha256) -> [UInt8] {
    let d = wisp_digest_new(method == .md5 ? WISP_HMAC_MD5 : WISP_HMAC_SHA256)
    _ = bytes.withUnsafeBufferPointer { wisp_digest_update(d, $0.baseAddress, $0.count) }
    var out = [UInt8](repeating: 0, count: 32)
    let n = wisp_digest_finish(d, &out, out.count)
    return Array(out[0..<Int(n)])
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Bytes the test serves as a file.
func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}
