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
                // "HTTP/1.1 200 Connection established"
                guard response.count >= 12, response.bytes(0..<5, equal: "HTTP/") else { throw .malformed }
                var i = 0
                while i < response.count && response[i] != 0x20 { i += 1 }
                var code = 0
                for j in (i + 1)..<min(i + 4, response.count) {
                    let d = response[j]
                    guard d >= 0x30 && d <= 0x39 else { throw .malformed }
                    code = code * 10 + Int(d - 0x30)
                }
                if code < 200 || code > 299 { throw .refused(code) }
                return true
            }
        }
        return false
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
