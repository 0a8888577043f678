import CWispPlatform
import WispCore

/// One file fetched over HTTPS (HTTP in a lab), in small steps the device's poll loop
/// drives between telemetry and keep-alives: no thread, a fixed 16 KiB buffer, nothing
/// allocated in proportion to the file. The digest is computed as the bytes arrive. A
/// dropped or stalled link resumes with `Range: bytes=N-` after a pause drawn from the
/// core's `Backoff` (206 continues, 200 starts over); a refusal or a lying server fails it.
/// `Downloader` owns the transfers; a feature holds the id it was given.
final class Transfer<T: Transport> {
    enum Outcome {
        case working
        /// The whole file is on disk; its digest.
        case done([UInt8])
        case failed(DownloadError)
    }

    enum Stage {
        case waiting(until: UInt64)
        case opening
        case sending(Int)
        case head
        case body
    }

    var url: Endpoint
    let makeTransport: (Endpoint) -> T
    /// Who asked, for the log ("OTA", "remote config").
    let label: String
    let log: Log
    let path: String
    let expected: Int64
    let method: DigestMethod
    private(set) var have: Int64
    var digest: UnsafeMutableRawPointer?
    var transport: T?
    var stage = Stage.waiting(until: 0)
    var request: [UInt8] = []
    var head = HTTPResponseHead()
    var file: Int32 = -1
    var buffer = [UInt8](repeating: 0, count: 16_384)
    var failures = 0
    var backoff: Backoff
    var random: SplitMix64
    var stallDeadline: UInt64 = UInt64.max
    /// The last `advance` stopped with bytes possibly waiting (TLS may hold some that poll
    /// cannot see): come back at once.
    var busy = false
    /// What poll should wait for on `descriptor` (1 readable, 2 writable).
    private(set) var events: Int32 = 0
    static var maxFailures: Int { 6 }
    static var stallMillis: UInt64 { 30_000 }

    /// Continues `path` when it holds the first `resumeFrom` bytes of the same package
    /// (they are hashed again), else starts it empty.
    init(_ label: String, log: Log, url: Endpoint, path: String, size: Int64, method: DigestMethod, resumeFrom: Int64, seed: UInt64,
         transport: @escaping (Endpoint) -> T) throws(DownloadError) {
        self.url = url
        self.label = label
        self.log = log
        makeTransport = transport
        self.path = path
        backoff = Backoff()
        backoff.initial = 1_000
        backoff.minimum = 1_000
        backoff.maximum = 30_000
        random = SplitMix64(seed: seed)
        expected = size
        self.method = method
        have = 0
        digest = wisp_digest_new(method == .md5 ? WISP_HMAC_MD5 : WISP_HMAC_SHA256)
        if digest == nil { throw .cannotWrite("no memory for the digest") }
        if resumeFrom > 0 && resumeFrom <= size, rehash(upTo: resumeFrom) {
            file = wisp_open_append(path)
            have = resumeFrom
        } else {
            file = wisp_open_new(path)
        }
        if file < 0 { throw .cannotWrite("cannot open " + path + ": " + SystemError(errno: -file).message) }
    }

    deinit {
        wisp_digest_free(digest)
        if file >= 0 { _ = wisp_close(file) }
    }

    var descriptor: Int32 {
        guard let transport else { return -1 }
        if case .waiting = stage { return -1 }
        return transport.descriptor
    }

    /// When to call `advance` again without the descriptor being ready.
    var deadline: UInt64 {
        if busy { return 0 }
        switch stage {
        case .waiting(let until): return until
        case .opening: return transport?.openDeadline ?? 0
        default: return stallDeadline
        }
    }

    /// What the server sends, from the `Host` on; the query of the signed URL is a
    /// credential for the object, so logs show only host and path.
    var shownURL: String {
        var path = url.path
        if let q = path.utf8.firstIndex(of: UInt8(ascii: "?")) { path = String(path[..<q]) + "?…" }
        return url.scheme.rawValue + "://" + url.hostHeader + path
    }

    var percent: Int { expected > 0 ? Int(have * 100 / expected) : 0 }

    /// Works until it must wait for the network (or a pause), or ends.
    func advance(now: UInt64) -> Outcome {
        var rounds = 0
        busy = false
        while rounds < 64 {
            rounds += 1
            switch stage {
            case .waiting(let until):
                if now < until { return .working }
                transport = makeTransport(url)
                stage = .opening
            case .opening:
                guard let t = transport else { return retry("no transport", now) }
                if now >= t.openDeadline { return retry(t.openTimedOut(), now) }
                switch t.open(now: now) {
                case .waitReadable:
                    events = 1
                    return .working
                case .waitWritable:
                    events = 2
                    return .working
                case .failed(let message):
                    return retry(message, now)
                case .open:
                    let target = url.path
                    request = Array(HTTPGet.request(host: url.hostHeader, target: target, from: have, userAgent: "wisp/" + Agent.version).utf8)
                    stage = .sending(0)
                    stallDeadline = now + Transfer.stallMillis
                }
            case .sending(let sent):
                let n = request.withUnsafeBytes { r in transport!.send(UnsafeRawBufferPointer(rebasing: r[sent...])) }
                if n < 0 { return retry("sending the request failed", now) }
                if n == 0 {
                    events = 2
                    return .working
                }
                let total = sent + Int(n)
                if total < request.count {
                    stage = .sending(total)
                } else {
                    stage = .head
                    head = HTTPResponseHead()
                }
            case .head, .body:
                let n = buffer.withUnsafeMutableBytes { transport!.receive($0) }
                if n == 0 {
                    if now >= stallDeadline { return retry("no data for \(Transfer.stallMillis / 1000) s", now) }
                    events = 1
                    return .working
                }
                if n < 0 {
                    return retry(n == Int64(WISP_IO_CLOSED) ? "the server closed the connection" : "the connection failed", now)
                }
                stallDeadline = now + Transfer.stallMillis
                var position = 0
                if case .head = stage {
                    let complete: Result<Bool, HTTPResponseError> = buffer.withUnsafeBytes { raw in
                        do throws(HTTPResponseError) {
                            return .success(try head.parse(UnsafeRawBufferPointer(rebasing: raw[0..<Int(n)]), at: &position))
                        } catch { return .failure(error) }
                    }
                    switch complete {
                    case .failure(let e): return retry(e.message, now)
                    case .success(false): continue
                    case .success(true):
                        if let end = accept(now: now) { return end }
                    }
                }
                if let end = consume(Int(position)..<Int(n), now: now) { return end }
            }
        }
        busy = true
        return .working
    }

