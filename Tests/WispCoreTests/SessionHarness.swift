import TestSupport
import Testing
@testable import WispCore

/// Drives a Session on a simulated clock and plays the broker's side in bytes.
struct Harness {
    var session: Session
    var now: UInt64 = 1_000_000
    var written: [UInt8] = []      // everything the session wrote since the last take
    var events: [SessionEvent] = []
    var closes: [DisconnectReason] = []
    var opens = 0
    var transportUp = false
    let key = WebSocketKey.rfcExample
    let connect = MQTTEncoder.Connect(clientId: "c1", username: "device&pk", password: "pw", keepAlive: 60)
    var autoOpen = true
    /// The socket takes nothing while true (a peer that stopped reading).
    var blocked = false

    init(keepAlive: UInt16 = 60, webSocket: Bool = true, subscriptions: [MQTTEncoder.Subscription] = [], configure: (inout SessionConfig) -> Void = { _ in }) {
        var config = SessionConfig(keepAlive: keepAlive, webSocket: webSocket ? .init(hostHeader: "broker", path: "/mqtt") : nil)
        config.subscriptions = subscriptions
        configure(&config)
        session = Session(config: config, now: 1_000_000, random: counterRandom())
    }

    /// Polls until the session waits; opens the transport when asked and writes all output.
    @discardableResult
    mutating func run() -> SessionAction {
        while true {
            let action = session.poll(now: now)
            switch action {
            case .openTransport:
                opens += 1
                if autoOpen {
                    transportUp = true
                    session.transportOpened(now: now, connect: connect, webSocketKey: key)
                }
            case .closeTransport(let reason):
                flush()
                transportUp = false
                closes.append(reason)
            case .event(let e):
                events.append(e)
            case .wait, .stopped:
                if !session.output.isEmpty && transportUp && !blocked {
                    flush()  // as the loop does: write, then poll again
                    continue
                }
                flush()
                return action
            }
            flush()
        }
    }

    mutating func flush() {
        let out = session.output.bytes
        if !out.isEmpty && !(blocked && transportUp) {
            if transportUp { written += out }
            session.didWrite(out.count, now: now)
        }
    }

    mutating func deliver(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = session.receive(now: now) { buffer in
                let n = min(buffer.count, bytes.count - offset)
                for i in 0..<n { buffer[i] = bytes[offset + i] }
                return n
            }
            offset += n
            run()
        }
        run()
    }

    mutating func advance(to time: UInt64) {
        now = time
        run()
    }

    /// The link drops; after the backoff the session connects again and is accepted: the
    /// MQTT packets it sent on the new link.
    mutating func reconnect() -> [[UInt8]] {
        session.transportFailed(now: now, .transportClosed)
        transportUp = false
        written = []
        advance(to: now + 120_000)
        upgrade(then: serverFrame(connackOK))
        return takePackets()
    }

    /// Runs the session until it is online: the upgrade answered, the CONNACK accepted.
    mutating func goOnline() {
        run()
        upgrade(then: serverFrame(connackOK))
        #expect(session.isOnline)
    }

    /// The broker's side of the upgrade: answer the request in `written`.
    mutating func upgrade(then more: [UInt8] = []) {
        let request = String(decoding: written, as: UTF8.self)
        #expect(request.hasPrefix("GET /mqtt HTTP/1.1\r\nHost: broker\r\n"))
        written = []
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        deliver(Array(response.utf8) + more)
    }

    /// MQTT packets the client sent since the last take (frames unmasked and checked); a
    /// control frame comes out as 0xFF, its first byte and its payload, where it was sent.
    mutating func takePackets(webSocket: Bool = true) -> [[UInt8]] {
        defer { written = [] }
        guard webSocket else { return MQTTStream.packets(written) }
        var packets: [[UInt8]] = []
        var stream: [UInt8] = []
        var i = 0
        while i < written.count {
            let b0 = written[i], b1 = written[i + 1]
            #expect(b1 & 0x80 != 0, "client frames are masked")
            var len = Int(b1 & 0x7F)
            i += 2
            if len == 126 { len = Int(written[i]) << 8 | Int(written[i + 1]); i += 2 } else if len == 127 {
                len = 0
                for _ in 0..<8 { len = len << 8 | Int(written[i]); i += 1 }
            }
            let mask = Array(written[i..<(i + 4)])
            i += 4
            let payload = (0..<len).map { written[i + $0] ^ mask[$0 % 4] }
            i += len
            if b0 & 0x0F == 0x2 || b0 & 0x0F == 0x0 {
                stream += payload
            } else {
                packets += MQTTStream.packets(stream)
                stream = []
                packets.append([0xFF, b0] + payload)
            }
        }
        return packets + MQTTStream.packets(stream)
    }
}

/// A server frame (unmasked, binary) around MQTT bytes.
func serverFrame(_ payload: [UInt8], opcode: UInt8 = 0x82) -> [UInt8] {
    precondition(payload.count < 126)
    return [opcode, UInt8(payload.count)] + payload
}

let connackOK = hex("20 02 00 00")
let pingresp = hex("d0 00")
