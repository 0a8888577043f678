import Testing
@testable import WispCore

/// The secure tunnel's frames: `[2-byte length][header JSON][payload]`, one per WebSocket
/// binary message, read from pieces as they arrive and written into one fixed buffer.
@Suite("Tunnel frames: reader, writer, bounds")
struct TunnelFrameTests {
    /// A message: the header text's length, the header, the payload.
    static func message(_ header: String, _ payload: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return [UInt8(h.count >> 8), UInt8(h.count & 0xFF)] + h + payload
    }

    static let create = #"{"frame_type":2,"frame_id":7,"session_id":"s-1","service_type":"_SSH"}"#

    /// Feeds `bytes` in pieces of `chunk` bytes (all at once by default), then ends the message.
    static func read(_ reader: inout TunnelFrameReader, _ bytes: [UInt8], chunk: Int = .max) throws(TunnelFrameError) -> TunnelFrame {
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + max(1, min(chunk, bytes.count)))
            Array(bytes[start..<end]).withUnsafeBytes { reader.append($0) }
            start = end
        }
        return try reader.end()
    }

    static func error(_ bytes: [UInt8], chunk: Int = .max) -> TunnelFrameError? {
        var reader = TunnelFrameReader()
        do throws(TunnelFrameError) { _ = try read(&reader, bytes, chunk: chunk); return nil } catch { return error }
    }

    @Test func aSessionCreateReadsWhole() throws {
        var reader = TunnelFrameReader()
        let f = try Self.read(&reader, Self.message(Self.create))
        #expect(f.type == .sessionCreate && f.id == 7)
        #expect(Array(reader.bytes(f.sessionId)) == Array("s-1".utf8))
        #expect(reader.bytes(f.serviceType, equal: "_SSH"))
        #expect(f.payload.isEmpty)
    }

    @Test(arguments: [1, 2, 3, 5, 17, 100])
    func aFrameSplitAnywhereReadsTheSame(chunk: Int) throws {
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let bytes = Self.message(#"{"frame_type":4,"frame_id":9007199254740991,"session_id":"abc","service_type":""}"#, payload)
        var reader = TunnelFrameReader()
        let f = try Self.read(&reader, bytes, chunk: chunk)
        #expect(f.type == .dataTransport && f.id == TunnelFrame.maxFrameId)
        #expect(Array(reader.bytes(f.payload)) == payload)
        #expect(f.serviceType.isEmpty)
    }

    @Test func messagesOneAfterAnotherEachMakeAFrame() throws {
        var reader = TunnelFrameReader()
        let a = Self.message(#"{"frame_type":4,"frame_id":1,"session_id":"a"}"#, Array("hello".utf8))
        let b = Self.message(#"{"frame_type":3,"frame_id":2,"session_id":"a"}"#)
        let fa = try Self.read(&reader, a, chunk: 4)
        #expect(Array(reader.bytes(fa.payload)) == Array("hello".utf8))
        let fb = try Self.read(&reader, b)
        #expect(fb.type == .sessionRelease && fb.id == 2 && fb.payload.isEmpty)
        // Two frames joined in one message are one frame whose payload holds the second.
        let joined = try Self.read(&reader, a + b)
        #expect(reader.bytes(joined.payload).count == 5 + b.count)
    }

    @Test func aRefusedMessageDoesNotSpoilTheNext() throws {
        var reader = TunnelFrameReader()
        let bad = Self.message(#"{"frame_type":9,"frame_id":1}"#)
        #expect(throws: TunnelFrameError.unknownType(9)) { try Self.read(&reader, bad) }
        let long = [0x09, 0x00] + [UInt8](repeating: 0x20, count: 10)
        #expect(throws: TunnelFrameError.headerTooLong(2304)) { try Self.read(&reader, long) }
        let f = try Self.read(&reader, Self.message(Self.create))
        #expect(f.id == 7)
    }

    @Test func fieldOrderSpacesNullsAndUnknownFieldsAreFine() throws {
        var reader = TunnelFrameReader()
        let f = try Self.read(&reader, Self.message(#" { "x":[1,{"y":null}], "frame_id" : 0 , "service_type":null, "frame_type":1 } "#, Array(#"{"code":0,"msg":""}"#.utf8)))
        #expect(f.type == .commonResponse && f.id == 0 && f.sessionId.isEmpty && f.serviceType.isEmpty)
    }

    @Test func everyRefusal() {
        let m: (String) -> [UInt8] = { Self.message($0) }
        #expect(Self.error([]) == .truncated)
        #expect(Self.error([0x00]) == .truncated)
        #expect(Self.error([0x00, 0x10, 0x7B]) == .truncated)
        #expect(Self.error([0x00, 0x00, 0x7B]) == .emptyHeader)
        #expect(Self.error([0x08, 0x01]) == .headerTooLong(2049))
        #expect(Self.error([0xFF, 0xFF] + [UInt8](repeating: 0, count: 7000)) == .headerTooLong(65535))
        #expect(Self.error(m(#"{"frame_type":2,"#)) == .badJSON(offset: 16))
        #expect(Self.error(m("[1]")) == .notAnObject)
        #expect(Self.error(m(#"{"frame_type":0,"frame_id":1}"#)) == .unknownType(0))
        #expect(Self.error(m(#"{"frame_type":5,"frame_id":1}"#)) == .unknownType(5))
        #expect(Self.error(m(#"{"frame_type":4294967297,"frame_id":1}"#)) == .unknownType(4294967297))
        #expect(Self.error(m(#"{"frame_type":-1,"frame_id":1}"#)) == .badField(.frameType))
        #expect(Self.error(m(#"{"frame_type":1.5,"frame_id":1}"#)) == .badField(.frameType))
        #expect(Self.error(m(#"{"frame_type":"1","frame_id":1}"#)) == .badField(.frameType))
        #expect(Self.error(m(#"{"frame_id":1}"#)) == .missingField(.frameType))
        #expect(Self.error(m(#"{"frame_type":1}"#)) == .missingField(.frameId))
        #expect(Self.error(m(#"{"frame_type":1,"frame_id":9007199254740992}"#)) == .badField(.frameId))
        #expect(Self.error(m(#"{"frame_type":1,"frame_id":-3}"#)) == .badField(.frameId))
        #expect(Self.error(m(#"{"frame_type":1,"frame_id":99999999999999999999}"#)) == .badJSON(offset: 27))
        #expect(Self.error(m(#"{"frame_type":1,"frame_id":1,"frame_id":2}"#)) == .duplicateField(.frameId))
        #expect(Self.error(m(#"{"frame_type":1,"frame_type":1,"frame_id":2}"#)) == .duplicateField(.frameType))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":"a","session_id":"b"}"#)) == .duplicateField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":2,"frame_id":1,"session_id":"a","service_type":"x","service_type":"y"}"#)) == .duplicateField(.serviceType))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1}"#)) == .missingField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":3,"frame_id":1,"session_id":""}"#)) == .missingField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":2,"frame_id":1,"session_id":"a"}"#)) == .missingField(.serviceType))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":7}"#)) == .badField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":"a b"}"#)) == .badField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":"a\"b"}"#)) == .badField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":"é"}"#)) == .badField(.sessionId))
        #expect(Self.error(m(#"{"frame_type":2,"frame_id":1,"session_id":"a","service_type":"_S\nSH"}"#)) == .badField(.serviceType))
        let long = String(repeating: "x", count: 65)
        #expect(Self.error(m(#"{"frame_type":4,"frame_id":1,"session_id":"\#(long)"}"#)) == .fieldTooLong(.sessionId))
        #expect(Self.error(m(#"{"frame_type":2,"frame_id":1,"session_id":"a","service_type":"\#(long)"}"#)) == .fieldTooLong(.serviceType))
    }

    @Test func theBoundsAreInclusive() throws {
        var reader = TunnelFrameReader()
        // A header of exactly 2048 bytes (padded with spaces) and a payload of exactly 4096.
        var header = #"{"frame_type":4,"frame_id":1,"session_id":"\#(String(repeating: "s", count: 64))"}"#
        header += String(repeating: " ", count: TunnelFrame.maxHeader - header.utf8.count)
        let payload = [UInt8](repeating: 0xAB, count: TunnelFrame.maxPayload)
        let f = try Self.read(&reader, Self.message(header, payload), chunk: 1000)
        #expect(reader.bytes(f.payload).count == 4096 && reader.bytes(f.sessionId).count == 64)
        #expect(Self.error(Self.message(header + " ", payload)) == .headerTooLong(2049))
        #expect(Self.error(Self.message(header, payload + [0])) == .payloadTooLong)
        #expect(Self.error(Self.message(Self.create, [UInt8](repeating: 1, count: 20000)), chunk: 333) == .payloadTooLong)
    }

    @Test func aRefusalIsKnownAsSoonAsTheBoundBreaks() {
        var reader = TunnelFrameReader()
        [UInt8(0x08)].withUnsafeBytes { reader.append($0) }
        #expect(reader.refused == nil)
        [UInt8(0x01)].withUnsafeBytes { reader.append($0) }
        #expect(reader.refused == .headerTooLong(2049))
        [UInt8](repeating: 0, count: 100_000).withUnsafeBytes { reader.append($0) }
        #expect(throws: TunnelFrameError.headerTooLong(2049)) { try reader.end() }
        #expect(reader.refused == nil)
    }

    @Test func everyMessageTellsNothingOfTheFrame() {
        for e in [TunnelFrameError.truncated, .emptyHeader, .headerTooLong(3000), .payloadTooLong, .badJSON(offset: 3), .notAnObject,
                  .unknownType(8), .missingField(.sessionId), .duplicateField(.frameId), .badField(.serviceType),
                  .fieldTooLong(.sessionId), .noRoom] {
            #expect(e.message.hasPrefix("tunnel frame"))
        }
    }

    // MARK: writing

    func readBack(_ writer: TunnelFrameWriter) throws -> (TunnelFrame, TunnelFrameReader) {
        var reader = TunnelFrameReader()
        let f = try Self.read(&reader, writer.frame.bytes)
        return (f, reader)
    }

    @Test func aResponseEchoesTheFrameItAnswers() throws {
        var w = TunnelFrameWriter()
        try w.response(to: 7, sessionId: Array("s-1".utf8), code: 0, message: EmptyCollection())
        let (f, r) = try readBack(w)
        #expect(f.type == .commonResponse && f.id == 7 && Array(r.bytes(f.sessionId)) == Array("s-1".utf8))
        #expect(String(decoding: r.bytes(f.payload), as: UTF8.self) == #"{"code":0,"msg":""}"#)
        #expect(w.lastId == 0, "a response takes no id of its own")
        let text = String(decoding: w.frame.bytes.dropFirst(2), as: UTF8.self)
        #expect(text.hasPrefix(#"{"frame_type":1,"frame_id":7,"session_id":"s-1","service_type":""}"#))
    }

    @Test func aRefusalsReasonIsEscaped() throws {
        var w = TunnelFrameWriter()
        try w.response(to: 3, sessionId: Array("s".utf8), code: 101, message: Array("no \"x\"\nhere\\".utf8))
        let (f, r) = try readBack(w)
        let body = String(decoding: r.bytes(f.payload), as: UTF8.self)
        #expect(body == #"{"code":101,"msg":"no \"x\"\u000ahere\\"}"#)
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        try w.response(to: 3, sessionId: Array("s".utf8), code: -1, message: long)
        let (g, r2) = try readBack(w)
        #expect(r2.bytes(g.payload).count == #"{"code":-1,"msg":""}"#.utf8.count + 256)
    }

    @Test func frameIdsIncreaseAndWrap() throws {
        var w = TunnelFrameWriter()
        try w.sessionRelease(sessionId: Array("a".utf8), code: 0, message: Array("local end closed".utf8))
        #expect(try readBack(w).0.id == 1)
        #expect(try w.data(sessionId: Array("a".utf8)) { buf in buf[0] = 0x41; return 1 })
        let (d, r) = try readBack(w)
        #expect(d.type == .dataTransport && d.id == 2 && Array(r.bytes(d.payload)) == [0x41])
        #expect(try !w.data(sessionId: Array("a".utf8)) { _ in 0 }, "nothing read: no frame")
        #expect(w.lastId == 2 && w.frame.isEmpty)
        var end = TunnelFrameWriter(lastId: TunnelFrame.maxFrameId - 1)
        #expect(end.nextId() == TunnelFrame.maxFrameId)
        #expect(end.nextId() == 1)
    }

    @Test func dataFillsAtMostTheBound() throws {
        var w = TunnelFrameWriter()
        var offered = 0
        #expect(try w.data(sessionId: Array("a".utf8)) { buf in offered = buf.count; for i in 0..<buf.count { buf[i] = 1 }; return buf.count })
        #expect(offered == TunnelFrame.maxPayload)
        let (f, r) = try readBack(w)
        #expect(r.bytes(f.payload).count == TunnelFrame.maxPayload)
    }

    @Test func theWriterRefusesWhatTheReaderWould() {
        var w = TunnelFrameWriter()
        #expect(throws: TunnelFrameError.badField(.sessionId)) { try w.sessionRelease(sessionId: Array("a b".utf8), code: 0, message: EmptyCollection()) }
        #expect(throws: TunnelFrameError.badField(.sessionId)) {
            try w.response(to: 1, sessionId: [UInt8](repeating: 0x61, count: 65), code: 0, message: EmptyCollection())
        }
        #expect(throws: TunnelFrameError.badField(.frameId)) { try w.response(to: -1, sessionId: Array("a".utf8), code: 0, message: EmptyCollection()) }
        #expect(w.lastId == 0)
    }
}
