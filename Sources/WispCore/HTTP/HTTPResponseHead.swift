/// A GET of one file (an OTA package), resumable: the request, and the response's status
/// line and headers parsed as they arrive (RFC 9110, RFC 9112). What wisp accepts is narrow:
/// 200 with the whole file, 206 with `Content-Range: bytes N-M/T` starting where it asked,
/// a `Content-Length` (no chunked transfer coding: object stores always send a length).
public enum HTTPGet {
    /// `target` is the path and query (`/ota/x.bin?Expires=…`), `host` the Host header;
    /// `from` > 0 asks for the rest of the file (`Range: bytes=from-`).
    public static func request(host: String, target: String, from offset: Int64, userAgent: String) -> String {
        var r = "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + userAgent + "\r\nAccept-Encoding: identity\r\n"
        if offset > 0 { r += "Range: bytes=\(offset)-\r\n" }
        return r + "Connection: close\r\n\r\n"
    }
}

public struct HTTPResponseHead {
    public private(set) var status = 0
    /// The body's length (`Content-Length`), if given.
    public private(set) var contentLength: Int64?
    /// `Content-Range: bytes first-last/total` of a 206.
    public private(set) var rangeFirst: Int64?
    public private(set) var rangeTotal: Int64?
    public private(set) var chunked = false
    var head: ByteBuffer
    var tail: UInt32 = 0

    public init(maxBytes: Int = 8192) {
        head = ByteBuffer(capacity: maxBytes)
    }

    /// Consumes head bytes from `input` at `position`; true once the blank line ends the
    /// head (`position` is then the body's first byte). Throws for a head that is not HTTP,
    /// too long, or has a header wisp cannot honour.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(HTTPResponseError) -> Bool {
        while position < input.count {
            let b = input[position]
            position += 1
            if head.available == 0 { throw .malformed("a response head longer than \(head.capacity) bytes") }
            head.put(b)
            tail = tail << 8 | UInt32(b)
            if tail == 0x0D0A_0D0A {
                try finish()
                return true
            }
        }
        return false
    }

    mutating func finish() throws(HTTPResponseError) {
        do { status = try HTTPConnect.statusCode(head) } catch { throw .malformed("the status line is not HTTP/1.x") }
        let h = head.written
        // The head ends with CR LF CR LF, so every line below finds its CR.
        guard var i = h.firstIndex(of: 0x0D) else { return }
        i += 2  // after the status line
        while i < h.count {
            guard let end = h[i...].firstIndex(of: 0x0D), end + 1 < h.count, h[end + 1] == 0x0A else {
                throw .malformed("a bare CR in the head")
            }
            if end == i { break }  // the blank line
            try header(h[i..<end])
            i = end + 2
        }
    }

    mutating func header(_ line: ArraySlice<UInt8>) throws(HTTPResponseError) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformed("a header line without a colon") }
        let name = line[line.startIndex..<colon]
        let value = DecimalScan.trimmed(line[(colon + 1)...])
        if HTTPResponseHead.named(name, "content-length") {
            guard let n = DecimalScan.whole(value), contentLength == nil || contentLength == n else {
                throw .malformed("a bad Content-Length")
            }
            contentLength = n
        } else if HTTPResponseHead.named(name, "transfer-encoding") {
            chunked = true  // any coding but identity; identity alone is not allowed either (RFC 9112 §6.1)
        } else if HTTPResponseHead.named(name, "content-range") {
            // bytes first-last/total
            let v = Array(value)
            guard v.count > 6, HTTPResponseHead.named(v[0..<6], "bytes "),
                  let (first, dash) = DecimalScan.digits(v, from: 6), dash < v.count, v[dash] == UInt8(ascii: "-"),
                  let (last, slash) = DecimalScan.digits(v, from: dash + 1), slash < v.count, v[slash] == UInt8(ascii: "/"),
                  last >= first, let total = DecimalScan.whole(v[(slash + 1)...]), total > last else {
                throw .malformed("a bad Content-Range")
            }
            rangeFirst = first
            rangeTotal = total
        }
    }

    /// ASCII case-insensitive comparison of a header name with a lowercase literal.
    static func named(_ bytes: ArraySlice<UInt8>, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        var same = true
        lower.withUTF8Buffer { l in
            var i = 0
            for b in bytes {
                let c = b >= 0x41 && b <= 0x5A ? b + 0x20 : b
                if c != l[i] { same = false; return }
                i += 1
            }
        }
        return same
    }
}

public enum HTTPResponseError: Error, Equatable, Sendable {
    case malformed(String)

    public var message: String {
        switch self {
        case .malformed(let why): "the server's answer is not usable HTTP: " + why
        }
    }
}
