// HTTP upgrade response parser: never reads past its input, stops right after the blank
// line, and any split gives the same verdict.
func verdict(_ pieces: [[UInt8]]) -> String {
    var hs = WebSocketHandshake(key: .rfcExample, maxResponseBytes: 2048)
    var consumed = 0
    for piece in pieces {
        var result = ""
        piece.withUnsafeBytes { raw in
            var pos = 0
            do throws(WebSocketHandshakeError) {
                let done = try hs.parse(raw, at: &pos)
                check(pos <= raw.count, "position past input")
                consumed += pos
                if done { result = "ok at \(consumed)" }
            } catch { result = "error \(error)" }
        }
        if !result.isEmpty { return result }
    }
    return "incomplete"
}

func fuzzOne(_ bytes: [UInt8]) {
    let whole = verdict([bytes])
    check(whole == verdict(chunks(bytes)), "split changes the verdict")
    if whole.hasPrefix("ok at ") {
        let end = Int(whole.dropFirst(6))!
        check(end >= 4 && Array(bytes[(end - 4)..<end]) == [13, 10, 13, 10], "stops right after CRLF CRLF")
    }
}
