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
/// `writeRequest` produces the upgrade request; `parse` consumes the server's response a
/// piece at a time (headers may arrive split across reads, and may run to several KiB)
/// and stops exactly after the blank line, so WebSocket frames that follow in the same
/// read are left for the frame decoder.
public struct WebSocketHandshake {
    /// RFC 6455 §1.3.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public let key: String
    public let expectedAccept: String
    var response: ByteBuffer
    var tail: UInt32 = 0  // last four bytes seen, to find CRLF CRLF

    public init(key: WebSocketKey, maxResponseBytes: Int = 8192) {
        self.key = key.key
        self.expectedAccept = key.accept
        self.response = ByteBuffer(capacity: maxResponseBytes)
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
            + "Sec-WebSocket-Protocol: mqtt\r\n"
            + "\r\n"
    }

    /// Consumes response bytes from `position`. Returns true once the response is
    /// complete and valid; throws when it is complete and refuses the upgrade, or when it
    /// is malformed or larger than the buffer.
    public mutating func parse(_ input: UnsafeRawBufferPointer, at position: inout Int) throws(WebSocketHandshakeError) -> Bool {
        while position < input.count {
            let byte = input[position]
            position += 1
            if response.available == 0 { throw .responseTooLarge(response.capacity) }
            response.put(byte)
            tail = tail << 8 | UInt32(byte)
            if tail == 0x0D0A_0D0A {
                try validate()
                return true
            }
        }
        return false
    }

    func validate() throws(WebSocketHandshakeError) {
        var lines = LineScanner(buffer: response)
        guard let status = lines.next() else { throw .malformed }
        // "HTTP/1.1 101 Switching Protocols"
        guard status.count >= 12, response.bytes(status.lowerBound..<(status.lowerBound + 5), equal: "HTTP/"),
              let code = parseStatus(status) else { throw .malformed }
        switch code {
        case 101: break
        case 401: throw .unauthorized
        case 403: throw .forbidden
        case 404: throw .notFound
        default: throw .unexpectedStatus(code)
        }
        var upgrade = false, connection = false, accept = false, protocolOK = true
        while let line = lines.next() {
            if line.isEmpty { break }
            guard let colon = firstIndex(of: UInt8(ascii: ":"), in: line) else { throw .malformed }
            let name = line.lowerBound..<colon
            let value = trimmed((colon + 1)..<line.upperBound)
            if equalsIgnoringCase(name, "upgrade") {
                upgrade = equalsIgnoringCase(value, "websocket")
            } else if equalsIgnoringCase(name, "connection") {
                connection = containsToken(value, "upgrade")
            } else if equalsIgnoringCase(name, "sec-websocket-accept") {
                accept = response.bytes(value, equal: expectedAccept)
            } else if equalsIgnoringCase(name, "sec-websocket-protocol") {
                protocolOK = equalsIgnoringCase(value, "mqtt")
            }
        }
        if !upgrade || !connection { throw .notAnUpgrade }
        if !accept { throw .badAccept }
        if !protocolOK { throw .wrongSubprotocol }
    }

    /// `HTTP/1.1 101 …`: the three digits after the first space.
    func parseStatus(_ line: Range<Int>) -> Int? {
        var i = line.lowerBound
        while i < line.upperBound && response[i] != 0x20 { i += 1 }
        let text = response.written[..<line.upperBound]
        guard let (code, end) = DecimalScan.digits(text, from: i + 1, maxDigits: 3), end == i + 4 else { return nil }
        return Int(code)
    }

    func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        for i in range where response[i] == byte { return i }
        return nil
    }

    func trimmed(_ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi && (response[lo] == 0x20 || response[lo] == 0x09) { lo += 1 }
        while hi > lo && (response[hi - 1] == 0x20 || response[hi - 1] == 0x09) { hi -= 1 }
        return lo..<hi
    }

    func equalsIgnoringCase(_ range: Range<Int>, _ lower: String) -> Bool {
        if range.count != lower.utf8.count { return false }
        var i = range.lowerBound
        for c in lower.utf8 {
            var b = response[i]
            if b >= 0x41 && b <= 0x5A { b += 0x20 }
            if b != c { return false }
            i += 1
        }
        return true
    }

    /// True when the comma-separated `range` holds `token` (case-insensitive).
    func containsToken(_ range: Range<Int>, _ token: String) -> Bool {
        var start = range.lowerBound
        for i in range.lowerBound...range.upperBound where i == range.upperBound || response[i] == UInt8(ascii: ",") {
            if equalsIgnoringCase(trimmed(start..<i), token) { return true }
            start = i + 1
        }
        return false
    }
}

/// Splits a buffer into CRLF-terminated lines (ranges without the CRLF).
struct LineScanner {
    let buffer: ByteBuffer
    var position = 0

    mutating func next() -> Range<Int>? {
        if position >= buffer.count { return nil }
        var i = position
        while i + 1 < buffer.count && !(buffer[i] == 0x0D && buffer[i + 1] == 0x0A) { i += 1 }
        if i + 1 >= buffer.count { return nil }
        defer { position = i + 2 }
        return position..<i
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
        case .wrongSubprotocol: "the server chose a WebSocket subprotocol other than mqtt"
        case .malformed: "malformed HTTP response to the WebSocket upgrade"
        case .responseTooLarge(let n): "HTTP response headers longer than \(n) bytes"
        }
    }
}