    /// Checks the response head; an outcome when the download ends here.
    func accept(now: UInt64) -> Outcome? {
        if head.chunked { return fail(.refused("the server sent a chunked body; wisp needs a Content-Length")) }
        switch head.status {
        case 200:
            if let n = head.contentLength, n != expected {
                return fail(.refused("the server has \(n) bytes, the platform announced \(expected)"))
            }
            if have > 0 {
                log.info(label + ": the server ignored the range and sends the whole file; starting over")
                if let end = restart() { return end }
            }
        case 206:
            guard head.rangeFirst == have, head.rangeTotal == expected else {
                return fail(.refused("the server sent another range than bytes \(have)- of \(expected)"))
            }
        case 416 where have == expected:
            return finish()
        case 403, 404, 410:
            return fail(.refused("HTTP \(head.status) from " + shownURL + " (an expired URL: the platform sends a new one at the next connect)"))
        default:
            return retry("HTTP \(head.status)", now)
        }
        stage = .body
        failures = 0
        backoff.reset()
        return nil
    }

    /// Writes body bytes to the file and the digest.
    func consume(_ range: Range<Int>, now: UInt64) -> Outcome? {
        guard !range.isEmpty else { return nil }
        if have + Int64(range.count) > expected {
            return fail(.refused("the server sent more than the announced \(expected) bytes"))
        }
        let r: Int32 = buffer.withUnsafeBufferPointer { b in
            let p = b.baseAddress! + range.lowerBound
            if wisp_digest_update(digest, p, range.count) != 0 { return -5 }
            return Int32(wisp_write_all(file, p, range.count))
        }
        if r < 0 { return fail(.cannotWrite("writing " + path + ": " + SystemError(errno: -r).message)) }
        have += Int64(range.count)
        if have == expected { return finish() }
        return nil
    }

    func finish() -> Outcome {
        transport = nil
        let synced = wisp_sync(file)
        _ = wisp_close(file)  // an executable open for writing cannot run (ETXTBSY)
        file = -1
        if synced != 0 { return fail(.cannotWrite("cannot sync " + path)) }
        var out = [UInt8](repeating: 0, count: 32)
        let n = wisp_digest_finish(digest, &out, out.count)
        digest = nil
        if n != method.size { return .failed(.cannotWrite("the digest failed")) }
        return .done(Array(out[0..<method.size]))
    }

    func fail(_ error: DownloadError) -> Outcome {
        transport = nil
        return .failed(error)
    }

    /// After a drop: pause (at least 1 s, at most 1, 2, 4 … 30 s), then ask for the rest.
    func retry(_ why: String, _ now: UInt64) -> Outcome {
        transport = nil
        failures += 1
        if failures >= Transfer.maxFailures {
            return .failed(.unreachable(why + " (\(failures) attempts from " + shownURL + ")"))
        }
        let pause = backoff.nextDelay(refused: false, random: &random)
        log.warning(label + ": download interrupted at \(have) of \(expected) bytes: " + why + "; resuming in \(pause / 1000).\(pause % 1000 / 100) s")
        stage = .waiting(until: now + pause)
        return .working
    }

    /// Empties the file and the digest (a 200 to a range request).
    func restart() -> Outcome? {
        _ = wisp_close(file)
        file = wisp_open_new(path)
        if file < 0 { return .failed(.cannotWrite("cannot reopen " + path)) }
        wisp_digest_free(digest)
        digest = wisp_digest_new(method == .md5 ? WISP_HMAC_MD5 : WISP_HMAC_SHA256)
        if digest == nil { return .failed(.cannotWrite("no memory for the digest")) }
        have = 0
        return nil
    }

    /// Hashes the first `count` bytes already on disk; false when they are not there.
    func rehash(upTo count: Int64) -> Bool {
        let fd = wisp_open_read(path)
        if fd < 0 { return false }
        defer { _ = wisp_close(fd) }
        var done: Int64 = 0
        while done < count {
            let want = Int(min(Int64(buffer.count), count - done))
            let n = buffer.withUnsafeMutableBufferPointer { wisp_read(fd, $0.baseAddress, want) }
            if n <= 0 { return false }
            _ = buffer.withUnsafeBufferPointer { wisp_digest_update(digest, $0.baseAddress, Int(n)) }
            done += n
        }
        return true
    }
}

/// Why a download failed, in the downloader's own terms; each feature says what it means
/// for the platform (an OTA progress code, a config push reply).
enum DownloadError: Error {
    /// The file system: the file cannot be opened, written or synced.
    case cannotWrite(String)
    /// The server refused or lied (HTTP 403/404/410, a chunked body, the wrong length or range).
    case refused(String)
    /// The link failed `Transfer.maxFailures` times in a row.
    case unreachable(String)

    var message: String {
        switch self {
        case .cannotWrite(let m), .refused(let m), .unreachable(let m): m
        }
    }
}
