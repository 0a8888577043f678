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
