import TestSupport
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

@Suite("WebSocket frames (RFC 6455 §5)")
struct WebSocketFrameTests {
    @Test func maskedHelloFromRFCSection5_7() throws {
        var buffer = ByteBuffer(capacity: 64)
        try WebSocketFrameEncoder.encode(opcode: .text, payload: Array("Hello".utf8), mask: 0x37FA_213D, into: &buffer)
        #expect(buffer.bytes == hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
    }

    /// RFC 6455 §5.7 server-side examples, decoded as a client receives them.
    static let rfcExamples: [(String, String, [WSItem])] = [
        ("single unmasked text", "81 05 48656c6c6f", [.begin(binary: false), .data(Array("Hello".utf8)), .end]),
        ("fragmented text", "01 03 48656c 80 02 6c6f", [.begin(binary: false), .data(Array("Hello".utf8)), .end]),
        ("unmasked ping", "89 05 48656c6c6f", [.ping(Array("Hello".utf8))]),
        ("control frame between fragments", "02 02 0102 8a 00 80 01 03", [.begin(binary: true), .data([1, 2]), .pong, .data([3]), .end]),
        ("close with status and reason", "88 04 03e8 6f6b", [.close(1000, "ok")]),
        ("close without status", "88 00", [.close(nil, "")]),
        ("empty binary message", "82 00", [.begin(binary: true), .end]),
    ]

    @Test(arguments: rfcExamples)
    func decodes(name: String, bytes: String, expected: [WSItem]) throws {
        for chunk in [1, 2, 3, Int.max] {
            #expect(coalesced(try framesAll(hex(bytes), chunk: chunk)) == expected, "\(name), chunk \(chunk)")
        }
    }

    @Test(arguments: [0, 125, 126, 65_535, 65_536])
    func lengthsRoundTrip(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
        var buffer = ByteBuffer(capacity: length + 16)
        try WebSocketFrameEncoder.encode(opcode: .binary, payload: payload, mask: 0x0102_0304, into: &buffer)
        let header = WebSocketFrameEncoder.headerSize(payloadLength: length)
        #expect(buffer.count == header + length)
        let lengthByte = buffer[1] & 0x7F
        #expect(lengthByte == (length < 126 ? UInt8(length) : length <= 65_535 ? 126 : 127))
        // A server would send it unmasked: strip the mask and decode.
        var unmasked = buffer.bytes
        unmasked[1] &= 0x7F
        unmasked.removeSubrange((header - 4)..<header)
        for i in (header - 4)..<unmasked.count { unmasked[i] ^= [1, 2, 3, 4][(i - (header - 4)) % 4] }
        let items = coalesced(try framesAll(unmasked, chunk: 4000))
        #expect(items.first == .begin(binary: true))
        #expect(items.last == .end)
        if length > 0 { #expect(items[1] == .data(payload)) }
    }

    @Test func sixteenAndSixtyFourBitHeadersAsTheRFCShows() throws {
        // §5.7: 256 bytes binary in a single unmasked frame: 0x82 0x7E 0x0100.
        let items = coalesced(try framesAll(hex("82 7e 0100") + [UInt8](repeating: 9, count: 256), chunk: 5))
        #expect(items == [.begin(binary: true), .data([UInt8](repeating: 9, count: 256)), .end])
        // 64 KiB: 0x82 0x7F 0x0000000000010000.
        let big = coalesced(try framesAll(hex("82 7f 0000000000010000") + [UInt8](repeating: 1, count: 65_536)))
        #expect(big.count == 3)
    }

    static let violations: [(String, String, WebSocketFrameError)] = [
        ("RSV bits", "c2 00", .reservedBits),
        ("unknown opcode", "83 00", .unknownOpcode(3)),
        ("fragmented ping", "09 00", .fragmentedControlFrame),
        ("long ping", "89 7e 007e", .controlFrameTooLong),
        ("masked server frame", "82 80 00000000", .maskedServerFrame),
        ("non-minimal 16-bit length", "82 7e 0005", .nonMinimalLength),
        ("non-minimal 64-bit length", "82 7f 000000000000ffff", .nonMinimalLength),
        ("64-bit length with MSB", "82 7f 8000000000000000", .nonMinimalLength),
        ("continuation first", "80 00", .unexpectedContinuation),
        ("new message inside fragments", "02 00 82 00", .expectedContinuation),
        ("1-byte close", "88 01 03", .badClosePayload),
        ("close code 1005", "88 02 03ed", .badCloseCode(1005)),
        ("close code 999", "88 02 03e7", .badCloseCode(999)),
        ("invalid UTF-8 text", "81 02 c328", .invalidUTF8),
        ("truncated UTF-8 at message end", "81 01 e2", .invalidUTF8),
        ("invalid UTF-8 close reason", "88 03 03e8 ff", .invalidUTF8),
    ]

    @Test(arguments: violations)
    func refuses(name: String, bytes: String, error: WebSocketFrameError) {
        #expect(throws: error, "\(name)") { try framesAll(hex(bytes)) }
        #expect(throws: error, "\(name), byte by byte") { try framesAll(hex(bytes), chunk: 1) }
    }

    /// Found by the fuzzer: invalid UTF-8 in a partial text frame, split across reads.
    @Test func invalidUTF8InAPartialTextFrame() {
        for chunk in [1, 2, 3, Int.max] {
            #expect(throws: WebSocketFrameError.invalidUTF8) { try framesAll(hex("01 09 00 00 00 80 02 6c 6d"), chunk: chunk) }
        }
    }

    @Test func closeCodesForErrors() {
        #expect(WebSocketFrameError.messageTooBig.closeCode == 1009)
        #expect(WebSocketFrameError.invalidUTF8.closeCode == 1007)
        #expect(WebSocketFrameError.reservedBits.closeCode == 1002)
    }

    @Test func messageLargerThanTheLimitIs1009() {
        #expect(throws: WebSocketFrameError.messageTooBig) { try framesAll(hex("02 03 010203 80 03 040506"), maxMessage: 5) }
    }

    @Test func utf8SplitAcrossFragmentsIsValid() throws {
        // "€" = e2 82 ac split over two frames.
        let items = coalesced(try framesAll(hex("01 01 e2 80 02 82ac")))
        #expect(items == [.begin(binary: false), .data(hex("e2 82 ac")), .end])
    }

    /// MQTT over WebSocket: several packets in one frame, one packet across frames.
    @Test func mqttPacketsShareAndSpanFrames() throws {
        let pingresp = hex("d0 00"), puback = hex("40 02 0005")
        let oneFrame = hex("82 06") + pingresp + puback
        let spanning = hex("02 03") + puback[0..<3] + hex("80 03") + puback[3...] + pingresp
        for stream in [oneFrame, spanning] {
            var mqtt: [UInt8] = []
            for item in try framesAll(stream, chunk: 1) { if case .data(let d) = item { mqtt += d } }
            #expect(try decodeAll(mqtt, chunk: 1).packets.count == 2)
        }
    }
}
