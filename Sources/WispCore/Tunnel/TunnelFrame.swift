/// The secure tunnel's frames (issue 28; not wired into the agent yet): what the device and
/// the platform's tunnel endpoint exchange inside WebSocket binary messages.
///
/// ```
/// [header length: 2 bytes, big-endian, 1…2048][header: JSON][payload: 0…4096 bytes]
/// header: {"frame_type":N,"frame_id":N,"session_id":"…","service_type":"…"}
/// ```
///
/// There is no payload length: the payload is the rest of the message. So one WebSocket
/// binary message holds exactly one frame, as Link SDK 4.x's tunnel reads it (it gathers a
/// message's fragments until FIN, then parses one frame from the whole) and as Alibaba's Go
/// and Java tunnel sources write it (one `WriteMessage` per frame). A frame never spans
/// messages and a message never holds two frames; the WebSocket layer says where a message
/// ends, and `TunnelFrameReader.end()` is told.
public enum TunnelFrameType: UInt8, Sendable, Equatable {
    case commonResponse = 1
    case sessionCreate = 2
    case sessionRelease = 3
    case dataTransport = 4
}

/// One frame read by `TunnelFrameReader`: the ranges index the reader's buffer and stay
/// valid until its next `append`.
public struct TunnelFrame: Sendable, Equatable {
    public var type: TunnelFrameType
    /// 0…`maxFrameId`; a number from the wire stays Int64 (armv7's Int is 32 bits).
    public var id: Int64
    /// The session id's bytes (between the quotes; safe characters only, no escapes); empty
    /// when absent, which only a common_response may be.
    public var sessionId: Range<Int>
    /// The service type's bytes (`_SSH`, …); empty when absent, which only a session_create
    /// may not be.
    public var serviceType: Range<Int>
    public var payload: Range<Int>

    public static let maxHeader = 2048
    public static let maxPayload = 4096
    /// The largest message a frame makes.
    public static let maxMessage = 2 + maxHeader + maxPayload
    /// Session ids and service types: at most this many bytes.
    public static let maxName = 64
    /// Frame ids above 2^53 - 1 are refused (the platform's Java side reads them as a
    /// Long, its Go side as a UInt32; neither goes near this).
    public static let maxFrameId: Int64 = (1 << 53) - 1

    /// A session id or service type byte: printable ASCII without space, `"` or `\` (so
    /// the bytes are the value, with nothing escaped, and can go into JSON and logs as
    /// they are).
    public static func isNameByte(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\")
    }

    public static func isName<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.count <= maxName && bytes.allSatisfy(isNameByte)
    }
}

/// A header field, for errors.
public enum TunnelFrameField: Sendable, Equatable {
    case frameType, frameId, sessionId, serviceType

    public var name: String {
        switch self {
        case .frameType: "frame_type"
        case .frameId: "frame_id"
        case .sessionId: "session_id"
        case .serviceType: "service_type"
        }
    }
}

/// Why a message is not a frame. Nothing in it quotes the message.
public enum TunnelFrameError: Error, Sendable, Equatable {
    /// The message ended before 2 + header length bytes (or was empty).
    case truncated
    /// A header length of 0.
    case emptyHeader
    case headerTooLong(Int)
    /// More than 4096 bytes after the header.
    case payloadTooLong
    case badJSON(offset: Int)
    case notAnObject
    case unknownType(Int64)
    case missingField(TunnelFrameField)
    /// Present twice.
    case duplicateField(TunnelFrameField)
    /// The wrong kind of value, a number out of range, or a byte outside `isNameByte`.
    case badField(TunnelFrameField)
    /// A session id or service type longer than `maxName`.
    case fieldTooLong(TunnelFrameField)
    /// The writer's buffer (cannot happen within the bounds above).
    case noRoom

