import CWispPlatform
import Foundation
import TestSupport
import Testing
@testable import WispAgent
@testable import WispCore

/// The device side of the secure tunnel against fakes: the test plays the tunnel's endpoint
/// (server WebSocket frames in, the device's masked frames read back) and the board's
/// loopback service.
@Suite final class RemoteAccessTests {
    /// What the feature made; weakly, so that a closed connection goes away (FakeLog.closed).
    final class Made {
        final class Weak { weak var t: FakeTransport?; init(_ t: FakeTransport) { self.t = t } }
        var tunnels: [Weak] = []
        var locals: [Weak] = []
        var ports: [UInt16] = []
        var tunnelScript: [OpenStep] = [.open]
        var localScript: [OpenStep] = [.open]
    }

    let made = Made()
    let fakes = FakeLog()
    var now: UInt64 = 1_000_000
    var out = Outbox(topics: Platform.topics, log: Log(threshold: .error))
    let access: RemoteAccess<FakeTransport>

    init() {
        let made = self.made, fakes = self.fakes
        access = RemoteAccess(board: try! BoardSettings.parse("remote_access = true\ntunnel_service.WEB = 127.0.0.1:8080\ntunnel_hosts = 127.0.0.1 .example.net\n").get(), log: Log(threshold: .error),
                              connect: { _ in
                                  let t = FakeTransport(openScript: made.tunnelScript, log: fakes)
                                  made.tunnels.append(.init(t))
                                  return t
                              },
                              loopback: { port in
                                  let t = FakeTransport(openScript: made.localScript, log: fakes)
                                  made.ports.append(port)
                                  made.locals.append(.init(t))
                                  return t
                              })
    }

    // MARK: the endpoint's side

