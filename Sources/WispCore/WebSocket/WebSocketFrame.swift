/// WebSocket opcodes (RFC 6455 §5.2).
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0, text = 0x1, binary = 0x2
    case close = 0x8, ping = 0x9, pong = 0xA

    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// Close status codes wisp sends or checks (RFC 6455 §7.4.1).
public enum WebSocketCloseCode {
    public static let normal: UInt16 = 1000
    public static let goingAway: UInt16 = 1001
    public static let protocolError: UInt16 = 1002
    public static let unsupportedData: UInt16 = 1003
    public static let invalidPayload: UInt16 = 1007
    public static let policyViolation: UInt16 = 1008
    public static let messageTooBig: UInt16 = 1009

    /// Whether `code` may appear in a received close frame (RFC 6455 §7.4).
    public static func isValidReceived(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011: true
        case 3000...4999: true
        default: false
        }
    }
}

/// Client frame encoder (RFC 6455 §5.2): FIN set, always masked, 7/16/64-bit lengths.
///
/// For MQTT the packet is encoded straight into the output buffer after the frame
/// header and masked in place, so framing copies nothing.
public enum WebSocketFrameEncoder {
    /// Header bytes (opcode, length, masking key) for a payload of `length`.
    public static func headerSize(payloadLength length: Int) -> Int {
        switch length {
        case ..<126: 2 + 4
        case ...65_535: 4 + 4
        default: 10 + 4
        }
    }

    /// Writes a frame header with `mask`; the caller has reserved `headerSize` bytes.
    public static func putHeader(opcode: WebSocketOpcode, payloadLength length: Int, mask: UInt32, fin: Bool = true, into buffer: inout ByteBuffer) {
        buffer.put((fin ? 0x80 : 0) | opcode.rawValue)
        switch length {
        case ..<126:
            buffer.put(0x80 | UInt8(length))
        case ...65_535:
            buffer.put(0x80 | 126)
            buffer.put16(UInt16(length))
        default:
            buffer.put(0x80 | 127)
            let l = UInt64(length)
            for shift in stride(from: 56, through: 0, by: -8) { buffer.put(UInt8(truncatingIfNeeded: l >> UInt64(shift))) }
        }
        buffer.put(UInt8(truncatingIfNeeded: mask >> 24))
        buffer.put(UInt8(truncatingIfNeeded: mask >> 16))
        buffer.put(UInt8(truncatingIfNeeded: mask >> 8))
        buffer.put(UInt8(truncatingIfNeeded: mask))
    }

    /// XORs `buffer[range]` with the masking key (RFC 6455 §5.3).
    public static func applyMask(_ mask: UInt32, to range: Range<Int>, in buffer: inout ByteBuffer) {
        var j = 0
        for i in range {
            let shift = UInt32(24 - 8 * (j & 3))
            buffer[i] ^= UInt8(truncatingIfNeeded: mask >> shift)
            j += 1
        }
    }

    /// A whole frame carrying `payload` (control frames, tests, the echo tool).
    public static func encode<P: Collection>(opcode: WebSocketOpcode, payload: P, mask: UInt32, fin: Bool = true, into buffer: inout ByteBuffer) throws(BufferTooSmall)
    where P.Element == UInt8 {
        let header = headerSize(payloadLength: payload.count)
        try buffer.reserve(header + payload.count)
        putHeader(opcode: opcode, payloadLength: payload.count, mask: mask, fin: fin, into: &buffer)
        let start = buffer.count
        buffer.put(contentsOf: payload)
        applyMask(mask, to: start..<buffer.count, in: &buffer)
    }

    /// A close frame with `code` and no reason.
    public static func encodeClose(code: UInt16, mask: UInt32, into buffer: inout ByteBuffer) throws(BufferTooSmall) {
        try buffer.reserve(2 + 4 + 2)
        putHeader(opcode: .close, payloadLength: 2, mask: mask, into: &buffer)
        let start = buffer.count
        buffer.put16(code)
        applyMask(mask, to: start..<buffer.count, in: &buffer)
    }
}
