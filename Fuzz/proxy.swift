// HTTP CONNECT response parser (the proxy's answer): never reads past its input, stops
// right after the blank line, any split gives the same verdict, and a verdict of "open"
// means a 2xx status line.
func verdict(_ pieces: [[UInt8]]) -> String {
    var parser = HTTPConnect(maxResponseBytes: 1024)
    var consumed = 0
    for piece in pieces {
        var result = ""
        piece.withUnsafeBytes { raw in
            var pos = 0
            do throws(HTTPConnectError) {
                let done = try parser.parse(raw, at: &pos)
                check(pos <= raw.count, "position past input")
                consumed += pos
                if done { result = "open at \(consumed)" }
            } catch { result = "error \(error)" }
        }
        if !result.isEmpty { return result }
    }
    return "incomplete"
}

func fuzzOne(_ bytes: [UInt8]) {
    let whole = verdict([bytes])
    check(whole == verdict(chunks(bytes)), "split changes the verdict")
    if whole.hasPrefix("open at ") {
        let end = Int(whole.dropFirst(8))!
        check(end >= 4 && Array(bytes[(end - 4)..<end]) == [13, 10, 13, 10], "stops right after CRLF CRLF")
        check(Array(bytes[0..<5]) == Array("HTTP/".utf8), "opened on a line that is not HTTP")
        let space = bytes.firstIndex(of: 0x20)!
        check(bytes[space + 1] == UInt8(ascii: "2"), "opened on a status that is not 2xx")
    }
}
