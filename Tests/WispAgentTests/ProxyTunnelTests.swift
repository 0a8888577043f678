import CWispPlatform
import Foundation
import Testing
@testable import WispAgent
import WispCore

@Suite("Proxy tunnel through SocketTransport")
struct ProxyTests {
    /// A one-shot TCP server on 127.0.0.1 that answers the CONNECT request with `answer`.
    func proxy(answer: String) -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, len) } }
        listen(fd, 1)
        withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: addr.sin_port)
        Thread.detachNewThread {
            let c = accept(fd, nil, nil)
            var buf = [UInt8](repeating: 0, count: 1024)
            _ = recv(c, &buf, buf.count, 0)
            _ = answer.withCString { send(c, $0, strlen($0), 0) }
            sleep(1)
            close(c)
            close(fd)
        }
        return port
    }

    func open(through port: UInt16) -> OpenStep {
        let transport = SocketTransport(endpoint: Endpoint(scheme: .ws, host: "broker.example", port: 443),
                                        proxy: Endpoint(scheme: .http, host: "127.0.0.1", port: port), caFile: nil, insecure: false,
                                        stageTimeout: 3000)
        while true {
            let now = System.monotonicMillis
            if now >= transport.openDeadline { return .failed(transport.openTimedOut()) }
            let step = transport.open(now: now)
            switch step {
            case .waitReadable: _ = System.wait(transport.descriptor, events: 1, milliseconds: 200)
            case .waitWritable: _ = System.wait(transport.descriptor, events: 2, milliseconds: 200)
            default: return step
            }
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 Connection established\r\n\r\n", OpenStep.open),
        ("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", .failed("proxy: the proxy wants authentication (HTTP 407)")),
        ("HTTP/1.1200\r\n\r\n", .failed("proxy: the proxy's answer to CONNECT is not HTTP")),
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", .failed("proxy: the proxy's answer to CONNECT is not HTTP")),
    ])
    func answers(answer: String, expected: OpenStep) {
        #expect(open(through: proxy(answer: answer)) == expected)
    }
}
