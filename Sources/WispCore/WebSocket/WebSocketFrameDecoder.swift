/// What the frame decoder found in the server's byte stream.
public enum WebSocketEvent: Equatable, Sendable {
    /// A text or binary message starts (its first frame's header is complete).
    case messageBegin(binary: Bool)
    /// Payload bytes of the current message: a range of the caller's input (server
    /// frames are unmasked, so the bytes are used where they lie, uncopied).
    case data(Range<Int>)
    /// The current message's final frame is complete.
    case messageEnd
    /// A ping; its payload is `WebSocketFrameDecoder.control[range]`, to echo in a pong.
    case ping(Range<Int>)
    case pong
    /// A close frame: status code (nil when the frame had none) and the reason's range in
    /// `WebSocketFrameDecoder.control`.
    case close(code: UInt16?, reason: Range<Int>)
}

/// Incremental decoder of frames a server sends a client (RFC 6455 §5).
///
/// Parser state is an enum whose cases carry the partial header, as swift-nio's
/// `WebSocketFrameDecoder`: a read that stops mid-header costs no copy and no re-parse.
/// Fragmented messages are reassembled as a stream of `.data` events between
/// `.messageBegin` and `.messageEnd`; control frames may arrive between fragments.
public struct WebSocketFrameDecoder {
    enum State {
        case start
        case firstByte(UInt8)
        case extendedLength(first: UInt8, needed: Int, have: Int, value: UInt64)
        case data(remaining: Int, fin: Bool)
        case control(WebSocketOpcode, remaining: Int)
    }

    var state: State = .start
    var message: WebSocketOpcode?   // opcode of the message in progress
    var messageLength = 0
    var utf8 = UTF8Validator()
    /// Payload of the last control frame (at most 125 bytes, RFC 6455 §5.5).
    public private(set) var control = ByteBuffer(capacity: 125)
    /// Messages longer than this are refused with `.messageTooBig` (close code 1009).
    public let maxMessageSize: Int

    public init(maxMessageSize: Int = Int.max) {
        self.maxMessageSize = maxMessageSize
    }

    public mutating func reset() {
        state = .start
        message = nil
        messageLength = 0
        utf8 = UTF8Validator()
        control.removeAll()
    }

