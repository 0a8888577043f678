import CWispPlatform
import WispCore

/// The tunnel's own connection: `wss://{host}:{port}{path}` with the subprotocol
/// `aliyun.iot.securetunnel-v1.1` and the `tunnel-access-token` field, over the link's CA
/// bundle and proxy; then one tunnel frame per WebSocket binary message each way, a ping
/// every 20 s, and the connection given up after 60 s without hearing from the endpoint.
///
/// Its buffers are made once, at start-up, and reused by every connection: 8 KiB in,
/// 16 KiB out (two whole frames and the control frames), one frame reader and one writer
/// (6 KiB each).
final class TunnelLink<T: Transport> {
    static var subprotocol: String { "aliyun.iot.securetunnel-v1.1" }
    static var pingInterval: UInt64 { 20_000 }
    static var silenceLimit: UInt64 { 60_000 }
    static var upgradeTimeout: UInt64 { 10_000 }

    enum Phase { case closed, opening, upgrading, open }

    /// What reading found.
    enum Event {
        /// Nothing more until the descriptor is ready.
        case none
        /// The endpoint accepted the upgrade: frames may flow.
        case opened
        /// A frame: its ranges index `reader` until the next `next`.
        case frame(TunnelFrame)
        /// A message that is not a frame (said why); the connection goes on.
        case badFrame(String)
        /// The connection ended; `expired` when the endpoint said the token is no longer
        /// good (HTTP 401 at the upgrade, close status 401 or 4001).
        case ended(String, expired: Bool)
    }

    private(set) var phase = Phase.closed
    var transport: T?
    var handshake: WebSocketHandshake?
    var input = ByteBuffer(capacity: 8192)
    var position = 0
    var output = ByteBuffer(capacity: 16_384)
    var decoder = WebSocketFrameDecoder(maxMessageSize: TunnelFrame.maxMessage)
    var reader = TunnelFrameReader()
    var writer = TunnelFrameWriter()
    var masks = MaskPool(fill: Entropy.fill)
    /// What the open's last step asked to wait for (1 readable, 2 writable).
    var wants: Int32 = 2
    var lastHeard: UInt64 = 0
    var nextPing: UInt64 = 0
    var upgradeDeadline: UInt64 = 0
    var controls = 0
    static var readsPerCall: Int { 4 }
    static var controlsPerCall: Int { 32 }

    /// Room in the output for one more whole data frame, with `replyReserve` kept free.
    var hasRoom: Bool { output.available >= TunnelFrame.maxMessage + 14 + TunnelLink.replyReserve }
    /// Room for a response or a release (at most ~400 bytes) and a pong or a close: data
    /// frames leave this much free, so answers never wait behind a bulk transfer.
    var hasRoomForReply: Bool { output.available >= TunnelLink.replyReserve }
    static var replyReserve: Int { 1024 }
    /// The last `next` stopped at its bound with more perhaps waiting: look again at once.
    private(set) var capped = false

    /// Starts connecting over `transport`; the upgrade request goes out once the transport
    /// is open.
    func start(_ transport: T, now: UInt64) {
        drop()
        self.transport = transport
        phase = .opening
        wants = 2
    }

    /// Forgets the connection (its descriptor closes).
    func drop() {
        transport = nil
        handshake = nil
        phase = .closed
        input.removeAll()
        position = 0
        output.removeAll()
        decoder.reset()
        reader.reset()
    }

    /// Advances the open and the upgrade request, sends what waits, and keeps the
    /// connection alive. Why it failed, or nil.
    func pump(now: UInt64, target: Endpoint, token: TunnelToken) -> String? {
        guard let transport else { return nil }
        if case .opening = phase {
            switch transport.open(now: now) {
            case .waitReadable: wants = 1
            case .waitWritable: wants = 2
            case .failed(let why): return why
            case .open:
                let key = Entropy.webSocketKey()
                let hs = WebSocketHandshake(key: key, subprotocol: TunnelLink.subprotocol)
                let written = token.withBytes { secret in
                    hs.request(host: target.hostHeader, path: target.path, field: "tunnel-access-token", secret: secret, into: &output)
                }
                if !written { return "the tunnel's upgrade request does not fit " + "\(output.capacity) bytes" }
                handshake = hs
                phase = .upgrading
                upgradeDeadline = now + TunnelLink.upgradeTimeout
            }
            if case .opening = phase, now >= transport.openDeadline { return transport.openTimedOut() }
        }
        if case .upgrading = phase, now >= upgradeDeadline { return "no answer to the tunnel's WebSocket upgrade within 10 s" }
        if case .open = phase {
            if now >= lastHeard + TunnelLink.silenceLimit { return "nothing heard from the tunnel's endpoint for 60 s (no pong)" }
            if now >= nextPing {
                // No room (a full output): this ping is skipped, not retried in a loop.
                if output.available >= TunnelLink.replyReserve + 6 + 14 {
                    do { try WebSocketFrameEncoder.encode(opcode: .ping, payload: EmptyCollection<UInt8>(), mask: masks.next(), into: &output) } catch {}
                }
                nextPing = now + TunnelLink.pingInterval
            }
        }
        if case .opening = phase { return nil }
        while !output.isEmpty {
            let n = output.withBytes { transport.send($0) }
            if n < 0 { return n == Int64(WISP_IO_CLOSED) ? "the tunnel's endpoint closed the connection" : "sending to the tunnel failed" }
            if n == 0 { break }
            output.removeFirst(Int(n))
        }
        return nil
    }

