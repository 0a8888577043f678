// The secure tunnel (issue 28): its frame reader and its notify. The first byte picks:
// 0, a message read by TunnelFrameReader whole and in the input's own pieces (the same
// verdict either way; an accepted frame keeps every bound and, written again by
// TunnelFrameWriter, reads back the same); 1, a server's WebSocket byte stream whose binary
// messages go through the frame decoder into one reader (each message's verdict is what a
// fresh reader says of it: nothing leaks from one message to the next); 2, a notify or
// proxy request_reply (an endpoint taken has a usable host, port, path and token, and prints
// the same whatever the token's bytes; a refusal has no raw control byte).
func fuzz_tunnel(_ bytes: [UInt8]) {
    guard let selector = bytes.first else { return }
    let input = Array(bytes.dropFirst())
    switch selector % 3 {
    case 0:
        var whole = TunnelFrameReader()
        let verdict = tunnelVerdict(&whole, [input])
        var split = TunnelFrameReader()
        check(tunnelVerdict(&split, chunks(input)) == verdict, "a split changes the verdict")
        if case .success(let frame) = readTunnel(&whole, [input]) { tunnelRoundTrip(frame, whole) }
    case 1:
        tunnelStream(input)
    default:
        tunnelNotify(input)
    }
}

func readTunnel(_ reader: inout TunnelFrameReader, _ pieces: [[UInt8]]) -> Result<TunnelFrame, TunnelFrameError> {
    for piece in pieces { piece.withUnsafeBytes { reader.append($0) } }
    do throws(TunnelFrameError) { return .success(try reader.end()) } catch { return .failure(error) }
}

/// A frame's verdict with its fields' bytes (not their ranges: readers may differ in where).
func tunnelVerdict(_ reader: inout TunnelFrameReader, _ pieces: [[UInt8]]) -> String {
    switch readTunnel(&reader, pieces) {
    case .failure(let e):
        check(!e.message.isEmpty, "an error without a message")
        return "error \(e)"
    case .success(let f):
        let end = 2 + TunnelFrame.maxHeader + TunnelFrame.maxPayload
        for r in [f.sessionId, f.serviceType, f.payload] { check(r.lowerBound >= 0 && r.upperBound <= end, "a range outside the buffer") }
        check(f.payload.count <= TunnelFrame.maxPayload, "payload past its bound")
        check(TunnelFrame.isName(reader.bytes(f.sessionId)) && TunnelFrame.isName(reader.bytes(f.serviceType)), "a name not bounded")
        check(f.id >= 0 && f.id <= TunnelFrame.maxFrameId, "frame id out of range")
        check(f.type == .commonResponse || !f.sessionId.isEmpty, "a session frame without a session")
        check(f.type != .sessionCreate || !f.serviceType.isEmpty, "a session_create without a service")
        return "frame \(f.type.rawValue) \(f.id) \(Array(reader.bytes(f.sessionId))) \(Array(reader.bytes(f.serviceType))) \(Array(reader.bytes(f.payload)))"
    }
}

/// The frame written again reads back with the same fields.
func tunnelRoundTrip(_ f: TunnelFrame, _ reader: TunnelFrameReader) {
    let session = Array(reader.bytes(f.sessionId)), payload = Array(reader.bytes(f.payload))
    var w = TunnelFrameWriter(lastId: f.id)
    var back = TunnelFrameReader()
    do throws(TunnelFrameError) {
        if f.type == .dataTransport {
            let made = try w.data(sessionId: session) { room in
                check(room.count == TunnelFrame.maxPayload, "data offered other than the payload bound")
                for (i, b) in payload.enumerated() { room[i] = b }
                return payload.count
            }
            check(made == !payload.isEmpty, "a data frame made from nothing")
            if !made { return }
        } else {
            try w.response(to: f.id, sessionId: session, code: f.id % 7 - 3, message: payload)
        }
    } catch { check(false, "a frame read cannot be written: \(error)"); return }
    let again: TunnelFrame
    do throws(TunnelFrameError) {
        w.frame.bytes.withUnsafeBytes { back.append($0) }
        again = try back.end()
    } catch { check(false, "a written frame does not read: \(error)"); return }
    check(Array(back.bytes(again.sessionId)) == session, "session id round trip")
    if f.type == .dataTransport {
        check(again.type == .dataTransport && again.id == w.lastId && Array(back.bytes(again.payload)) == payload, "data round trip")
    } else {
        check(again.type == .commonResponse && again.id == f.id, "response round trip")
        back.withBytes(again.payload) { body in check((try? JSONReader(body)) != nil, "a response body is not JSON") }
    }
}

/// A server's byte stream: each binary message into one reader, each verdict checked
/// against a fresh reader's.
func tunnelStream(_ input: [UInt8]) {
    var decoder = WebSocketFrameDecoder(maxMessageSize: 1 << 16)
    var reader = TunnelFrameReader()
    var message: [[UInt8]] = []
    var messages = 0
    var broken = false
    for piece in chunks(input) where !broken {
        piece.withUnsafeBytes { raw in
            var pos = 0
            while pos < raw.count, messages < 64 {
                let event: WebSocketEvent?
                do { event = try decoder.next(raw, at: &pos) } catch { broken = true; return }
                guard let event else { return }
                switch event {
                case .data(let r):
                    let bytes = Array(raw[r])
                    message.append(bytes)
                    bytes.withUnsafeBytes { reader.append($0) }
                case .messageEnd:
                    let seen = tunnelVerdict(&reader, [])
                    var fresh = TunnelFrameReader()
                    check(tunnelVerdict(&fresh, message) == seen, "a message's verdict depends on the one before")
                    message = []
                    messages += 1
                default:
                    break
                }
            }
        }
    }
}

func tunnelNotify(_ input: [UInt8]) {
    let n = input.withUnsafeBytes { TunnelNotify.parse($0) }
    switch n {
    case .open(let e):
        check(TunnelNotify.isHost(e.host) && e.host.utf8.count <= TunnelNotify.maxHost, "an unusable host taken")
        check(TunnelNotify.isPath(e.path) && e.port >= 1, "an unusable path or port taken")
        check(e.token.withBytes { TunnelNotify.isToken($0) }, "an unusable token taken")
        check(TunnelFrame.isName(e.tunnelId.utf8) && !e.tunnelId.isEmpty, "an unusable tunnel id taken")
        check((e.tokenExpire ?? 0) >= 0 && (e.tokenExpire ?? 0) <= TunnelNotify.maxTokenExpire, "token_expire out of range")
        // Printed, the endpoint is the same whatever its token's bytes: none of them shows.
        var other = e
        other.token = TunnelToken(e.token.withBytes { $0.map { $0 == 0x21 ? 0x22 : 0x21 } })
        check(e.description == other.description && "\(e)" == "\(other)" && String(reflecting: e) == String(reflecting: other)
              && "\(n)" == "\(TunnelNotify.open(other))" && String(reflecting: n) == String(reflecting: TunnelNotify.open(other)),
              "the token printed")
    case .close(let id, let reason):
        check(TunnelFrame.isName(id.utf8) && !id.isEmpty, "an unusable tunnel id closed")
        check(!reason.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), "a raw control byte in a close reason")
    case .invalid(let why):
        check(!why.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), "a raw control byte in a refusal")
    }
}
