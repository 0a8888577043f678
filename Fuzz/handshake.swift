// HTTP upgrade response parser: never reads past its input, stops right after the blank
// line, and any split gives the same verdict; for MQTT's subprotocol and the secure
// tunnel's alike.
private func verdict(_ pieces: [[UInt8]], subprotocol: String) -> String {
    var hs = WebSocketHandshake(key: .rfcExample, subprotocol: subprotocol, maxResponseBytes: 2048)
    return splitVerdict(pieces) { (raw, pos) throws(WebSocketHandshakeError) in try hs.parse(raw, at: &pos) }
}

func fuzz_handshake(_ bytes: [UInt8]) {
    for subprotocol in ["mqtt", "aliyun.iot.securetunnel-v1.1"] {
        let whole = verdict([bytes], subprotocol: subprotocol)
        check(whole == verdict(chunks(bytes), subprotocol: subprotocol), "split changes the verdict")
        _ = endsAtBlankLine(whole, bytes)
    }
}
