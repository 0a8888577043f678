/// An HTTP CONNECT tunnel (RFC 9110 §9.3.6): how a device behind a site proxy reaches
/// port 443. The request asks for `host:port`; the response must be 2xx.
public struct HTTPConnect {
    var head: HTTPHead

    public init(maxResponseBytes: Int = 4096) {
        head = HTTPHead(capacity: maxResponseBytes)
    }

    /// `authority` is `host:port` (IPv6 in brackets).
    public static func request(authority: String) -> String {
        "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
    }

    /// Consumes response bytes; true once the tunnel is open. Stops right after the blank
    /// line so nothing of the tunnelled stream is taken. Only the status line is judged:
    /// the proxy's header fields mean nothing to the tunnel.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(HTTPConnectError) -> Bool {
        let code: Int
        do {
            guard try head.read(input, at: &position) else { return false }
            code = try head.statusCode()
        } catch { throw .malformed }
        if code < 200 || code > 299 { throw .refused(code) }
        return true
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