    /// The next thing read, decoding what is in the input before reading more: at most
    /// `readsPerCall` reads and `controlsPerCall` control frames a call (`capped` then), so
    /// a flood of pings or of bytes cannot hold the loop.
    func next(now: UInt64) -> Event {
        capped = false
        controls = 0
        guard let transport else { return .none }
        switch phase {
        case .closed, .opening: return .none
        case .upgrading, .open: break
        }
        var reads = 0
        while true {
            if let event = decode(now: now) { return event }
            if controls >= TunnelLink.controlsPerCall || reads >= TunnelLink.readsPerCall {
                capped = true
                return .none
            }
            reads += 1
            input.removeFirst(position)
            position = 0
            var result: Int64 = 0
            _ = input.appendInPlace(upTo: input.available) { room in
                result = transport.receive(room)
                return result > 0 ? Int(result) : 0
            }
            if result == 0 { return .none }
            if result < 0 {
                return .ended(result == Int64(WISP_IO_CLOSED) ? "the tunnel's endpoint closed the connection" : "reading from the tunnel failed",
                              expired: false)
            }
            lastHeard = now
        }
    }

    /// One event from the input already read, or nil when more is needed.
    func decode(now: UInt64) -> Event? {
        if case .upgrading = phase {
            guard handshake != nil else { return nil }
            let done: Result<Bool, WebSocketHandshakeError> = input.withBytes { all in
                do throws(WebSocketHandshakeError) { return .success(try handshake!.parse(all, at: &position)) } catch { return .failure(error) }
            }
            switch done {
            case .failure(.unauthorized):
                return .ended("the tunnel's endpoint refused the token (HTTP 401)", expired: true)
            case .failure(let e):
                return .ended(e.message, expired: false)
            case .success(false):
                return nil
            case .success(true):
                handshake = nil
                phase = .open
                lastHeard = now
                nextPing = now + TunnelLink.pingInterval
                return .opened
            }
        }
        while true {  // until the decoder needs more (a message's end comes after its last byte)
            let step: Result<WebSocketEvent?, WebSocketFrameError> = input.withBytes { all in
                do throws(WebSocketFrameError) { return .success(try decoder.next(all, at: &position)) } catch { return .failure(error) }
            }
            switch step {
            case .failure(let e):
                close(e.closeCode)
                return .ended("the tunnel's endpoint broke the WebSocket protocol: " + e.message, expired: false)
            case .success(nil):
                return nil
            case .success(.messageBegin(let binary)?):
                if !binary {
                    close(WebSocketCloseCode.unsupportedData)
                    return .ended("the tunnel's endpoint sent a text message (frames are binary)", expired: false)
                }
            case .success(.data(let range)?):
                input.withBytes { all in reader.append(UnsafeRawBufferPointer(rebasing: all[range])) }
            case .success(.messageEnd?):
                do throws(TunnelFrameError) { return .frame(try reader.end()) } catch { return .badFrame(error.message) }
            case .success(.ping(let range)?):
                let control = decoder.control
                if output.available >= TunnelLink.replyReserve + 131 + 14 {  // else skipped: the endpoint pings again
                    do { try WebSocketFrameEncoder.encode(opcode: .pong, payload: control.bytesView(range), mask: masks.next(), into: &output) } catch {}
                }
                controls += 1
                if controls >= TunnelLink.controlsPerCall { return nil }
            case .success(.pong?):
                controls += 1
                if controls >= TunnelLink.controlsPerCall { return nil }
            case .success(.close(let code, _)?):
                close(code ?? WebSocketCloseCode.normal)
                let expired = code == 401 || code == 4001
                return .ended("the tunnel's endpoint closed the connection" + (code.map { " (status \($0))" } ?? ""), expired: expired)
            }
        }
    }

    /// Queues a close frame (sent by the next `pump`, if the connection lives that long).
    func close(_ code: UInt16) {
        do { try WebSocketFrameEncoder.encodeClose(code: code, mask: masks.next(), into: &output) } catch {}
    }

    /// Sends the writer's frame as one masked binary message; false when there is no room.
    func sendFrame() -> Bool {
        let frame = writer.frame
        guard output.available >= frame.count + 14 else { return false }
        let key = masks.next()
        WebSocketFrameEncoder.putHeader(opcode: .binary, payloadLength: frame.count, mask: key, into: &output)
        let start = output.count
        output.put(contentsOf: frame.written)
        WebSocketFrameEncoder.applyMask(key, to: start..<output.count, in: &output)
        return true
    }

    /// What to poll the connection's descriptor for.
    func events(reading: Bool) -> Int32 {
        switch phase {
        case .closed: return 0
        case .opening: return wants
        case .upgrading, .open: return (reading ? 1 : 0) | (output.isEmpty ? 0 : 2)
        }
    }

    var descriptor: Int32 { transport?.descriptor ?? -1 }

    /// When the connection must be looked at though nothing is ready.
    var deadline: UInt64 {
        switch phase {
        case .closed: return UInt64.max
        case .opening: return transport?.openDeadline ?? UInt64.max
        case .upgrading: return upgradeDeadline
        case .open: return min(nextPing, lastHeard + TunnelLink.silenceLimit)
        }
    }
}
