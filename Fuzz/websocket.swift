// WebSocket frame decoder: any split gives the same verdict and, for valid input, the same
// events (data coalesced); data ranges
// lie inside the input; positions advance.
private enum Item: Equatable { case begin(Bool), data([UInt8]), end, ping([UInt8]), pong, close(UInt16?, [UInt8]) }

private func frames(_ pieces: [[UInt8]]) -> ([Item], WebSocketFrameError?) {
    var decoder = WebSocketFrameDecoder(maxMessageSize: 1 << 16)
    var items: [Item] = []
    for piece in pieces {
        var failure: WebSocketFrameError?
        piece.withUnsafeBytes { raw in
            var pos = 0
            while true {
                let event: WebSocketEvent?
                do throws(WebSocketFrameError) { event = try decoder.next(raw, at: &pos) } catch { failure = error; return }
                check(pos <= raw.count, "position past input")
                guard let e = event else { return }
                switch e {
                case .messageBegin(let b): items.append(.begin(b))
                case .data(let r):
                    check(r.lowerBound >= 0 && r.upperBound <= raw.count, "data range inside input")
                    if case .data(let prev)? = items.last { items[items.count - 1] = .data(prev + Array(raw[r])) } else { items.append(.data(Array(raw[r]))) }
                case .messageEnd: items.append(.end)
                case .ping(let r): items.append(.ping(Array(decoder.control.bytes[r])))
                case .pong: items.append(.pong)
                case .close(let c, let r): items.append(.close(c, Array(decoder.control.bytes[r])))
                }
            }
        }
        if let failure { return (items, failure) }
    }
    return (items, nil)
}

func fuzz_websocket(_ bytes: [UInt8]) {
    let whole = frames([bytes])
    let split = frames(chunks(bytes))
    // The same verdict either way; the same events when the stream is valid (on an error,
    // a split may have let a valid prefix of the bad frame through first).
    check(whole.1 == split.1, "split changes the error")
    if whole.1 == nil { check(whole.0 == split.0, "split changes the events") }
}
