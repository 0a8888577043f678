import CWispPlatform
import WispCore

/// One open connection to the broker: a non-blocking TCP socket, maybe tunnelled through
/// an HTTP proxy, maybe wrapped in TLS. It has one owner and closes itself when dropped.
///
/// As coreMQTT's transport interface: `send`/`receive` return the byte count, 0 for
/// "not now" (would block), and a negative value on failure — never 0 on disconnect.
public struct Connection: ~Copyable {
    public let fd: Int32
    let tls: UnsafeMutableRawPointer?

    /// What a failed open looked like, in one sentence, and whether TLS refused it.
    public struct OpenError: Error, Sendable {
        public var message: String
    }

    /// Opens TCP (through `proxy` when set), then TLS for wss/mqtts. Blocks for at most
    /// about `timeoutMillis` per step.
    public static func open(_ endpoint: Endpoint, proxy: Endpoint?, caFile: String?, insecure: Bool,
                            timeoutMillis: Int32) -> Result<Connection, OpenError> {
        let first = proxy ?? endpoint
        var err = [CChar](repeating: 0, count: 512)
        let fd = err.withUnsafeMutableBufferPointer { e in
            wisp_tcp_connect(first.host, first.port, timeoutMillis, e.baseAddress, e.count)
        }
        if fd < 0 {
            return .failure(OpenError(message: (proxy != nil ? "proxy: " : "") + text(err)))
        }
        if proxy != nil {
            if let problem = tunnel(fd: fd, to: endpoint, timeoutMillis: timeoutMillis) {
                _ = wisp_close(fd)
                return .failure(OpenError(message: problem))
            }
        }
        guard endpoint.isTLS else { return .success(Connection(fd: fd, tls: nil)) }
        let context: UnsafeMutableRawPointer?
        if let caFile {
            context = err.withUnsafeMutableBufferPointer { e in
                wisp_tls_open(fd, endpoint.host, caFile, insecure ? 1 : 0, timeoutMillis, e.baseAddress, e.count)
            }
        } else {
            context = err.withUnsafeMutableBufferPointer { e in
                wisp_tls_open(fd, endpoint.host, nil, insecure ? 1 : 0, timeoutMillis, e.baseAddress, e.count)
            }
        }
        guard let context else {
            _ = wisp_close(fd)
            return .failure(OpenError(message: text(err)))
        }
        return .success(Connection(fd: fd, tls: context))
    }

    init(fd: Int32, tls: UnsafeMutableRawPointer?) {
        self.fd = fd
        self.tls = tls
    }

    deinit {
        if let tls { wisp_tls_close(tls) }
        _ = wisp_close(fd)
    }

    public func send(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        let p = base.assumingMemoryBound(to: UInt8.self)
        if let tls { return wisp_tls_send(tls, p, bytes.count) }
        return wisp_tcp_send(fd, p, bytes.count)
    }

    public func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let p = base.assumingMemoryBound(to: UInt8.self)
        if let tls { return wisp_tls_recv(tls, p, buffer.count) }
        return wisp_tcp_recv(fd, p, buffer.count)
    }

    /// Decrypted bytes waiting inside TLS, which poll() cannot see.
    public var hasBufferedInput: Bool {
        if let tls { return wisp_tls_pending(tls) > 0 }
        return false
    }

    /// HTTP CONNECT through the proxy on `fd`; nil when the tunnel is open.
    static func tunnel(fd: Int32, to endpoint: Endpoint, timeoutMillis: Int32) -> String? {
        var authority = endpoint.host.utf8.contains(UInt8(ascii: ":")) ? "[" + endpoint.host + "]" : endpoint.host
        authority += ":\(endpoint.port)"
        var request = HTTPConnect.request(authority: authority)
        let deadline = System.monotonicMillis + UInt64(timeoutMillis)
        var sent = 0
        let total = request.utf8.count
        while sent < total {
            let n = request.withUTF8 { b in wisp_tcp_send(fd, b.baseAddress! + sent, total - sent) }
            if n < 0 { return "proxy: sending CONNECT failed: " + SystemError(errno: Int32(-n)).message }
            sent += Int(n)
            if n == 0 && waitFor(fd, 2, deadline) == false { return "proxy: CONNECT timed out" }
        }
        var parser = HTTPConnect()
        let buf = InputBuffer(capacity: 512)
        while true {
            buf.removeAll()
            let n = buf.append { raw in
                Int(wisp_tcp_recv(fd, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count))
            }
            if n == Int(WISP_IO_CLOSED) { return "proxy: closed the connection during CONNECT" }
            if n < 0 { return "proxy: " + SystemError(errno: Int32(-n)).message }
            if n == 0 {
                if !waitFor(fd, 1, deadline) { return "proxy: no answer to CONNECT in time" }
                continue
            }
            var pos = 0
            do {
                if try parser.parse(buf.bytes, at: &pos) { return nil }
            } catch {
                return "proxy: " + error.message
            }
        }
    }

    static func waitFor(_ fd: Int32, _ events: Int32, _ deadline: UInt64) -> Bool {
        let now = System.monotonicMillis
        if now >= deadline { return false }
        return wisp_poll(fd, events, -1, Int32(deadline - now)) > 0
    }

    static func text(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
