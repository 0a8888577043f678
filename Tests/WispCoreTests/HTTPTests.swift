import Testing
@testable import WispCore

@Suite("HTTP response head: the one reader")
struct HTTPHeadTests {
    /// Reads `text` in pieces of `chunk` bytes: the head and the offset just after it, or
    /// nil when the text ends first.
    func read(_ text: String, chunk: Int = .max, capacity: Int = 512) throws -> (head: HTTPHead, end: Int)? {
        var head = HTTPHead(capacity: capacity)
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = start + min(chunk, bytes.count - start)
            var position = 0
            let done = try bytes[start..<end].withUnsafeBytes { try head.read($0, at: &position) }
            if done { return (head, start + position) }
            #expect(position == end - start, "a piece is read whole until the head ends")
            start = end
        }
        return nil
    }

    func fields(_ head: HTTPHead) throws -> [String] {
        var fields = head.fields()
        var out: [String] = []
        while let f = try fields.next() {
            out.append(String(decoding: f.name, as: UTF8.self) + "=" + String(decoding: f.value, as: UTF8.self))
        }
        return out
    }

    static let response = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length:  5 \r\n\r\n"

    @Test func stopsRightAfterTheBlankLineWhereverThePiecesAreCut() throws {
        let text = Self.response + "BODY\r\n\r\n"
        for chunk in 1...text.utf8.count {
            let r = try #require(try read(text, chunk: chunk), "chunk \(chunk)")
            #expect(r.end == Self.response.utf8.count, "chunk \(chunk)")
            #expect(try r.head.statusCode() == 200)
            #expect(try fields(r.head) == ["Server=x", "Content-Length=5"])
        }
        #expect(try read("HTTP/1.1 200 OK\r\nX: y\r\n\r") == nil, "no blank line yet")
    }

    @Test func aHeadMayFillTheBufferButNotOverflowIt() throws {
        let text = "HTTP/1.1 200 OK\r\n\r\n"
        #expect(try read(text, capacity: text.utf8.count) != nil)
        #expect(throws: HTTPHeadError.tooLong(text.utf8.count - 1)) { try read(text, capacity: text.utf8.count - 1) }
        #expect(throws: HTTPHeadError.tooLong(16)) { try read(text, chunk: 1, capacity: 16) }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK", 200), ("HTTP/1.0 200", 200), ("HTTP/1.1 101 Switching Protocols", 101), ("HTTP/ 407 Auth", 407),
    ])
    func statusLines(line: String, code: Int) throws {
        let head = try #require(try read(line + "\r\n\r\n")).head
        #expect(try head.statusCode() == code)
    }

    @Test(arguments: [
        ("HTTP/1.1200", HTTPHeadError.statusLine),        // no space
        ("HTTP/1.1 20", .statusLine),
        ("HTTP/1.1 2000 OK", .statusLine),
        ("HTTP/1.1 2x0 OK", .statusLine),
        ("HTTP/1.1 101x", .statusLine),                    // a reason is set off by a space
        ("HTTP/1 200", .statusLine),                       // shorter than "HTTP/1.1 200"
        ("HTTP/1.1", .statusLine),
        ("FTP/1.0 200 OK", .statusLine),
        ("SSH-2.0-OpenSSH_9.2", .statusLine),
        ("", .statusLine),
        ("HTTP/1.1 200 OK\rX", .bareCR),                   // RFC 9112 §2.2
    ])
    func badStatusLines(line: String, error: HTTPHeadError) throws {
        let head = try #require(try read(line + "\r\n\r\n")).head
        #expect(throws: error) { try head.statusCode() }
    }

    @Test func fieldsAreCheckedOnlyWhenReached() throws {
        let head = try #require(try read("HTTP/1.1 200 OK\r\nA:1\r\nno colon\r\nB: \r" + "2\r\n\r\n")).head
        var fields = head.fields()
        let a = try #require(try fields.next())
        #expect(a.named("a") && a.valueIs("1"))
        #expect(throws: HTTPHeadError.noColon) { try fields.next() }
        #expect(throws: HTTPHeadError.bareCR) { try fields.next() }
    }

    @Test func namesAndValuesCompareWithoutCase() throws {
        let head = try #require(try read("HTTP/1.1 101 x\r\nCONNECTION: keep-alive ,Upgrade\r\nUpgrade:\tWebSocket\r\nEmpty:\r\n\r\n")).head
        var fields = head.fields()
        let connection = try #require(try fields.next())
        #expect(connection.named("connection") && !connection.named("connectio"))
        #expect(connection.valueLists("upgrade") && connection.valueLists("keep-alive") && !connection.valueLists("close"))
        let upgrade = try #require(try fields.next())
        #expect(upgrade.valueIs("websocket") && !upgrade.valueLists("web"))
        let empty = try #require(try fields.next())
        #expect(empty.value.isEmpty && !empty.valueLists("x"))
        #expect(try fields.next() == nil)
        #expect(try fields.next() == nil, "the blank line ends the fields for good")
    }
}

