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
    var head: HTTPHead

    public init(maxBytes: Int = 8192) {
        head = HTTPHead(capacity: maxBytes)
    }

    /// Consumes head bytes from `input` at `position`; true once the blank line ends the
    /// head (`position` is then the body's first byte). Throws for a head that is not HTTP,
    /// too long, or has a header wisp cannot honour.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(HTTPResponseError) -> Bool {
        do {
            guard try head.read(input, at: &position) else { return false }
            status = try head.statusCode()
        } catch { throw .malformed(error.why) }
        var fields = head.fields()
        while true {
            let next: HTTPField?
            do { next = try fields.next() } catch { throw .malformed(error.why) }
            guard let field = next else { return true }
            try header(field)
        }
    }

    mutating func header(_ field: HTTPField) throws(HTTPResponseError) {
        let value = field.value
        if field.named("content-length") {
            guard let n = DecimalScan.whole(value), contentLength == nil || contentLength == n else {
                throw .malformed("a bad Content-Length")
            }
            contentLength = n
        } else if field.named("transfer-encoding") {
            chunked = true  // any coding but identity; identity alone is not allowed either (RFC 9112 §6.1)
        } else if field.named("content-range") {
            // bytes first-last/total
            let v = value, s = value.startIndex
            guard v.count > 6, HTTPField.same(v[s..<(s + 6)], "bytes "),
                  let (first, dash) = DecimalScan.digits(v, from: s + 6), dash < v.endIndex, v[dash] == UInt8(ascii: "-"),
                  let (last, slash) = DecimalScan.digits(v, from: dash + 1), slash < v.endIndex, v[slash] == UInt8(ascii: "/"),
                  last >= first, let total = DecimalScan.whole(v[(slash + 1)...]), total > last else {
                throw .malformed("a bad Content-Range")
            }
            rangeFirst = first
            rangeTotal = total
        }
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
