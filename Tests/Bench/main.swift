// wisp-bench: measurements for Tests/harness/bench (not the shipped CLI).
//   wisp-bench cycles KEYFILE N        the agent's loop, N telemetry cycles back to back
//   wisp-bench codec N                 encode + frame + mask + decode of a 256-byte PUBLISH, N times
//   wisp-bench burst PORT N QOS        N PUBLISHes of 64 bytes over ws://127.0.0.1:PORT/mqtt
import CWispPlatform
import WispAgent
import WispCore

@main
struct Bench {
    static func main() {
        let a = System.arguments
        var code = ExitCode.usage
        if a.count == 3 && a[0].equals("cycles"), let n = Int(a[2]) {
            code = cycles(configPath: a[1], count: n)
        } else if a.count == 2 && a[0].equals("codec"), let n = Int(a[1]) {
            code = codec(n)
        } else if a.count == 4 && a[0].equals("burst"), let port = UInt16(a[1]), let n = Int(a[2]), let q = Int(a[3]) {
            code = burst(port: port, count: n, qos: q == 1 ? .atLeastOnce : .atMostOnce)
        } else {
            System.write("usage: wisp-bench cycles KEYFILE N | codec N | burst PORT N QOS\n", to: 2)
        }
        System.exit(code)
    }

    /// The codec alone: what a 256-byte publish costs on the way out and on the way in.
    static func codec(_ n: Int) -> ExitCode {
        let payload = [UInt8](repeating: 0x41, count: 256)
        var packet = ByteBuffer(capacity: 512)
        var out = ByteBuffer(capacity: 600)
        var decoder = MQTTDecoder(capacity: 512)
        var frames = WebSocketFrameDecoder()
        let inbound = InputBuffer(capacity: 600)
        var random = SplitMix64(seed: 1)
        var checksum = 0
        for i in 0..<n {
            packet.removeAll()
            out.removeAll()
            try? MQTTEncoder.encodePublish(topic: "/sys/pk/dn/thing/event/property/post", payload: payload, qos: .atLeastOnce,
                                           packetId: UInt16(i % 65_000 + 1), into: &packet)
            try? WebSocketFrameEncoder.encode(opcode: .binary, payload: packet.bytesView(0..<packet.count),
                                              mask: UInt32(truncatingIfNeeded: random.next()), into: &out)
            // The same packet as a server sends it (unmasked), decoded.
            inbound.removeAll()
            _ = inbound.append { raw in
                raw[0] = 0x82
                raw[1] = 126
                raw[2] = UInt8(packet.count >> 8)
                raw[3] = UInt8(packet.count & 0xFF)
                for k in 0..<packet.count { raw[4 + k] = packet[k] }
                return 4 + packet.count
            }
            var pos = 0
            while let e = try? frames.next(inbound.bytes, at: &pos) {
                if case .data(let r) = e {
                    var p = r.lowerBound
                    let slice = UnsafeRawBufferPointer(rebasing: inbound.bytes[0..<r.upperBound])
                    if case .publish(let pub)? = try? decoder.decode(slice, at: &p) { checksum &+= pub.payload.count }
                }
            }
        }
        System.out("codec: \(n) round trips, \(checksum / max(n, 1)) payload bytes each")
        return .ok
    }

    /// The device's own code (thing model, backlog, driver), with a new telemetry cycle as
    /// soon as the previous post is acknowledged, `count` times, then a clean DISCONNECT.
    static func cycles(configPath: String, count: Int) -> ExitCode {
        guard case .success(let loaded) = ConfigLoader.load(configPath, log: .standard(), board: .fromEnvironment) else { return .configuration }
        var device = Device(loaded, backlog: nil, signals: -1, log: .standard(), downloads: { SocketTransport(for: loaded.device, to: $0) },
                            driver: Agent.driver(loaded, config: Agent.sessionConfig(loaded), signals: -1))
        var left = count
        while true {
            let event = device.driver.next(until: UInt64.max)
            device.handle(event)
            switch event {
            case .session(.online):
                device.sample()
            case .session(.delivered) where device.backlog.ring.count == 0:
                left -= 1
                if left > 0 { device.sample() } else { device.driver.session.stop(now: System.monotonicMillis) }
            case .stopped:
                return .ok
            case .pollFailed, .openFailed:
                return .failure
            default:
                break
            }
        }
    }

    /// A burst of publishes through the driver, as fast as the window and socket allow.
    static func burst(port: UInt16, count: Int, qos: QoS) -> ExitCode {
        let endpoint = Endpoint(scheme: .ws, host: "127.0.0.1", port: port)
        var config = SessionConfig(keepAlive: 60, webSocket: .init(hostHeader: endpoint.hostHeader, path: endpoint.path))
        // The window is the embedder's choice, fixed at start-up (64 × one 64-byte PUBLISH
        // here; the agent keeps 4 posts of its own size). Paho's peer opens its to 65,535.
        config.inflightWindow = 64
        var driver = Driver(
            session: Session(config: config, now: System.monotonicMillis, random: Entropy.fill), signals: -1,
            transport: { SocketTransport(endpoint: endpoint, proxy: nil, caFile: nil, insecure: false, stageTimeout: 5000) },
            connect: { MQTTEncoder.Connect(clientId: "wisp-bench", keepAlive: 60) },
            webSocketKey: Entropy.webSocketKey)
        let payload = [UInt8](repeating: 0x42, count: 64)
        var sent = 0, acked = 0
        var stopping = false
        while true {
            let before = sent
            var full = !driver.session.isOnline
            while !full && sent < count {
                do {
                    _ = try driver.session.publish(topic: "bench/wisp", payload: payload, qos: qos)
                    sent += 1
                } catch { full = true }  // the window or the output buffer: wait for the socket
            }
            let now = System.monotonicMillis
            if !stopping && sent == count && (qos == .atMostOnce || acked == count) && driver.session.isOnline {
                stopping = true
                driver.session.stop(now: now)
            }
            // After a round that queued something, only write and read what is ready (no
            // poll): the socket usually takes it all and the next round goes on. Only when
            // nothing could be queued, wait in poll for the socket or a PUBACK (1 ms at most).
            switch driver.next(until: sent > before ? now : now + 1) {
            case .session(.delivered): acked += 1
            case .stopped, .closed:
                System.out("burst: \(sent) sent, \(acked) acknowledged")
                return sent == count ? .ok : .failure
            case .openFailed(let message):
                System.write("wisp-bench: " + message + "\n", to: 2)
                return .unreachable
            case .pollFailed: return .failure
            default: break
            }
        }
    }
}