    public var message: String {
        switch self {
        case .truncated: "tunnel frame shorter than its header length"
        case .emptyHeader: "tunnel frame with an empty header"
        case .headerTooLong(let n): "tunnel frame header of \(n) bytes (at most \(TunnelFrame.maxHeader))"
        case .payloadTooLong: "tunnel frame payload longer than \(TunnelFrame.maxPayload) bytes"
        case .badJSON(let offset): "tunnel frame header is not JSON (byte \(offset))"
        case .notAnObject: "tunnel frame header is not a JSON object"
        case .unknownType(let t): "tunnel frame of unknown type \(t)"
        case .missingField(let f): "tunnel frame header without " + f.name
        case .duplicateField(let f): "tunnel frame header with " + f.name + " twice"
        case .badField(let f): "tunnel frame header with a bad " + f.name
        case .fieldTooLong(let f): "tunnel frame header's " + f.name + " longer than \(TunnelFrame.maxName) bytes"
        case .noRoom: "tunnel frame does not fit its buffer"
        }
    }
}

/// Reads frames from WebSocket binary messages into one fixed buffer (`maxMessage` bytes,
/// made once): `append` each piece of a message's payload as the WebSocket layer hands it
/// over (a read may end anywhere), then `end()` when the message ends. A message that
/// breaks a bound is refused as soon as it does (`refused`), and its remaining bytes are
/// dropped unstored; `end()` then throws that error and the reader is ready for the next
/// message.
public struct TunnelFrameReader {
    var buffer = ByteBuffer(capacity: TunnelFrame.maxMessage)
    var inMessage = false
    /// The current message's error, once it has one.
    public private(set) var refused: TunnelFrameError?

    public init() {}

    /// The bytes at `range` of the buffer (a frame's session id, service type or payload).
    public func bytes(_ range: Range<Int>) -> ArraySlice<UInt8> { buffer.bytesView(range) }

    public func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        buffer.withBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// True when the bytes at `range` are `text` (a service type against a name).
    public func bytes(_ range: Range<Int>, equal text: String) -> Bool { buffer.bytes(range, equal: text) }

    /// Forgets the current message (a new connection).
    public mutating func reset() {
        buffer.removeAll()
        inMessage = false
        refused = nil
    }

    /// The header length once its two bytes are in.
    var headerLength: Int? { buffer.count >= 2 ? Int(buffer[0]) << 8 | Int(buffer[1]) : nil }

    /// More of the current message's payload.
    public mutating func append(_ piece: UnsafeRawBufferPointer) {
        if !inMessage {
            buffer.removeAll()
            inMessage = true
        }
        if refused != nil || piece.isEmpty { return }
        let hadLength = buffer.count >= 2
        let take = min(piece.count, buffer.available)
        _ = buffer.appendInPlace(upTo: take) { room in
            room.copyMemory(from: UnsafeRawBufferPointer(rebasing: piece[0..<take]))
            return take
        }
        guard let length = headerLength else { return }
        if !hadLength {
            if length == 0 { refused = .emptyHeader; return }
            if length > TunnelFrame.maxHeader { refused = .headerTooLong(length); return }
        }
        // Past the buffer is past the payload's bound too: nothing beyond it is stored.
        if take < piece.count || buffer.count - 2 - length > TunnelFrame.maxPayload { refused = .payloadTooLong }
    }

    /// The current message has ended: its frame, or why it is not one. Either way the
    /// reader then waits for the next message.
    public mutating func end() throws(TunnelFrameError) -> TunnelFrame {
        defer {
            inMessage = false
            refused = nil
        }
        if !inMessage { buffer.removeAll() }  // an empty message: no append came
        if let refused { throw refused }
        guard let length = headerLength, buffer.count >= 2 + length else { throw .truncated }
        let parsed = buffer.withBytes { all in
            TunnelFrameReader.header(UnsafeRawBufferPointer(rebasing: all[2..<(2 + length)]))
        }
        switch parsed {
        case .failure(let error): throw error
        case .success(var frame):
            frame.sessionId = (frame.sessionId.lowerBound + 2)..<(frame.sessionId.upperBound + 2)
            frame.serviceType = (frame.serviceType.lowerBound + 2)..<(frame.serviceType.upperBound + 2)
            frame.payload = (2 + length)..<buffer.count
            return frame
        }
    }