@Suite("HTTP CONNECT response (proxy)")
struct HTTPConnectTests {
    func verdict(_ text: String) -> Result<Int, HTTPConnectError> {
        var parser = HTTPConnect(maxResponseBytes: 512)
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in
            var pos = 0
            do throws(HTTPConnectError) {
                return try parser.parse(raw, at: &pos) ? .success(pos) : .success(-1)
            } catch { return .failure(error) }
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 Connection established\r\n\r\n", 39),
        ("HTTP/1.0 200\r\nProxy-Agent: squid\r\n\r\n", 36),
    ])
    func opensOn2xx(response: String, end: Int) {
        #expect(verdict(response + "\u{16}\u{03}") == .success(end), "stops at the blank line")
    }

    @Test(arguments: [
        ("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", HTTPConnectError.refused(407)),
        ("HTTP/1.1 502 Bad Gateway\r\n\r\n", .refused(502)),
        ("HTTP/1.1200\r\n\r\n", .malformed),              // no space: used to build an invalid range and abort
        ("HTTP/1.1\r\n\r\n\r\n\r\n", .malformed),
        ("HTTP/1.1 20\r\n\r\n", .malformed),
        ("HTTP/1.1 2000 OK\r\n\r\n", .malformed),
        ("HTTP/1.1 2x0 OK\r\n\r\n", .malformed),
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", .malformed),
        ("\r\n\r\n", .malformed),
        ("HTTP/1 200\r\n\r\n", .malformed),              // a status line shorter than "HTTP/1.1 200"
        ("HTTP/1.1 200 OK\r\n" + String(repeating: "x", count: 500) + "\r\n\r\n", .malformed),  // over 512 bytes
    ])
    func refusesOrRejects(response: String, error: HTTPConnectError) {
        #expect(verdict(response) == .failure(error))
    }
}

@Suite("HTTP GET of an OTA package: the request and the response head")
struct HTTPGetTests {
    func head(_ text: String, chunk: Int = .max) throws -> (HTTPResponseHead, rest: Int) {
        var h = HTTPResponseHead(maxBytes: 512)
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            var position = 0
            let done = try bytes[start..<end].withUnsafeBytes { try h.parse($0, at: &position) }
            if done { return (h, start + position) }
            start = end
        }
        throw HTTPResponseError.malformed("incomplete")
    }

    @Test(arguments: [1, 3, Int.max])
    func aPartialContentHeadIsParsedInAnyPieces(chunk: Int) throws {
        let text = "HTTP/1.1 206 Partial Content\r\ncontent-RANGE: bytes 100-4095/4096\r\nContent-Length: 3996\r\n\r\nBODY"
        let (h, rest) = try head(text, chunk: chunk)
        #expect(h.status == 206 && h.rangeFirst == 100 && h.rangeTotal == 4096 && h.contentLength == 3996 && !h.chunked)
        #expect(rest == text.utf8.count - 4, "the body starts right after the blank line")
    }

    @Test func chunkedIsNoticed() throws {
        let (h, _) = try head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(h.status == 200 && h.chunked && h.contentLength == nil)
    }

    @Test(arguments: [
        ("FTP/1.0 200 OK\r\n\r\n", "the status line is not HTTP/1.x"),
        ("HTTP/1.1 206 x\r\nContent-Range: bytes 9-1/10\r\n\r\n", "a bad Content-Range"),
        ("HTTP/1.1 206 x\r\nContent-Range: bytes 0-9/9\r\n\r\n", "a bad Content-Range"),
        ("HTTP/1.1 200 x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "a bad Content-Length"),
        ("HTTP/1.1 200 x\r\nno colon here\r\n\r\n", "a header line without a colon"),
        ("HTTP/1.1 200 x\r\nX: \r" + "a\n\r\n\r\n", "a bare CR in the head"),
        ("HTTP/1.1 200 x\r" + "a\r\n\r\n", "a bare CR in the head"),
        ("HTTP/1.1 200 x\r\nX: " + String(repeating: "y", count: 600) + "\r\n\r\n", "a response head longer than 512 bytes"),
    ])
    func badHeadsAreRefused(text: String, why: String) {
        #expect(throws: HTTPResponseError.malformed(why)) { _ = try head(text) }
        #expect(HTTPResponseError.malformed(why).message == "the server's answer is not usable HTTP: " + why)
    }

    @Test func theRequestAsksForTheRest() {
        #expect(HTTPGet.request(host: "h:8443", target: "/f?a=1", from: 0, userAgent: "wisp/1")
                == "GET /f?a=1 HTTP/1.1\r\nHost: h:8443\r\nUser-Agent: wisp/1\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n")
        #expect(HTTPGet.request(host: "h", target: "/f", from: 1234, userAgent: "wisp/1").contains("\r\nRange: bytes=1234-\r\n"))
    }
}
