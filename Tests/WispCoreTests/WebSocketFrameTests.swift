import TestSupport
import Testing
@testable import WispCore

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
