import Testing
@testable import WispCore

/// The WebSocket layer on its own, under no MQTT: upgrade, data, pings, close, masks.
@Suite("WebSocket connection machine")
struct WebSocketConnectionTests {
    static let accepted = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

    func events(_ ws: inout WebSocketConnection, _ bytes: [UInt8], output: inout ByteBuffer) throws(WebSocketConnection.Failure) -> [WebSocketConnection.Event] {
        var out: [WebSocketConnection.Event] = []
        var failure: WebSocketConnection.Failure?
        bytes.withUnsafeBytes { raw in
            var pos = 0
            do throws(WebSocketConnection.Failure) {
                while pos < raw.count, let e = try ws.next(raw, at: &pos, output: &output) { out.append(e) }
            } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    @Test func upgradeThenDataPingAndClose() throws {
        var ws = WebSocketConnection(target: .init(hostHeader: "broker", path: "/mqtt"), masks: MaskPool(fill: counterRandom()))
        var output = ByteBuffer(capacity: 1024)
        #expect(ws.start(key: .rfcExample, into: &output))
        #expect(String(decoding: output.bytes, as: UTF8.self).hasPrefix("GET /mqtt HTTP/1.1\r\nHost: broker\r\n"))
        output.removeAll()
        let stream = Array(Self.accepted.utf8) + [0x82, 0x02, 0x20, 0x02] + [0x89, 0x01, 0x41] + [0x88, 0x02, 0x03, 0xE8]
        let got = try events(&ws, stream, output: &output)
        let dataStart = Self.accepted.utf8.count + 2
        #expect(got == [.upgraded, .data(dataStart..<(dataStart + 2)), .closed(code: 1000)])
        // The pong (masked, payload "A") and the answering close are queued, each once.
        let out = output.bytes
        #expect(out[0] == 0x8A && out[1] == 0x81 && out[6] == 0x41 ^ out[2])
        #expect(out[7] == 0x88 && out[8] == 0x82 && out.count == 7 + 8)
    }

    @Test func textMessagesAndBadFramesCloseWithTheRightCode() {
        var ws = WebSocketConnection(target: .init(hostHeader: "b", path: "/"), masks: MaskPool(fill: counterRandom()))
        var output = ByteBuffer(capacity: 1024)
        _ = ws.start(key: .rfcExample, into: &output)
        output.removeAll()
        #expect(throws: WebSocketConnection.Failure.textMessage) {
            try events(&ws, Array(Self.accepted.utf8) + [0x81, 0x01, 0x61], output: &output)
        }
        let close = output.bytes
        let code = UInt16(close[6] ^ close[2]) << 8 | UInt16(close[7] ^ close[3])
        #expect(close[0] == 0x88 && code == WebSocketCloseCode.unsupportedData)
    }

    @Test func identityFramingPassesBytesThrough() throws {
        var framing = Framing(webSocket: nil)
        var output = ByteBuffer(capacity: 64)
        #expect(!framing.upgrades && framing.start(key: .rfcExample, into: &output) && output.isEmpty)
        framing.frame([0x30, 0x01, 0x00], dup: true, into: &output)
        #expect(output.bytes == [0x38, 0x01, 0x00])
        let bytes: [UInt8] = [1, 2, 3]
        var pos = 1
        let event = try bytes.withUnsafeBytes { raw throws(WebSocketConnection.Failure) in try framing.next(raw, at: &pos, output: &output) }
        #expect(event == .data(1..<3) && pos == 3)
    }
}