    static func header(_ bytes: UnsafeRawBufferPointer) -> Result<TunnelFrame, TunnelFrameError> {
        do throws(TunnelFrameError) { return .success(try parseHeader(bytes)) } catch { return .failure(error) }
    }

    /// Parses a header; the ranges index `bytes`. Fields other than the four are ignored.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer) throws(TunnelFrameError) -> TunnelFrame {
        let json: JSONReader
        do { json = try JSONReader(bytes) } catch { throw .badJSON(offset: error.offset) }
        guard case .object = json.root else { throw .notAnObject }
        var type: Int64?, id: Int64?, session: Range<Int>?, service: Range<Int>?
        for (key, value) in json.members() {
            if json.equals(key, "frame_type") {
                if type != nil { throw .duplicateField(.frameType) }
                type = try number(value, .frameType)
            } else if json.equals(key, "frame_id") {
                if id != nil { throw .duplicateField(.frameId) }
                id = try number(value, .frameId)
            } else if json.equals(key, "session_id") {
                if session != nil { throw .duplicateField(.sessionId) }
                session = try name(value, json, .sessionId)
            } else if json.equals(key, "service_type") {
                if service != nil { throw .duplicateField(.serviceType) }
                service = try name(value, json, .serviceType)
            }
        }
        guard let type else { throw .missingField(.frameType) }
        guard type >= 1 && type <= 4, let kind = TunnelFrameType(rawValue: UInt8(truncatingIfNeeded: type)) else { throw .unknownType(type) }
        guard let id else { throw .missingField(.frameId) }
        if id > TunnelFrame.maxFrameId { throw .badField(.frameId) }
        let sessionId = session ?? 0..<0, serviceType = service ?? 0..<0
        // Every frame but a response belongs to a session; a session_create names its service.
        if kind != .commonResponse && sessionId.isEmpty { throw .missingField(.sessionId) }
        if kind == .sessionCreate && serviceType.isEmpty { throw .missingField(.serviceType) }
        return TunnelFrame(type: kind, id: id, sessionId: sessionId, serviceType: serviceType, payload: 0..<0)
    }

    /// A whole, non-negative number (kept Int64 until the caller range-checks it).
    static func number(_ value: JSONReader.Value, _ field: TunnelFrameField) throws(TunnelFrameError) -> Int64 {
        guard case .number(let v, let decimals) = value, decimals == 0, v >= 0 else { throw .badField(field) }
        return v
    }

    /// A bounded name of `isNameByte`s; null is absent (empty).
    static func name(_ value: JSONReader.Value, _ json: JSONReader, _ field: TunnelFrameField) throws(TunnelFrameError) -> Range<Int> {
        if case .null = value { return 0..<0 }
        guard case .string(let r) = value else { throw .badField(field) }
        if r.count > TunnelFrame.maxName { throw .fieldTooLong(field) }
        for i in r where !TunnelFrame.isNameByte(json[i]) { throw .badField(field) }
        return r
    }
}

/// Builds the device's frames, one at a time, into one fixed buffer (`maxMessage` bytes,
/// made once); `frame` is the message to send as one WebSocket binary message. Frame ids
/// increase per sender: each frame the device starts takes the next id (1, 2, …, wrapping
/// to 1 after `maxFrameId`); a common_response carries the id of the frame it answers, as
/// the platform's own tunnel clients do.
public struct TunnelFrameWriter {
    var json = JSONWriter(capacity: TunnelFrame.maxMessage)
    public private(set) var lastId: Int64

    /// `lastId`: the id before the first (a new connection may go on from the last one).
    public init(lastId: Int64 = 0) { self.lastId = max(0, min(lastId, TunnelFrame.maxFrameId)) }

    /// The frame last written (valid until the next write).
    public var frame: ByteBuffer { json.buffer }

    public func withFrame<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { json.buffer.withBytes(body) }

