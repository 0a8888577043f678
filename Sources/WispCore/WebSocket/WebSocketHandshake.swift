/// A `Sec-WebSocket-Key` (base64 of 16 CSPRNG bytes, RFC 6455 §4.1 item 7) and the
/// `Sec-WebSocket-Accept` the server must answer with, `base64(SHA-1(key + GUID))`
/// (§1.3). The agent makes both (randomness and SHA-1 live outside the core).
public struct WebSocketKey: Sendable, Equatable {
    public var key: String
    public var accept: String

    public init(key: String, accept: String) {
        self.key = key
        self.accept = accept
    }

    /// RFC 6455 §1.3's example: key "the sample nonce", and its accept value.
    public static let rfcExample = WebSocketKey(key: "dGhlIHNhbXBsZSBub25jZQ==", accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
}

/// The client side of the WebSocket opening handshake (RFC 6455 §4.1).
///
/// `request` is the upgrade request; `parse` consumes the server's response a piece at a
/// time through `HTTPHead` (headers may arrive split across reads, and may run to several
/// KiB) and stops exactly after the blank line, so WebSocket frames that follow in the
/// same read are left for the frame decoder.
public struct WebSocketHandshake {
    /// RFC 6455 §1.3.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public let key: String
    public let expectedAccept: String
    /// The subprotocol asked for (`mqtt`; the secure tunnel's `aliyun.iot.securetunnel-v1.1`):
    /// a server that names another is refused.
    public let subprotocol: String
    var head: HTTPHead

    public init(key: WebSocketKey, subprotocol: String = "mqtt", maxResponseBytes: Int = 8192) {
        self.key = key.key
        self.expectedAccept = key.accept
        self.subprotocol = subprotocol
        self.head = HTTPHead(capacity: maxResponseBytes)
    }

    /// The GET request. `host` is what goes in the Host header (with `:port` when the
    /// port is not the scheme's default); `path` starts with "/".
    public func request(host: String, path: String) -> String {
        "GET " + path + " HTTP/1.1\r\n"
            + "Host: " + host + "\r\n"
            + "Upgrade: websocket\r\n"
            + "Connection: Upgrade\r\n"
            + "Sec-WebSocket-Key: " + key + "\r\n"
            + "Sec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
            + "\r\n"
    }

    /// The GET request with one more header field whose value is a secret (the tunnel's
    /// access token), written as bytes into `output` and never made a String: nothing
    /// could log it. The name and value are the caller's checked tokens (no CR, LF or
    /// controls). False when it does not fit.
    public func request(host: String, path: String, field name: String, secret value: UnsafeRawBufferPointer, into output: inout ByteBuffer) -> Bool {
        let head = request(host: host, path: path)
        do {
            try output.append(head.utf8.dropLast(2))
            try output.append(name.utf8)
            try output.append(": ".utf8)
            try output.append(value)
            try output.append("\r\n\r\n".utf8)
        } catch { return false }
        return true
    }

    /// Consumes response bytes from `position`. Returns true once the response is
    /// complete and valid; throws when it is complete and refuses the upgrade, or when it
    /// is malformed or larger than the buffer.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(WebSocketHandshakeError) -> Bool {
        let done: Bool
        do { done = try head.read(input, at: &position) } catch { throw .responseTooLarge(head.capacity) }
        if !done { return false }
        try validate()
        return true
    }

    func validate() throws(WebSocketHandshakeError) {
        // "HTTP/1.1 101 Switching Protocols"
        let code: Int
        do { code = try head.statusCode() } catch { throw .malformed }
        switch code {
        case 101: break
        case 401: throw .unauthorized
        case 403: throw .forbidden
        case 404: throw .notFound
        default: throw .unexpectedStatus(code)
        }
        var upgrade = false, connection = false, accept = false, protocolOK = true
        var fields = head.fields()
        while true {
            let next: HTTPField?
            do { next = try fields.next() } catch { throw .malformed }
            guard let field = next else { break }
            if field.named("upgrade") {
                upgrade = field.valueIs("websocket")
            } else if field.named("connection") {
                connection = field.valueLists("upgrade")
            } else if field.named("sec-websocket-accept") {
                accept = field.value.elementsEqual(expectedAccept.utf8)
            } else if field.named("sec-websocket-protocol") {
                protocolOK = field.value.elementsEqual(subprotocol.utf8)
            }
        }
        if !upgrade || !connection { throw .notAnUpgrade }
        if !accept { throw .badAccept }
        if !protocolOK { throw .wrongSubprotocol }
    }
}

/// Why the server did not upgrade the connection to WebSocket.
public enum WebSocketHandshakeError: Error, Equatable, Sendable {
    case unauthorized
    case forbidden
    case notFound
    case unexpectedStatus(Int)
    case notAnUpgrade
    case badAccept
    case wrongSubprotocol
    case malformed
    case responseTooLarge(Int)

    public var message: String {
        switch self {
        case .unauthorized: "WebSocket upgrade refused with HTTP 401 Unauthorized: the endpoint wants HTTP authentication"
        case .forbidden: "WebSocket upgrade refused with HTTP 403 Forbidden: check the endpoint host and that this device may connect"
        case .notFound: "WebSocket upgrade refused with HTTP 404 Not Found: check the endpoint path (usually /mqtt)"
        case .unexpectedStatus(let code): "WebSocket upgrade refused with HTTP \(code): the endpoint is not an MQTT-over-WebSocket server"
        case .notAnUpgrade: "HTTP 101 without 'Upgrade: websocket' and 'Connection: Upgrade'"
        case .badAccept: "Sec-WebSocket-Accept is missing or wrong: the server (or a proxy) is not speaking RFC 6455"
        case .wrongSubprotocol: "the server chose a WebSocket subprotocol other than the one asked for"
        case .malformed: "malformed HTTP response to the WebSocket upgrade"
        case .responseTooLarge(let n): "HTTP response headers longer than \(n) bytes"
        }
    }
}
