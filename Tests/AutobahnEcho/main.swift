// wisp-echo: drives wisp's WebSocket client codec (handshake, frame decoder, frame encoder,
// close handshake) against Autobahn|Testsuite's fuzzingserver. Used only by tests.
//
//   wisp-echo PORT PATH          connect to 127.0.0.1:PORT, GET PATH, echo every message
//                                (text stays text), answer pings, echo the close.
//   wisp-echo PORT PATH --print  print the first text message instead (getCaseCount).
import CWispPlatform
import WispAgent
import WispCore

let maxMessage = 1 << 20  // larger messages are refused with 1009, as the issue asks

@main
struct Echo {
    static func main() {
        let args = System.arguments
        guard args.count >= 2, let port = UInt16(args[0]) else {
            System.write("usage: wisp-echo PORT PATH [--print]\n", to: 2)
            System.exit(.usage)
        }
        let printOnly = args.count > 2 && args[2] == "--print"
        let endpoint = Endpoint(scheme: .ws, host: "127.0.0.1", port: port, path: args[1])
        // The agent's own transport, opened step by step as its driver does.
        let transport = SocketTransport(endpoint: endpoint, proxy: nil, caFile: nil, insecure: false, stageTimeout: 5000)
        while true {
            let now = System.monotonicMillis
            if now >= transport.openDeadline {
                System.write("wisp-echo: " + transport.openTimedOut() + "\n", to: 2)
                System.exit(.unreachable)
            }
            switch transport.open(now: now) {
            case .open:
                var echo = EchoSession(printOnly: printOnly)
                echo.run(transport)
                return
            case .waitReadable: _ = System.wait(transport.descriptor, events: 1, milliseconds: 500)
            case .waitWritable: _ = System.wait(transport.descriptor, events: 2, milliseconds: 500)
            case .failed(let message):
                System.write("wisp-echo: " + message + "\n", to: 2)
                System.exit(.unreachable)
            }
        }
    }
}

struct EchoSession {
    let printOnly: Bool
    var out = ByteBuffer(capacity: maxMessage + 64)
    var message = ByteBuffer(capacity: maxMessage)
    var binary = true
    var frames = WebSocketFrameDecoder(maxMessageSize: maxMessage)
    var masks = MaskPool(fill: Entropy.fill)
    var closeSent = false

    init(printOnly: Bool) { self.printOnly = printOnly }

    mutating func mask() -> UInt32 { masks.next() }

    mutating func run(_ c: SocketTransport) {
        var hs = WebSocketHandshake(key: Entropy.webSocketKey())
        let args = System.arguments
        try? out.append(utf8: hs.request(host: "127.0.0.1:" + args[0], path: args[1]))
        flush(c)
        let input = InputBuffer(capacity: 65_536)
        var upgraded = false
        while true {
            input.removeAll()
            let n = input.append { raw in Int(c.receive(raw)) }
            if n == 0 {
                _ = System.wait(c.descriptor, events: 1, milliseconds: 10_000)
                continue
            }
            if n < 0 { return }  // closed or failed: done
            var pos = 0
            if !upgraded {
                do {
                    upgraded = try hs.parse(input.bytes, at: &pos)
                } catch {
                    System.write("wisp-echo: " + error.message + "\n", to: 2)
                    return
                }
                if !upgraded { continue }
            }
            while true {
                let event: WebSocketEvent?
                do { event = try frames.next(input.bytes, at: &pos) } catch {
                    sendClose(error.closeCode, c)
                    drain(c)
                    return
                }
                guard let e = event else { break }
                switch e {
                case .messageBegin(let b):
                    binary = b
                    message.removeAll()
                case .data(let r):
                    message.put(contentsOf: UnsafeRawBufferPointer(rebasing: input.bytes[r]))
                case .messageEnd:
                    if printOnly {
                        System.out(String(decoding: message.bytes, as: UTF8.self))
                        sendClose(WebSocketCloseCode.normal, c)
                        drain(c)
                        return
                    }
                    out.removeAll()
                    try? WebSocketFrameEncoder.encode(opcode: binary ? .binary : .text, payload: message.bytesView(0..<message.count), mask: mask(), into: &out)
                    flush(c)
                case .ping(let r):
                    out.removeAll()
                    try? WebSocketFrameEncoder.encode(opcode: .pong, payload: frames.control.bytesView(r), mask: mask(), into: &out)
                    flush(c)
                case .pong:
                    break
                case .close(let code, _):
                    sendClose(code, c)
                    drain(c)
                    return
                }
            }
        }
    }

    /// Sends a close frame once: with `code`, or empty when the peer's had none.
    mutating func sendClose(_ code: UInt16?, _ c: SocketTransport) {
        guard !closeSent else { return }
        closeSent = true
        out.removeAll()
        if let code {
            try? WebSocketFrameEncoder.encodeClose(code: code, mask: mask(), into: &out)
        } else {
            try? WebSocketFrameEncoder.encode(opcode: .close, payload: [UInt8](), mask: mask(), into: &out)
        }
        flush(c)
    }

    /// Waits (briefly) for the server to close the TCP connection.
    func drain(_ c: SocketTransport) {
        let sink = InputBuffer(capacity: 4096)
        let deadline = System.monotonicMillis + 3000
        while System.monotonicMillis < deadline {
            sink.removeAll()
            let n = sink.append { raw in Int(c.receive(raw)) }
            if n < 0 { return }
            if n == 0 { _ = System.wait(c.descriptor, events: 1, milliseconds: 500) }
        }
    }

    mutating func flush(_ c: SocketTransport) {
        var sent = 0
        while sent < out.count {
            let n = out.withBytes { raw in c.send(UnsafeRawBufferPointer(rebasing: raw[sent...])) }
            if n < 0 { return }
            if n == 0 { _ = System.wait(c.descriptor, events: 2, milliseconds: 5000) }
            sent += Int(n)
        }
        out.removeAll()
    }
}
