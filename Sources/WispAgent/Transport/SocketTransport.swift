import CWispPlatform
import WispCore

/// TCP to the endpoint (or to an HTTP CONNECT proxy, then a tunnel), then TLS for wss and
/// mqtts, opened one non-blocking step at a time. Each stage — connect, tunnel, TLS
/// handshake — has `stageTimeout` ms. DNS resolution is the one step that may block
/// (bounded by the resolver's own timeouts).
public final class SocketTransport: Transport {
    enum Stage {
        case start, connecting, tunnelSend(Int), tunnelReceive, handshaking, open, failed
    }

    let endpoint: Endpoint
    let proxy: Endpoint?
    let caFile: String?
    let insecure: Bool
    let stageTimeout: UInt64
    var stage = Stage.start
    var fd: Int32 = -1
    var connector: UnsafeMutableRawPointer?
    var tls: UnsafeMutableRawPointer?
    var tunnelRequest: [UInt8] = []
    var tunnelParser: HTTPConnect?
    public private(set) var openDeadline: UInt64 = UInt64.max
    var err = [CChar](repeating: 0, count: 512)

    public init(endpoint: Endpoint, proxy: Endpoint?, caFile: String?, insecure: Bool, stageTimeout: UInt64 = 10_000) {
        self.endpoint = endpoint
        self.proxy = proxy
        self.caFile = caFile
        self.insecure = insecure
        self.stageTimeout = stageTimeout
    }

    deinit {
        if let connector { wisp_connect_free(connector) }
        if let tls { wisp_tls_close(tls) }
        if fd >= 0 { _ = wisp_close(fd) }
    }

    public var descriptor: Int32 {
        if let connector { return wisp_connect_fd(connector) }
        return fd
    }

    public func open(now: UInt64) -> OpenStep {
        while true {
            switch stage {
            case .start:
                let first = proxy ?? endpoint
                connector = err.withUnsafeMutableBufferPointer { e in wisp_connect_start(first.host, first.port, e.baseAddress, e.count) }
                if connector == nil { return fail((proxy != nil ? "proxy: " : "") + errorText()) }
                enter(.connecting, now)
            case .connecting:
                let r = err.withUnsafeMutableBufferPointer { e in wisp_connect_step(connector, e.baseAddress, e.count) }
                if r == WISP_CONNECT_PENDING { return wisp_connect_resolving(connector) != 0 ? .waitReadable : .waitWritable }
                wisp_connect_free(connector)
                connector = nil
                if r < 0 { return fail((proxy != nil ? "proxy: " : "") + errorText()) }
                fd = r
                if proxy != nil {
                    var authority = endpoint.host.utf8.contains(UInt8(ascii: ":")) ? "[" + endpoint.host + "]" : endpoint.host
                    authority += ":\(endpoint.port)"
                    tunnelRequest = Array(HTTPConnect.request(authority: authority).utf8)
                    tunnelParser = HTTPConnect(maxResponseBytes: 2048)
                    enter(.tunnelSend(0), now)
                } else if let step = startTLS(now) {
                    return step
                }
            case .tunnelSend(let sent):
                let n = tunnelRequest.withUnsafeBufferPointer { b in wisp_tcp_send(fd, b.baseAddress! + sent, b.count - sent) }
                if n < 0 { return fail("proxy: sending CONNECT failed: " + SystemError(errno: Int32(-n)).message) }
                if n == 0 { return .waitWritable }
                let total = sent + Int(n)
                stage = total < tunnelRequest.count ? .tunnelSend(total) : .tunnelReceive
            case .tunnelReceive:
                // The proxy says nothing after its answer until we speak, so a chunk read
                // here never holds tunnelled bytes.
                var chunk = [UInt8](repeating: 0, count: 512)
                let n = chunk.withUnsafeMutableBufferPointer { wisp_tcp_recv(fd, $0.baseAddress, $0.count) }
                if n == Int64(WISP_IO_CLOSED) { return fail("proxy: closed the connection during CONNECT") }
                if n < 0 { return fail("proxy: " + SystemError(errno: Int32(-n)).message) }
                if n == 0 { return .waitReadable }
                var pos = 0
                let verdict: Result<Bool, HTTPConnectError> = chunk.withUnsafeBytes { raw in
                    do throws(HTTPConnectError) {
                        return .success(try tunnelParser!.parse(UnsafeRawBufferPointer(rebasing: raw[0..<Int(n)]), at: &pos))
                    } catch { return .failure(error) }
                }
                switch verdict {
                case .failure(let e): return fail("proxy: " + e.message)
                case .success(true):
                    tunnelParser = nil
                    tunnelRequest = []
                    if let step = startTLS(now) { return step }
                case .success(false): break
                }
            case .handshaking:
                let r = err.withUnsafeMutableBufferPointer { e in wisp_tls_handshake(tls, e.baseAddress, e.count) }
                if r == 0 { return .waitReadable }
                if r == 2 { return .waitWritable }
                if r < 0 { return fail(errorText()) }
                stage = .open
            case .open:
                openDeadline = UInt64.max
                return .open
            case .failed:
                return .failed("the connection already failed")
            }
        }
    }

    /// TLS for wss/mqtts (nil: go on with the next stage); without TLS the link is open.
    func startTLS(_ now: UInt64) -> OpenStep? {
        guard endpoint.isTLS else {
            stage = .open
            return nil
        }
        let ca = caFile
        tls = err.withUnsafeMutableBufferPointer { e in
            if let ca { return wisp_tls_start(fd, endpoint.host, ca, insecure ? 1 : 0, e.baseAddress, e.count) }
            return wisp_tls_start(fd, endpoint.host, nil, insecure ? 1 : 0, e.baseAddress, e.count)
        }
        if tls == nil { return fail(errorText()) }
        enter(.handshaking, now)
        return nil
    }

    public func openTimedOut() -> String {
        let ms = "\(stageTimeout) ms"
        switch stage {
        case .start, .connecting:
            let first = proxy ?? endpoint
            return (proxy != nil ? "proxy: " : "") + "connect to " + first.host + " port \(first.port) timed out after " + ms
        case .tunnelSend, .tunnelReceive: return "proxy: no answer to CONNECT within " + ms
        case .handshaking: return "TLS handshake with " + endpoint.host + " timed out after " + ms
        case .open, .failed: return "timed out"
        }
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

    func enter(_ next: Stage, _ now: UInt64) {
        stage = next
        openDeadline = now + stageTimeout
    }

    func fail(_ message: String) -> OpenStep {
        stage = .failed
        return .failed(message)
    }

    func errorText() -> String {
        let bytes = err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension SocketTransport {
    /// A connection to `endpoint` (the broker, a download's host) the way the key file says:
    /// its proxy, CA bundle and TLS verification.
    public convenience init(for device: DeviceConfig, to endpoint: Endpoint) {
        self.init(endpoint: endpoint, proxy: device.proxy, caFile: device.caFile, insecure: device.tlsInsecure)
    }
}
