// HTTP CONNECT response parser (the proxy's answer): never reads past its input, stops
// right after the blank line, any split gives the same verdict, and "done" means a 2xx
// status line.
private func verdict(_ pieces: [[UInt8]]) -> String {
    var parser = HTTPConnect(maxResponseBytes: 1024)
    return splitVerdict(pieces) { (raw, pos) throws(HTTPConnectError) in try parser.parse(raw, at: &pos) }
}

func fuzz_proxy(_ bytes: [UInt8]) {
    let whole = verdict([bytes])
    check(whole == verdict(chunks(bytes)), "split changes the verdict")
    if endsAtBlankLine(whole, bytes) != nil {
        check(Array(bytes[0..<5]) == Array("HTTP/".utf8), "opened on a line that is not HTTP")
        let space = bytes.firstIndex(of: 0x20)!
        check(bytes[space + 1] == UInt8(ascii: "2"), "opened on a status that is not 2xx")
    }
}
