/// The client side of one WebSocket connection (RFC 6455), sans-IO: the opening
/// handshake, frame decoding, answering pings, the close handshake, and masking every frame
/// it writes with keys from the CSPRNG pool. It carries bytes for the layer above (MQTT)
/// and never sees what they mean.
///
/// Input is read from the caller's buffer at a position; answers (pongs, the close frame)
/// and framed messages are written to the caller's output buffer.
public struct WebSocketConnection {
    /// What the connection tells the layer above.
    public enum Event: Equatable {
        /// The server accepted the upgrade: messages may flow.
        case upgraded
        /// Payload bytes of a binary message, as a range of the input.
        case data(Range<Int>)
        /// The server sent a close frame (answered already).
        case closed(code: UInt16?)
    }

    /// Why the connection cannot go on. A close frame has been queued where one is due.
    public enum Failure: Error, Equatable {
        case handshake(WebSocketHandshakeError)
        case frame(WebSocketFrameError)
        case textMessage
        case outputOverflow
    }

    public let target: SessionConfig.WebSocketTarget
    var handshake: WebSocketHandshake?
    var frames = WebSocketFrameDecoder()
    var masks: MaskPool
    var closeSent = false

    public init(target: SessionConfig.WebSocketTarget, masks: MaskPool) {
        self.target = target
        self.masks = masks
    }

    public var isUpgrading: Bool { handshake != nil }

    /// A fresh connection on a new transport: queues the upgrade request. False when it
    /// does not fit `output` (a Host and path of kilobytes).
    public mutating func start(key: WebSocketKey, into output: inout ByteBuffer) -> Bool {
        frames.reset()
        closeSent = false
        let hs = WebSocketHandshake(key: key)
        handshake = hs
        do { try output.append(utf8: hs.request(host: target.hostHeader, path: target.path)) } catch { return false }
        return true
    }

    /// The next event from `input[position...]`, or nil when more bytes are needed.
    public mutating func next(_ input: UnsafeRawBufferPointer, at position: inout Int, output: inout ByteBuffer) throws(Failure) -> Event? {
        if handshake != nil {
            let done: Bool
            do { done = try handshake!.parse(input, at: &position) } catch { throw .handshake(error) }
            if !done { return nil }
            handshake = nil
            return .upgraded
        }
        while position < input.count {
            let next: WebSocketEvent?
            do { next = try frames.next(input, at: &position) } catch {
                close(error.closeCode, into: &output)
                throw .frame(error)
            }
            guard let event = next else { return nil }
            switch event {
            case .messageBegin(let binary):
                if !binary {
                    close(WebSocketCloseCode.unsupportedData, into: &output)
                    throw .textMessage
                }
            case .data(let range):
                return .data(range)
            case .messageEnd, .pong:
                break
            case .ping(let range):
                // At most 131 bytes; the session keeps that much free before parsing.
                let control = frames.control
                do {
                    try WebSocketFrameEncoder.encode(opcode: .pong, payload: control.bytesView(range), mask: masks.next(), into: &output)
                } catch { throw .outputOverflow }
            case .close(let code, _):
                close(code ?? WebSocketCloseCode.normal, into: &output)
                return .closed(code: code)
            }
        }
        return nil
    }

    /// Bytes a binary frame around `length` payload bytes takes.
    public func framedSize(_ length: Int) -> Int { WebSocketFrameEncoder.headerSize(payloadLength: length) + length }

    /// Writes `packet` as one masked binary frame; the caller checked the room
    /// (`framedSize`). `dup` sets the MQTT PUBLISH DUP flag (MQTT 3.1.1 §3.3.1.1) on the copy.
    public mutating func frame<C: Collection>(_ packet: C, dup: Bool, into output: inout ByteBuffer) where C.Element == UInt8 {
        let key = masks.next()
        WebSocketFrameEncoder.putHeader(opcode: .binary, payloadLength: packet.count, mask: key, into: &output)
        let start = output.count
        output.put(contentsOf: packet)
        if dup { output[start] |= 0x08 }
        WebSocketFrameEncoder.applyMask(key, to: start..<output.count, in: &output)
    }

    /// Queues a close frame (8 bytes, no reason text) once per connection.
    public mutating func close(_ code: UInt16, into output: inout ByteBuffer) {
        guard !closeSent else { return }
        closeSent = true
        do { try WebSocketFrameEncoder.encodeClose(code: code, mask: masks.next(), into: &output) } catch {
            // Cannot happen while the session's controlReserve holds (one close per connection).
        }
    }
}