    /// Consumes from `input` at `position` until an event is ready (returned) or the input
    /// is used up (nil).
    public mutating func next(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(WebSocketFrameError) -> WebSocketEvent? {
        while true {
            switch state {
            case .start:
                guard position < input.count else { return nil }
                let b0 = input[position]
                position += 1
                if b0 & 0x70 != 0 { throw .reservedBits }
                guard let opcode = WebSocketOpcode(rawValue: b0 & 0x0F) else { throw .unknownOpcode(b0 & 0x0F) }
                if opcode.isControl && b0 & 0x80 == 0 { throw .fragmentedControlFrame }
                state = .firstByte(b0)

            case .firstByte(let b0):
                guard position < input.count else { return nil }
                let b1 = input[position]
                position += 1
                if b1 & 0x80 != 0 { throw .maskedServerFrame }
                let length = b1 & 0x7F
                if b0 & 0x08 != 0 && length > 125 { throw .controlFrameTooLong }
                switch length {
                case 126: state = .extendedLength(first: b0, needed: 2, have: 0, value: 0)
                case 127: state = .extendedLength(first: b0, needed: 8, have: 0, value: 0)
                default: if let event = try headerComplete(b0, length: Int(length)) { return event }
                }

            case .extendedLength(let b0, let needed, var have, var value):
                guard position < input.count else { return nil }
                value = value << 8 | UInt64(input[position])
                position += 1
                have += 1
                if have < needed {
                    state = .extendedLength(first: b0, needed: needed, have: have, value: value)
                    continue
                }
                // RFC 6455 §5.2: the minimal number of bytes MUST be used; the 64-bit
                // form's most significant bit MUST be 0.
                if needed == 2 && value < 126 { throw .nonMinimalLength }
                if needed == 8 && (value <= 65_535 || value >> 63 != 0) { throw .nonMinimalLength }
                if value > UInt64(Int.max) { throw .messageTooBig }
                if let event = try headerComplete(b0, length: Int(value)) { return event }

            case .data(let remaining, let fin):
                if remaining == 0 {
                    state = .start
                    if fin {
                        let wasText = message == .text
                        message = nil
                        messageLength = 0
                        if wasText && !utf8.isComplete { throw .invalidUTF8 }
                        utf8 = UTF8Validator()
                        return .messageEnd
                    }
                    continue
                }
                guard position < input.count else { return nil }
                let n = min(remaining, input.count - position)
                let range = position..<(position + n)
                if message == .text {
                    for i in range where !utf8.feed(input[i]) { throw .invalidUTF8 }
                }
                position += n
                state = .data(remaining: remaining - n, fin: fin)
                return .data(range)

            case .control(let opcode, let remaining):
                if remaining > 0 {
                    guard position < input.count else { return nil }
                    let n = min(remaining, input.count - position)
                    control.put(contentsOf: UnsafeRawBufferPointer(rebasing: input[position..<(position + n)]))
                    position += n
                    state = .control(opcode, remaining: remaining - n)
                    if n < remaining { return nil }
                }
                state = .start
                return try controlComplete(opcode)
            }
        }
    }

    mutating func headerComplete(_ b0: UInt8, length: Int) throws(WebSocketFrameError) -> WebSocketEvent? {
        let opcode = WebSocketOpcode(rawValue: b0 & 0x0F)!
        let fin = b0 & 0x80 != 0
        if opcode.isControl {
            control.removeAll()
            state = .control(opcode, remaining: length)
            return nil
        }
        var begins = false
        if opcode == .continuation {
            if message == nil { throw .unexpectedContinuation }
        } else {
            if message != nil { throw .expectedContinuation }
            message = opcode
            begins = true
        }
        if length > maxMessageSize - messageLength { throw .messageTooBig }
        messageLength += length
        state = .data(remaining: length, fin: fin)
        return begins ? .messageBegin(binary: opcode == .binary) : nil
    }

    func controlComplete(_ opcode: WebSocketOpcode) throws(WebSocketFrameError) -> WebSocketEvent {
        switch opcode {
        case .ping: return .ping(0..<control.count)
        case .pong: return .pong
        default:
            let n = control.count
            if n == 0 { return .close(code: nil, reason: 0..<0) }
            if n == 1 { throw .badClosePayload }
            let code = UInt16(control[0]) << 8 | UInt16(control[1])
            if !WebSocketCloseCode.isValidReceived(code) { throw .badCloseCode(code) }
            var reason = UTF8Validator()
            for i in 2..<n where !reason.feed(control[i]) { throw .invalidUTF8 }
            if !reason.isComplete { throw .invalidUTF8 }
            return .close(code: code, reason: 2..<n)
        }
    }
}

/// A violation of RFC 6455 in what the server sent; `closeCode` is what to answer with.
public enum WebSocketFrameError: Error, Equatable, Sendable {
    case reservedBits
    case unknownOpcode(UInt8)
    case fragmentedControlFrame
    case controlFrameTooLong
    case maskedServerFrame
    case nonMinimalLength
    case unexpectedContinuation
    case expectedContinuation
    case messageTooBig
    case invalidUTF8
    case badClosePayload
    case badCloseCode(UInt16)

    /// The close status this error maps to (RFC 6455 §7.4.1), in one place.
    public var closeCode: UInt16 {
        switch self {
        case .messageTooBig: WebSocketCloseCode.messageTooBig
        case .invalidUTF8: WebSocketCloseCode.invalidPayload
        default: WebSocketCloseCode.protocolError
        }
    }

    public var message: String {
        switch self {
        case .reservedBits: "WebSocket frame with reserved bits set (no extension was negotiated)"
        case .unknownOpcode(let op): "WebSocket frame with unknown opcode \(op)"
        case .fragmentedControlFrame: "fragmented WebSocket control frame"
        case .controlFrameTooLong: "WebSocket control frame longer than 125 bytes"
        case .maskedServerFrame: "masked WebSocket frame from the server"
        case .nonMinimalLength: "WebSocket frame length not minimally encoded"
        case .unexpectedContinuation: "WebSocket continuation frame with no message started"
        case .expectedContinuation: "new WebSocket message while a fragmented one is unfinished"
        case .messageTooBig: "WebSocket message larger than the buffer"
        case .invalidUTF8: "WebSocket text is not valid UTF-8"
        case .badClosePayload: "WebSocket close frame with a 1-byte payload"
        case .badCloseCode(let c): "WebSocket close frame with invalid status \(c)"
        }
    }
}