    static func notify(_ token: String = "tok-1", operation: String = "connect", id: String = "T1") -> [UInt8] {
        Array(#"{"operation":"\#(operation)","tunnel_id":"\#(id)","host":"127.0.0.1","port":4443,"path":"/tunnel/\#(id)","token":"\#(token)","token_expire":3600}"#.utf8)
    }

    /// An unmasked server frame.
    static func serverFrame(_ payload: [UInt8], opcode: UInt8 = 2) -> [UInt8] {
        var f: [UInt8] = [0x80 | opcode]
        if payload.count < 126 { f.append(UInt8(payload.count)) } else { f += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
        return f + payload
    }

    static func tunnelFrame(_ type: Int, id: Int, session: String, service: String? = nil, payload: [UInt8] = []) -> [UInt8] {
        let header = Array((#"{"frame_type":\#(type),"frame_id":\#(id),"session_id":"\#(session)""# + (service.map { #","service_type":"\#($0)""# } ?? "") + "}").utf8)
        return [UInt8(header.count >> 8), UInt8(header.count & 0xFF)] + header + payload
    }

    /// The device's WebSocket messages (masked client frames), each as opcode and payload.
    static func clientFrames(_ bytes: [UInt8]) -> [(opcode: UInt8, payload: [UInt8])] {
        var frames: [(UInt8, [UInt8])] = []
        var i = 0
        while i + 6 <= bytes.count {
            let opcode = bytes[i] & 0x0F
            var length = Int(bytes[i + 1] & 0x7F)
            i += 2
            if length == 126 { length = Int(bytes[i]) << 8 | Int(bytes[i + 1]); i += 2 }
            let key = Array(bytes[i..<(i + 4)])
            i += 4
            frames.append((opcode, (0..<length).map { bytes[i + $0] ^ key[$0 & 3] }))
            i += length
        }
        return frames
    }

    /// A tunnel frame's header fields and payload.
    static func parsed(_ message: [UInt8]) -> (header: [String: Any], payload: [UInt8]) {
        let n = Int(message[0]) << 8 | Int(message[1])
        let header = (try? JSONSerialization.jsonObject(with: Data(message[2..<(2 + n)]))) as? [String: Any] ?? [:]
        return (header, Array(message[(2 + n)...]))
    }

    var tunnel: FakeTransport { made.tunnels.last!.t! }

    func local(_ i: Int) -> FakeTransport { made.locals[i].t! }

    func handle(_ bytes: [UInt8], reply: Bool = false) { bytes.withUnsafeBytes { access.handle($0, reply: reply, now: now) } }

    /// The device's tunnel frames since the last call.
    func sentFrames() -> [(header: [String: Any], payload: [UInt8])] {
        defer { tunnel.sent = [] }
        return Self.clientFrames(tunnel.sent).filter { $0.opcode == 2 }.map { Self.parsed($0.payload) }
    }

    func advance(_ ms: UInt64 = 0) {
        now += ms
        access.advance(now: now, online: true, out: &out)
    }

    /// Notify, connect, upgrade: the tunnel is open.
    func open() throws {
        handle(Self.notify())
        advance()
        let request = String(decoding: tunnel.sent, as: UTF8.self)
        tunnel.sent = []
        let key = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") }).dropFirst(19)
        tunnel.inbound += Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
                                 + Crypto.webSocketAccept(forKey: String(key)) + "\r\nSec-WebSocket-Protocol: aliyun.iot.securetunnel-v1.1\r\n\r\n").utf8)
        advance()
        #expect(access.link.phase == .open)
    }

    /// A session the console opened, answered code 0.
    func session(_ sid: String, service: String = "_SSH", id: Int = 1) -> [String: Any]? {
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(2, id: id, session: sid, service: service))
        advance()
        guard let answer = sentFrames().first(where: { $0.header["session_id"] as? String == sid }) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(answer.payload))) as? [String: Any]
    }

    // MARK: tests

    @Test func theUpgradeCarriesTheTokenAndTheSubprotocol() throws {
        handle(Self.notify("s3cr3t-token"))
        advance()
        let request = String(decoding: tunnel.sent, as: UTF8.self)
        #expect(request.hasPrefix("GET /tunnel/T1 HTTP/1.1\r\nHost: 127.0.0.1:4443\r\n"))
        #expect(request.contains("\r\nSec-WebSocket-Protocol: aliyun.iot.securetunnel-v1.1\r\n"))
        #expect(request.contains("\r\ntunnel-access-token: s3cr3t-token\r\n"))
    }

    @Test func aSessionCarriesBytesBothWaysAndEnds() throws {
        try open()
        let answer = session("s1")
        #expect(answer?["code"] as? Int == 0)
        #expect(made.ports == [22], "_SSH is 127.0.0.1:22")
        let local = local(0)
        local.inbound = Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)
        advance()
        let up = sentFrames()
        #expect(up.count == 1 && up[0].header["frame_type"] as? Int == 4 && up[0].header["session_id"] as? String == "s1")
        #expect(up.first?.payload == Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
        #expect(up.first?.header["frame_id"] as? Int == 1, "the device's own frames count from 1")
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 2, session: "s1", payload: Array("hello".utf8)))
        advance()
        #expect(local.sent == Array("hello".utf8))
        local.endOfStream = true
        advance()
        let release = sentFrames()
        #expect(release.first?.header["frame_type"] as? Int == 3)
        #expect(release.first?.header["frame_id"] as? Int == 2)
        #expect(access.sessions.allSatisfy { $0.isFree && $0.local == nil }, "the local socket is let go (closed)")
    }

    @Test func theConsolesReleaseClosesTheServiceAndIsAnswered() throws {
        try open()
        _ = session("s1")
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(3, id: 5, session: "s1"))
        advance()
        let answer = sentFrames()
        #expect(answer.first?.header["frame_type"] as? Int == 1 && answer.first?.header["frame_id"] as? Int == 5)
        #expect(access.sessions.allSatisfy { $0.isFree } && fakes.closed == 1)
    }

    /// What the console sent before releasing the session still reaches the service.
    @Test func aReleaseLetsTheLastBytesThrough() throws {
        try open()
        _ = session("s1")
        let service = local(0)
        service.accepting = false
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 2, session: "s1", payload: Array("the end of a file".utf8)))
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(3, id: 3, session: "s1"))
        advance()
        #expect(!access.sessions[0].isFree, "draining")
        #expect(sentFrames().contains { $0.header["frame_type"] as? Int == 1 && $0.header["frame_id"] as? Int == 3 }, "the release is answered at once")
        service.accepting = true
        advance()
        #expect(service.sent == Array("the end of a file".utf8))
        #expect(access.sessions.allSatisfy { $0.isFree })
    }

    @Test func sessionsAreRefusedWithACodeAndWhy() throws {
        try open()
        #expect(session("v", service: "VNC")?["code"] as? Int == 1, "not declared")
        #expect(session("w", service: "WEB")?["code"] as? Int == 0, "declared")
        #expect(made.ports == [8080])
        for i in 0..<3 { #expect(session("s\(i)", id: 10 + i)?["code"] as? Int == 0) }
        let full = session("s9", id: 20)
        #expect(full?["code"] as? Int == 2 && (full?["msg"] as? String ?? "").contains("all 4 sessions"))
        made.localScript = [.failed("connection refused")]
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(3, id: 21, session: "s0"))
        advance()
        _ = sentFrames()
        let refused = session("s5", id: 22)
        #expect(refused?["code"] as? Int == 3 && (refused?["msg"] as? String ?? "").contains("connection refused"))
    }

    /// A service that does not read: one frame waits in its buffer, one more in the reader,
    /// and the rest stays in the connection (nothing grows); once it reads, every byte
    /// arrives in order.
    @Test func aSlowServiceStopsTheTunnelNotMemory() throws {
        try open()
        _ = session("s1")
        let local = local(0)
        local.accepting = false
        var sent: [UInt8] = []
        for i in 0..<6 {
            let chunk = [UInt8](repeating: UInt8(i), count: 4000)
            sent += chunk
            tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 10 + i, session: "s1", payload: chunk))
        }
        for _ in 0..<5 { advance() }
        #expect(local.sent.isEmpty)
        #expect(tunnel.inbound.count > 8000, "left in the connection: \(tunnel.inbound.count)")
        local.accepting = true
        for _ in 0..<20 { advance() }
        #expect(local.sent == sent)
    }

    @Test func anExpiredTokenIsAskedForAgainNotRetried() throws {
        try open()
        _ = session("s1")
        tunnel.inbound += Self.serverFrame([0x0F, 0xA1], opcode: 8)  // close, status 4001
        advance()
        #expect(access.isClosed && access.tokenExpired)
        #expect(access.sessions.allSatisfy { $0.isFree })
        #expect(!out.messages.contains { $0.topic == Platform.topics.tunnelRequest! }, "not at once: after the pause")
        advance(1000)
        #expect(out.messages.contains { $0.topic == Platform.topics.tunnelRequest! }, "asked again")
        let asks = { self.out.messages.filter { $0.topic == Platform.topics.tunnelRequest! }.count }
        #expect(asks() == 1)
        #expect(access.deadline == now + 30_000, "asked again in 30 s if no answer comes (QoS 0)")
        let connections = made.tunnels.count
        advance(30_000)
        #expect(asks() == 2, "a lost reply is asked for again")
        advance(120_000)
        #expect(made.tunnels.count == connections, "not retried with the old token")
        access.askDue = true
        access.advance(now: now, online: false, out: &out)
        #expect(access.deadline == UInt64.max, "offline: no deadline to spin on; the next CONNACK asks")
        handle(Array(#"{"id":"3","code":200,"data":{"tunnel_id":"T1","host":"127.0.0.1","port":4443,"path":"/tunnel/T1","token":"tok-2"}}"#.utf8), reply: true)
        advance()
        #expect(made.tunnels.count == connections + 1)
        #expect(String(decoding: tunnel.sent, as: UTF8.self).contains("tunnel-access-token: tok-2\r\n"))
    }

    @Test func failuresBackOffUpTo64Seconds() throws {
        made.tunnelScript = [.failed("connection refused")]
        handle(Self.notify())
        var attempts: [UInt64] = []
        let start = now
        for _ in 0..<300 {
            let before = made.tunnels.count
            advance(1000)
            if made.tunnels.count > before { attempts.append((now - start) / 1000) }
        }
        let gaps = zip(attempts.dropFirst(), attempts).map { $0 - $1 }
        #expect(gaps.prefix(7) == [1, 2, 4, 8, 16, 32, 64], "\(gaps)")
        #expect(gaps.dropFirst(6).allSatisfy { $0 == 64 })
    }

    @Test func pingsEvery20sAndGivesUpAfter60sOfSilence() throws {
        try open()
        advance(20_000)
        #expect(Self.clientFrames(tunnel.sent).contains { $0.opcode == 9 }, "a ping")
        tunnel.sent = []
        advance(20_000)
        advance(20_000)
        #expect(access.isClosed, "60 s without a pong")
        #expect(access.retryAt == now + 1000)
    }

    @Test func theConsoleClosingTheTunnelEndsItsSessions() throws {
        try open()
        _ = session("s1")
        handle(Array(#"{"operation":"close","tunnel_id":"T1","close_reason":"closed by user"}"#.utf8))
        #expect(access.tunnel == nil && access.isClosed)
        #expect(fakes.closed == 2, "the session's socket and the tunnel's")
        let connections = made.tunnels.count
        advance(100_000)
        #expect(made.tunnels.count == connections)
    }

    @Test func theDriversPollHoldsEverySlot() {
        #expect(PollSlots.first + PollSlots.capacity <= Int(WISP_POLL_MAX), "4 downloads, the tunnel and 4 sessions in one poll")
        #expect(Downloader<FakeTransport>.capacity + 1 + RemoteAccess<FakeTransport>.maxSessions <= PollSlots.capacity)
    }

    /// A notify may name only hosts root allows (tunnel_hosts): another is not connected to.
    @Test func aTunnelHostTheBoardDoesNotAllowIsRefused() {
        handle(Array(#"{"operation":"connect","tunnel_id":"T9","host":"attacker.example","port":443,"path":"/t","token":"x"}"#.utf8))
        advance()
        #expect(made.tunnels.isEmpty && access.tunnel == nil)
        handle(Array(#"{"operation":"connect","tunnel_id":"T9","host":"tunnel.EXAMPLE.net","port":443,"path":"/t","token":"x"}"#.utf8))
        advance()
        #expect(made.tunnels.count == 1, ".example.net allows a host under it")
        #expect(!BoardSettings().tunnelHostAllowed("backend-iotx-remote-debug.aliyun.com"), "none by default")
    }

    /// An ssh client speaks first: its bytes wait for the service's connect.
    @Test func bytesBeforeTheConnectWait() throws {
        try open()
        made.localScript = [.waitWritable, .open]
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(2, id: 1, session: "s1", service: "_SSH"))
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 2, session: "s1", payload: Array("SSH-2.0-client\r\n".utf8)))
        advance()
        #expect(local(0).sent.isEmpty)
        advance()
        advance()
        #expect(local(0).sent == Array("SSH-2.0-client\r\n".utf8))
    }

    /// A service that stops reading for 10 s is let go; the others go on.
    @Test func aStuckServiceIsLetGoAfter10s() throws {
        try open()
        _ = session("s1")
        _ = session("s2", id: 2)
        local(0).accepting = false
        for i in 0..<3 { tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 10 + i, session: "s1", payload: [UInt8](repeating: 1, count: 4000))) }
        tunnel.inbound += Self.serverFrame(Self.tunnelFrame(4, id: 20, session: "s2", payload: Array("for s2".utf8)))
        advance()
        #expect(local(1).sent.isEmpty, "behind the stuck frame")
        advance(10_000)
        advance()
        #expect(access.sessions.first { $0.named(Array("s1".utf8)) } == nil, "s1 let go")
        #expect(local(1).sent == Array("for s2".utf8))
        #expect(sentFrames().contains { $0.header["frame_type"] as? Int == 3 && $0.header["session_id"] as? String == "s1" })
    }

    /// Messages that are not frames are skipped, up to a bound: then the connection goes.
    @Test func manyBadFramesEndTheConnection() throws {
        try open()
        for _ in 0..<9 { tunnel.inbound += Self.serverFrame([0, 3, 0x7B, 0x7D, 0x7D]) }
        for _ in 0..<3 { advance() }
        #expect(access.isClosed)
    }

    /// A flood of pings is answered a bounded number at a time: the loop comes back for the rest.
    @Test func aPingFloodIsBounded() throws {
        try open()
        for _ in 0..<500 { tunnel.inbound += Self.serverFrame([], opcode: 9) }
        advance()
        #expect(access.busy, "more to read: the loop goes round first")
        #expect(Self.clientFrames(tunnel.sent).filter { $0.opcode == 10 }.count <= 64)
        for _ in 0..<40 { advance() }
        #expect(Self.clientFrames(tunnel.sent).filter { $0.opcode == 10 }.count == 500)
    }

    @Test func onlyAVerifiedWSSLinkCarriesRemoteAccess() {
        let dir = TemporaryDirectory("tunnel")
        var device = Platform.device(stateDir: dir.path)
        #expect(TunnelPolicy.refusal(device) == nil)
        device.tlsInsecure = true
        #expect(TunnelPolicy.refusal(device)?.contains("tls_insecure") == true)
        device.tlsInsecure = false
        device.endpoint = Endpoint(scheme: .ws, host: "a1PK.example", port: 80)
        #expect(TunnelPolicy.refusal(device)?.contains("not wss://") == true)
    }
}
