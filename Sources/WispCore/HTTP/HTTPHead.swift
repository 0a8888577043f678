/// The head of an HTTP/1.x response (RFC 9112 §2.1): the status line and the field lines
/// up to the blank line. The one reader under the proxy's answer to CONNECT
/// (`HTTPConnect`), the OTA package server's answer (`HTTPResponseHead`) and the WebSocket
/// upgrade (`WebSocketHandshake`); each judges only what it needs of it.
///
/// `read` takes the bytes as they arrive, in pieces of any size, into a buffer of fixed
/// capacity, and stops right after the blank line (CR LF CR LF), so what follows in the
/// same read — the tunnelled stream, the body, WebSocket frames — stays with the caller.
/// Nothing is judged before the head is whole, so a head gives the same verdict however it
/// is split. Then `statusCode()` reads the status line and `fields()` the field lines, in
/// order, each line checked when it is reached (a caller that stops early checks no more).
struct HTTPHead {
    var bytes: ByteBuffer
    var tail: UInt32 = 0  // the last four bytes read, to find CR LF CR LF

    init(capacity: Int) {
        bytes = ByteBuffer(capacity: capacity)
    }

    var capacity: Int { bytes.capacity }

    /// Consumes head bytes from `input` at `position`; true once the blank line is read
    /// (`position` is then just after it). Throws `.tooLong` for a byte that does not fit.
    mutating func read(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(HTTPHeadError) -> Bool {
        while position < input.count {
            let b = input[position]
            position += 1
            if bytes.available == 0 { throw .tooLong(bytes.capacity) }
            bytes.put(b)
            tail = tail << 8 | UInt32(b)
            if tail == 0x0D0A_0D0A { return true }
        }
        return false
    }

    /// The status code of a whole head's status line, `HTTP/version SP 3DIGIT (SP reason)?`
    /// and CR LF (RFC 9112 §4), at least as long as "HTTP/1.1 200"; else `.statusLine`, or
    /// `.bareCR` when the line's CR is not followed by LF.
    func statusCode() throws(HTTPHeadError) -> Int {
        let h = bytes.written
        guard let end = h.firstIndex(of: 0x0D), end >= 12, bytes.bytes(0..<5, equal: "HTTP/") else { throw .statusLine }
        var i = 5
        while i < end && h[i] != 0x20 { i += 1 }
        // i is the space after the version; three digits follow, then a space or the end.
        guard i < end, let (code, after) = DecimalScan.digits(h[..<end], from: i + 1, maxDigits: 3), after == i + 4,
              after == end || h[after] == 0x20 else { throw .statusLine }
        guard end + 1 < h.endIndex, h[end + 1] == 0x0A else { throw .bareCR }
        return Int(code)
    }

    /// The field lines of a whole head, after its status line.
    func fields() -> Fields {
        let h = bytes.written
        let statusEnd = h.firstIndex(of: 0x0D) ?? h.endIndex
        return Fields(head: h, position: min(statusEnd + 2, h.endIndex))
    }

    /// The field lines one at a time, up to the blank line.
    struct Fields {
        let head: ArraySlice<UInt8>
        var position: Int

        /// The next field; nil at the blank line. A line ends in CR LF (a CR before
        /// anything else is `.bareCR`, RFC 9112 §2.2) and holds a colon (`.noColon`).
        mutating func next() throws(HTTPHeadError) -> HTTPField? {
            guard let end = head[position...].firstIndex(of: 0x0D), end + 1 < head.endIndex, head[end + 1] == 0x0A else {
                throw .bareCR
            }
            if end == position { return nil }  // the blank line
            let line = head[position..<end]
            position = end + 2
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .noColon }
            return HTTPField(name: line[..<colon], value: DecimalScan.trimmed(line[(colon + 1)...]))
        }
    }
}

/// One header field of a response head: the name as sent, the value without the spaces
/// and tabs around it. Both point into the head's buffer (no copy).
struct HTTPField {
    let name: ArraySlice<UInt8>
    let value: ArraySlice<UInt8>

    /// The name is `lower` in any case (field names are case-insensitive, RFC 9110 §5.1).
    func named(_ lower: StaticString) -> Bool { HTTPField.same(name, lower) }

    /// The value is `lower` in any case.
    func valueIs(_ lower: StaticString) -> Bool { HTTPField.same(value, lower) }

    /// The comma-separated value lists `lower` (in any case, spaces around it allowed).
    func valueLists(_ lower: StaticString) -> Bool {
        var start = value.startIndex
        for i in value.startIndex...value.endIndex where i == value.endIndex || value[i] == UInt8(ascii: ",") {
            if HTTPField.same(DecimalScan.trimmed(value[start..<i]), lower) { return true }
            start = i + 1
        }
        return false
    }

    /// ASCII case-insensitive comparison of bytes with a lowercase literal.
    static func same(_ bytes: ArraySlice<UInt8>, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        var equal = true
        lower.withUTF8Buffer { l in
            var i = 0
            for b in bytes {
                let c = b >= 0x41 && b <= 0x5A ? b + 0x20 : b
                if c != l[i] { equal = false; return }
                i += 1
            }
        }
        return equal
    }
}

/// What is wrong with a response head, before any caller's own checks.
enum HTTPHeadError: Error, Equatable, Sendable {
    /// The head does not fit in this many bytes.
    case tooLong(Int)
    case statusLine
    case bareCR
    case noColon

    /// What a log line says after "the server's answer is not usable HTTP: ".
    var why: String {
        switch self {
        case .tooLong(let n): "a response head longer than \(n) bytes"
        case .statusLine: "the status line is not HTTP/1.x"
        case .bareCR: "a bare CR in the head"
        case .noColon: "a header line without a colon"
        }
    }
}
