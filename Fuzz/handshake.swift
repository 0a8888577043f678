// HTTP upgrade response parser: never reads past its input, stops right after the blank
// line, and any split gives the same verdict.
private func verdict(_ pieces: [[UInt8]]) -> String {
    var hs = WebSocketHandshake(key: .rfcExample, maxResponseBytes: 2048)
    return splitVerdict(pieces) { (raw, pos) throws(WebSocketHandshakeError) in try hs.parse(raw, at: &pos) }
}

func fuzz_handshake(_ bytes: [UInt8]) {
    let whole = verdict([bytes])
    check(whole == verdict(chunks(bytes)), "split changes the verdict")
    _ = endsAtBlankLine(whole, bytes)
}