    /// The id the next frame the device starts takes.
    public var peekId: Int64 { lastId >= TunnelFrame.maxFrameId ? 1 : lastId + 1 }

    /// Takes the next id (a frame written: ids are used only by frames that were made).
    public mutating func nextId() -> Int64 {
        lastId = peekId
        return lastId
    }

    /// A common_response to frame `id`: `{"code":0,"msg":""}` for a session the device took,
    /// or a non-zero code and why (see `body`).
    public mutating func response<S: Collection, M: Collection>(to id: Int64, sessionId: S, code: Int64, message: M) throws(TunnelFrameError)
        where S.Element == UInt8, M.Element == UInt8 {
        try header(.commonResponse, id: id, sessionId: sessionId, serviceType: EmptyCollection())
        body(code: code, message: message)
        if !json.ok { throw .noRoom }
    }

    /// A session_release for a session that ended on the device's side (the local service
    /// closed or failed): `{"code":N,"msg":"…"}` says why.
    public mutating func sessionRelease<S: Collection, M: Collection>(sessionId: S, code: Int64, message: M) throws(TunnelFrameError)
        where S.Element == UInt8, M.Element == UInt8 {
        try header(.sessionRelease, id: peekId, sessionId: sessionId, serviceType: EmptyCollection())
        body(code: code, message: message)
        if !json.ok { throw .noRoom }
        _ = nextId()
    }

    /// A data_transport frame whose payload `fill` writes in place (a read from the local
    /// socket, say): it is given room for at most `maxPayload` bytes and returns how many
    /// it wrote (0 or less: no frame, `false`).
    public mutating func data<S: Collection>(sessionId: S, fill: (UnsafeMutableRawBufferPointer) -> Int) throws(TunnelFrameError) -> Bool
        where S.Element == UInt8 {
        try header(.dataTransport, id: peekId, sessionId: sessionId, serviceType: EmptyCollection())
        let written = json.buffer.appendInPlace(upTo: TunnelFrame.maxPayload, fill)
        if written <= 0 {
            json.reset()
            return false
        }
        _ = nextId()
        return true
    }

    /// `{"code":N,"msg":"…"}`: the reason cut to 256 bytes, JSON-escaped, and every non-ASCII
    /// byte written `?` (a cut never splits a character into invalid UTF-8).
    mutating func body<M: Collection>(code: Int64, message: M) where M.Element == UInt8 {
        json.raw("{\"code\":")
        json.integer(code)
        json.raw(",\"msg\":\"")
        for b in message.prefix(256) {
            if b >= 0x80 { json.byte(UInt8(ascii: "?")) } else { json.escaped(CollectionOfOne(b)) }
        }
        json.raw("\"}")
    }

    /// `[length][header]`: the header with every field; the session id and service type
    /// must be names (`TunnelFrame.isName`).
    mutating func header<S: Collection, T: Collection>(_ type: TunnelFrameType, id: Int64, sessionId: S, serviceType: T) throws(TunnelFrameError)
        where S.Element == UInt8, T.Element == UInt8 {
        guard TunnelFrame.isName(sessionId) else { throw .badField(.sessionId) }
        guard TunnelFrame.isName(serviceType) else { throw .badField(.serviceType) }
        guard id >= 0 && id <= TunnelFrame.maxFrameId else { throw .badField(.frameId) }
        json.reset()
        json.byte(0)
        json.byte(0)
        json.raw("{\"frame_type\":")
        json.integer(Int64(type.rawValue))
        json.raw(",\"frame_id\":")
        json.integer(id)
        json.raw(",\"session_id\":\"")
        for b in sessionId { json.byte(b) }
        json.raw("\",\"service_type\":\"")
        for b in serviceType { json.byte(b) }
        json.raw("\"}")
        // At most 4 fields with two names of 64 bytes: far below maxHeader.
        let length = json.buffer.count - 2
        json.buffer[0] = UInt8(truncatingIfNeeded: length >> 8)
        json.buffer[1] = UInt8(truncatingIfNeeded: length)
        if !json.ok { throw .noRoom }
    }
}
