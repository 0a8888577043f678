/// An HTTP CONNECT tunnel (RFC 9110 §9.3.6): how a device behind a site proxy reaches
/// port 443. The request asks for `host:port`; the response must be 2xx.
public struct HTTPConnect {
    var response: ByteBuffer
    var tail: UInt32 = 0

    public init(maxResponseBytes: Int = 4096) {
        response = ByteBuffer(capacity: maxResponseBytes)
    }

    /// `authority` is `host:port` (IPv6 in brackets).
    public static func request(authority: String) -> String {
        "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
    }

    /// Consumes response bytes; true once the tunnel is open. Stops right after the blank
    /// line so nothing of the tunnelled stream is taken.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(HTTPConnectError) -> Bool {
        while position < input.count {
            let b = input[position]
            position += 1
            if response.available == 0 { throw .malformed }
            response.put(b)
            tail = tail << 8 | UInt32(b)
            if tail == 0x0D0A_0D0A {
                let code = try HTTPConnect.statusCode(response)
                if code < 200 || code > 299 { throw .refused(code) }
                return true
            }
        }
        return false
    }
}

extension HTTPConnect {
    /// The status code of `HTTP/1.x SP 3DIGIT (SP reason)? CRLF` (RFC 9112 §4); anything
    /// else is `.malformed`.
    static func statusCode(_ r: ByteBuffer) throws(HTTPConnectError) -> Int {
        // "HTTP/1.1 200\r\n" is the shortest: 14 bytes with the "HTTP/" prefix.
        guard r.count >= 14, r.bytes(0..<5, equal: "HTTP/") else { throw .malformed }
        var i = 5
        while i < r.count && r[i] != 0x20 && r[i] != 0x0D { i += 1 }
        // i is the space after the version; three digits and then a space or CR follow.
        guard i + 4 < r.count, r[i] == 0x20,
              let (code, end) = DecimalScan.digits(r.written, from: i + 1, maxDigits: 3), end == i + 4,
              r[end] == 0x20 || r[end] == 0x0D else { throw .malformed }
        return Int(code)
    }
}

public enum HTTPConnectError: Error, Equatable, Sendable {
    case refused(Int)
    case malformed

    public var message: String {
        switch self {
        case .refused(407): "the proxy wants authentication (HTTP 407)"
        case .refused(let code): "the proxy refused the tunnel with HTTP \(code)"
        case .malformed: "the proxy's answer to CONNECT is not HTTP"
        }
    }
}
