import Foundation
import Testing
@testable import WispCore

@Suite("WebSocket handshake (RFC 6455 §1.3, §4)")
struct WebSocketHandshakeTests {
    static let key = WebSocketKey.rfcExample  // RFC 6455 §1.3

    @Test func requestCarriesWhatTheRFCAndMQTTRequire() {
        let request = WebSocketHandshake(key: Self.key).request(host: "example.com:8443", path: "/mqtt")
        #expect(request == "GET /mqtt HTTP/1.1\r\nHost: example.com:8443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
    }

    /// The secure tunnel's request: its subprotocol, and the token in a field of its own,
    /// written as bytes (never a String that could be logged).
    @Test func theTunnelsRequestCarriesItsSubprotocolAndToken() throws {
        let hs = WebSocketHandshake(key: Self.key, subprotocol: "aliyun.iot.securetunnel-v1.1")
        var out = ByteBuffer(capacity: 512)
        let ok = Array("t0k3n".utf8).withUnsafeBytes { hs.request(host: "tunnel.example", path: "/t/1", field: "tunnel-access-token", secret: $0, into: &out) }
        #expect(ok)
        #expect(String(decoding: out.bytes, as: UTF8.self) == "GET /t/1 HTTP/1.1\r\nHost: tunnel.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: aliyun.iot.securetunnel-v1.1\r\n"
            + "tunnel-access-token: t0k3n\r\n\r\n")
        var small = ByteBuffer(capacity: 64)
        #expect(!Array("t0k3n".utf8).withUnsafeBytes { hs.request(host: "h", path: "/", field: "tunnel-access-token", secret: $0, into: &small) })
        // The server must choose the tunnel's subprotocol, not mqtt.
        var tunnel = WebSocketHandshake(key: Self.key, subprotocol: "aliyun.iot.securetunnel-v1.1")
        for (answer, accepted) in [("aliyun.iot.securetunnel-v1.1", true), ("mqtt", false)] {
            tunnel = WebSocketHandshake(key: Self.key, subprotocol: "aliyun.iot.securetunnel-v1.1")
            let response = Array(Self.good.replacingOccurrences(of: "Protocol: mqtt", with: "Protocol: " + answer).utf8)
            var pos = 0
            var result: Result<Bool, WebSocketHandshakeError> = .success(false)
            response.withUnsafeBytes { raw in
                do throws(WebSocketHandshakeError) { result = .success(try tunnel.parse(raw, at: &pos)) } catch { result = .failure(error) }
            }
            #expect(result == (accepted ? .success(true) : .failure(.wrongSubprotocol)), "\(answer)")
        }
    }

    static let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

    func parse(_ response: String, chunk: Int = .max, trailing: [UInt8] = []) throws(WebSocketHandshakeError) -> (done: Bool, left: Int) {
        var hs = WebSocketHandshake(key: Self.key)
        let bytes = Array(response.utf8) + trailing
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + min(chunk, bytes.count))
            let piece = Array(bytes[start..<end])
            var pos = 0
            var done = false
            var failure: WebSocketHandshakeError?
            piece.withUnsafeBytes { raw in
                do throws(WebSocketHandshakeError) { done = try hs.parse(raw, at: &pos) } catch { failure = error }
            }
            if let failure { throw failure }
            if done { return (true, bytes.count - (start + pos)) }
            start = end
        }
        return (false, 0)
    }

    @Test(arguments: [1, 2, 3, 17, 1000])
    func acceptsAGoodResponseSplitAnyWay(chunk: Int) throws {
        let r = try parse(Self.good, chunk: chunk, trailing: hex("82 02 d0 00"))
        #expect(r.done)
        #expect(r.left == 4, "the frame after the headers stays for the frame decoder")
    }

    @Test func acceptsSeveralKiBOfHeadersAndMixedCase() throws {
        var response = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, Upgrade\r\n"
        for i in 0..<100 { response += "X-Filler-\(i): " + String(repeating: "x", count: 40) + "\r\n" }
        response += "sec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        #expect(response.utf8.count > 5000)
        #expect(try parse(response, chunk: 100).done)
    }

    static let refusals: [(String, WebSocketHandshakeError)] = [
        ("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", .unauthorized),
        ("HTTP/1.1 403 Forbidden\r\n\r\n", .forbidden),
        ("HTTP/1.1 404 Not Found\r\n\r\n", .notFound),
        ("HTTP/1.1 200 OK\r\n\r\n", .unexpectedStatus(200)),
        ("HTTP/1.1 502 Bad Gateway\r\n\r\n", .unexpectedStatus(502)),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", .badAccept),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", .badAccept),
        ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", .notAnUpgrade),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqttv5\r\n\r\n", .wrongSubprotocol),
        ("SSH-2.0-OpenSSH\r\n\r\n", .malformed),
        ("HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n", .malformed),
        ("HTTP/1.1 101x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", .malformed),
        ("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", .malformed),
    ]

    @Test(arguments: refusals)
    func refusesTheUpgrade(response: String, error: WebSocketHandshakeError) {
        #expect(throws: error) { try parse(response) }
        #expect(throws: error) { try parse(response, chunk: 1) }
        #expect(!error.message.isEmpty)
    }

    @Test func responseLargerThanTheBufferIsAnError() {
        var hs = WebSocketHandshake(key: Self.key, maxResponseBytes: 64)
        let bytes = Array(("HTTP/1.1 101 OK\r\n" + String(repeating: "X: y\r\n", count: 20)).utf8)
        #expect(throws: WebSocketHandshakeError.responseTooLarge(64)) {
            try bytes.withUnsafeBytes { raw in
                var pos = 0
                _ = try hs.parse(raw, at: &pos)
            }
        }
    }
}
