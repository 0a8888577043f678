import CWispPlatform
import Testing
@testable import WispAgent
import WispCore

/// A scripted HTTP file server the test plays, for the downloader. Every connection a
/// transfer opens (`connect` is the downloader's transport factory) takes the next
/// behaviour of `script` (the last one repeats) and answers the GET it reads: 200 and the
/// whole file, 206 and the rest for a `Range: bytes=N-`, a link cut mid-body, a refusal.
///
/// `bytesPerTurn` paces the link: a connection hands out that many bytes, then "would
/// block" until `tick()` (one turn of the device's loop), so a download takes several
/// turns. `ready` is what poll(2) would say: some connection has bytes (or its end) to
/// give, now or at the next turn.
final class FakeHTTPServer {
    enum Behaviour {
        /// 200 with Content-Length and the file (206 and the rest for a Range), then close.
        case serve
        /// As `serve`, but the server closes the link after `after` bytes of the body.
        case cut(after: Int)
        /// 200 and the whole file, whatever the Range said.
        case ignoreRange
        /// This status and an empty body.
        case status(Int)
        /// The connection cannot be opened.
        case refuse
        /// Opens and reads the request, then never answers.
        case silent
    }

    var file: [UInt8]
    var script: [Behaviour]
    var bytesPerTurn = Int.max
    /// Each request as it arrived.
    private(set) var requests: [String] = []
    /// Connections opened so far, and when (the simulated clock's monotonic ms).
    private(set) var opened = 0
    private(set) var openedAt: [UInt64] = []
    let clock: SimulatedClock
    private var live: [Weak] = []

    struct Weak { weak var connection: FakeHTTPConnection? }

    init(file: [UInt8], script: [Behaviour] = [.serve], clock: SimulatedClock) {
        self.file = file
        self.script = script
        self.clock = clock
    }

    /// The transport factory to hand the downloader.
    func connect(_ url: Endpoint) -> FakeHTTPConnection {
        let behaviour = script.count > 1 ? script.removeFirst() : (script.first ?? .serve)
        let c = FakeHTTPConnection(server: self, behaviour: behaviour, descriptor: Int32(1000 + opened))
        c.budget = bytesPerTurn
        opened += 1
        openedAt.append(clock.now)
        live.append(Weak(connection: c))
        return c
    }

    /// One turn of the loop: each open connection may send `bytesPerTurn` again.
    func tick() {
        live.removeAll { $0.connection == nil }
        for w in live { w.connection?.budget = bytesPerTurn }
    }

    var ready: Bool { live.contains { $0.connection?.ready == true } }

    /// Where each request asked to start (`Range: bytes=N-`), 0 without a Range.
    var rangeStarts: [Int64] { requests.map(FakeHTTPServer.rangeStart) }

    static func rangeStart(_ request: String) -> Int64 {
        guard let r = request.range(of: "\r\nRange: bytes=") else { return 0 }
        return Int64(request[r.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// The response to `request` under `behaviour`: its bytes, and whether the link then closes.
    func respond(to request: String, _ behaviour: Behaviour) -> (bytes: [UInt8], close: Bool) {
        requests.append(request)
        let size = file.count
        let from = Int(FakeHTTPServer.rangeStart(request))
        func whole() -> [UInt8] { Array("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\nConnection: close\r\n\r\n".utf8) + file }
        switch behaviour {
        case .serve, .cut:
            var bytes: [UInt8]
            var bodyStart: Int
            if from > 0 {
                bytes = Array(("HTTP/1.1 206 Partial Content\r\nContent-Length: \(size - from)\r\n"
                    + "Content-Range: bytes \(from)-\(size - 1)/\(size)\r\nConnection: close\r\n\r\n").utf8)
                bodyStart = bytes.count
                bytes += file[from...]
            } else {
                bytes = whole()
                bodyStart = bytes.count - size
            }
            if case .cut(let after) = behaviour { bytes = Array(bytes.prefix(bodyStart + after)) }
            return (bytes, true)
        case .ignoreRange:
            return (whole(), true)
        case .status(let code):
            return (Array("HTTP/1.1 \(code) Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8), true)
        case .refuse, .silent:
            return ([], false)
        }
    }
}

/// One connection to the fake server: takes the request, then hands out the response.
final class FakeHTTPConnection: Transport {
    let server: FakeHTTPServer
    let behaviour: FakeHTTPServer.Behaviour
    let descriptor: Int32
    var request: [UInt8] = []
    var pending: [UInt8] = []
    var answered = false
    var closes = false
    var budget = Int.max

    init(server: FakeHTTPServer, behaviour: FakeHTTPServer.Behaviour, descriptor: Int32) {
        self.server = server
        self.behaviour = behaviour
        self.descriptor = descriptor
    }

    var openDeadline: UInt64 { UInt64.max }

    func openTimedOut() -> String { "fake HTTP open timed out" }

    func open(now: UInt64) -> OpenStep {
        if case .refuse = behaviour { return .failed("connection refused by the fake server") }
        return .open
    }

    func send(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        request += bytes
        if !answered, request.count >= 4, Array(request.suffix(4)) == Array("\r\n\r\n".utf8) {
            answered = true
            (pending, closes) = server.respond(to: String(decoding: request, as: UTF8.self), behaviour)
        }
        return Int64(bytes.count)
    }

    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        if pending.isEmpty { return closes ? Int64(WISP_IO_CLOSED) : 0 }
        let n = min(buffer.count, pending.count, budget)
        if n == 0 { return 0 }
        for i in 0..<n { buffer[i] = pending[i] }
        pending.removeFirst(n)
        budget -= n
        return Int64(n)
    }

    /// Bytes or the end wait (paced bytes arrive at the next turn).
    var ready: Bool { answered && (!pending.isEmpty || closes) }
}

/// Runs the download side of the device's loop on the simulated clock: `turn` advances
/// the feature; when no connection is ready (poll would sleep) the clock jumps to the
/// downloader's deadline (a retry pause, a stall). Stops when `turn` says so, or after
/// `limit` turns; returns the turns taken.
@discardableResult
func pump<T>(_ servers: FakeHTTPServer..., clock: SimulatedClock, downloader: Downloader<T>, limit: Int = 500,
             _ turn: () -> Bool) -> Int {
    for n in 1...limit {
        for s in servers { s.tick() }
        if turn() { return n }
        if servers.contains(where: { $0.ready }) {
            clock.advance(1)
        } else {
            let deadline = downloader.deadline
            if deadline == UInt64.max { return n }  // nothing to wait for
            clock.now = max(clock.now + 1, deadline)
        }
    }
    Issue.record("the download did not end within \(limit) turns")
    return limit
}
