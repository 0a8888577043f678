import CWispPlatform
import Foundation
import Testing
@testable import WispAgent
import WispCore

/// The downloader over a scripted HTTP server on a simulated clock: whole files, resumes,
/// refusals, retry pauses, and what it hands the device's poll.
@Suite("Downloader over a fake HTTP server")
struct DownloaderTests {
    typealias Outcome = Transfer<FakeHTTPConnection>.Outcome

    let dir = TemporaryDirectory("download")
    let clock = SimulatedClock()
    let url = Endpoint(parsing: "https://files.example/pkg/wisp.bin?Expires=1&Signature=secret", allowing: [.https])!

    func downloader(_ servers: [String: FakeHTTPServer]) -> Downloader<FakeHTTPConnection> {
        Downloader(clock: clock.clock, log: Log(), seed: 42) { url in servers[url.host]!.connect(url) }
    }

    func downloader(_ server: FakeHTTPServer) -> Downloader<FakeHTTPConnection> {
        Downloader(clock: clock.clock, log: Log(), seed: 42) { server.connect($0) }
    }

    /// Advances transfer `id` until it ends.
    func finish(_ d: Downloader<FakeHTTPConnection>, _ id: Int, _ servers: FakeHTTPServer...) -> Outcome? {
        var end: Outcome?
        for s in servers { s.tick() }
        var turns = 0
        while end == nil && turns < 500 {
            turns += 1
            let o = d.advance(id)
            if case .working = o {} else { end = o; break }
            for s in servers { s.tick() }
            if servers.contains(where: { $0.ready }) { clock.advance(1) } else { clock.now = max(clock.now + 1, d.deadline) }
        }
        return end
    }

    func done(_ o: Outcome?) -> [UInt8]? {
        if case .done(let digest)? = o { return digest }
        Issue.record("not done: \(String(describing: o))")
        return nil
    }

    @Test func aFileIsFetchedWholeAndItsDigestComputed() throws {
        let file = pattern(40_000)
        let server = FakeHTTPServer(file: file, clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: Int64(file.count), method: .sha256, resumeFrom: 0)
        #expect(done(finish(d, id, server)) == digestOf(file))
        #expect(dir.bytes("f") == file)
        #expect(server.requests.count == 1)
        #expect(server.requests[0].hasPrefix("GET /pkg/wisp.bin?Expires=1&Signature=secret HTTP/1.1\r\nHost: files.example\r\n"))
        #expect(!server.requests[0].contains("Range:"))
        #expect(d.isIdle, "the id is free again")
    }

    @Test func md5IsComputedWhenTheOfferSaysMd5() throws {
        let file = pattern(1000)
        let server = FakeHTTPServer(file: file, clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: 1000, method: .md5, resumeFrom: 0)
        #expect(done(finish(d, id, server)) == digestOf(file, .md5))
    }

    /// The point of the service: two downloads interleave in one loop and both complete.
    @Test func twoTransfersAtOnceBothComplete() throws {
        let a = pattern(30_000, seed: 1), b = pattern(20_000, seed: 2)
        let sa = FakeHTTPServer(file: a, clock: clock), sb = FakeHTTPServer(file: b, clock: clock)
        sa.bytesPerTurn = 3000
        sb.bytesPerTurn = 3000
        let d = downloader(["a.example": sa, "b.example": sb])
        let ia = try d.start("A", url: Endpoint(parsing: "https://a.example/a", allowing: [.https])!, path: dir.file("a"),
                             size: Int64(a.count), method: .sha256, resumeFrom: 0)
        let ib = try d.start("B", url: Endpoint(parsing: "https://b.example/b", allowing: [.https])!, path: dir.file("b"),
                             size: Int64(b.count), method: .sha256, resumeFrom: 0)
        #expect(ia != ib)
        var ends: [Int: Outcome] = [:]
        var bothMidway = false
        pump(sa, sb, clock: clock, downloader: d) {
            for id in [ia, ib] where ends[id] == nil {
                let o = d.advance(id)
                if case .working = o {} else { ends[id] = o }
            }
            if let pa = d.transfer(ia)?.percent, let pb = d.transfer(ib)?.percent, pa > 0, pa < 100, pb > 0, pb < 100 { bothMidway = true }
            return ends.count == 2
        }
        #expect(bothMidway, "the two were in progress at the same time")
        #expect(done(ends[ia]) == digestOf(a) && done(ends[ib]) == digestOf(b))
        #expect(dir.bytes("a") == a && dir.bytes("b") == b)
        #expect(d.isIdle)
    }

    /// The server closes the link at 12 000 bytes: after a pause the rest is asked for with
    /// Range and arrives as a 206; the file and digest are whole.
    @Test func aDropMidBodyResumesWithARangeAfterAPause() throws {
        let file = pattern(50_000)
        let server = FakeHTTPServer(file: file, script: [.cut(after: 12_000), .serve], clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: Int64(file.count), method: .sha256, resumeFrom: 0)
        #expect(done(finish(d, id, server)) == digestOf(file))
        #expect(dir.bytes("f") == file)
        #expect(server.rangeStarts == [0, 12_000])
        #expect(server.requests[1].contains("\r\nRange: bytes=12000-\r\n"))
        #expect(server.openedAt[1] - server.openedAt[0] >= 1000, "a pause of at least 1 s before the retry")
    }

    /// A server that answers a Range with 200 and the whole file: the part is thrown away
    /// and the file starts over (no doubled bytes).
    @Test func a200ToARangeStartsTheFileOver() throws {
        let file = pattern(20_000)
        let server = FakeHTTPServer(file: file, script: [.cut(after: 5000), .ignoreRange], clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: Int64(file.count), method: .sha256, resumeFrom: 0)
        #expect(done(finish(d, id, server)) == digestOf(file))
        #expect(dir.bytes("f") == file)
        #expect(server.rangeStarts == [0, 5000])
    }

    /// A partial file from before (same package): only the rest is fetched, and the digest
    /// covers the whole file.
    @Test func aPartialFileOnDiskIsContinued() throws {
        let file = pattern(30_000)
        #expect(FileManager.default.createFile(atPath: dir.file("f"), contents: Data(file[0..<8000])))
        let server = FakeHTTPServer(file: file, clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: Int64(file.count), method: .sha256, resumeFrom: 8000)
        #expect(done(finish(d, id, server)) == digestOf(file))
        #expect(dir.bytes("f") == file)
        #expect(server.rangeStarts == [8000])
    }

    /// Five pauses between six attempts: each at least 1 s, under a ceiling that doubles
    /// (1, 2, 4, 8, 16 s: the core's Backoff), then `.unreachable`.
    @Test func sixFailuresAreUnreachableAfterGrowingPauses() throws {
        var longest = [UInt64](repeating: 0, count: 5)
        for seed in UInt64(1)...8 {
            let clock = SimulatedClock()
            let server = FakeHTTPServer(file: pattern(100), script: [.refuse], clock: clock)
            let d = Downloader<FakeHTTPConnection>(clock: clock.clock, log: Log(), seed: seed) { server.connect($0) }
            let id = try d.start("test", url: url, path: dir.file("f\(seed)"), size: 100, method: .sha256, resumeFrom: 0)
            var end: Outcome?
            for _ in 0..<50 {
                let o = d.advance(id)
                if case .working = o {} else { end = o; break }
                clock.now = max(clock.now + 1, d.deadline)
            }
            guard case .failed(.unreachable(let why))? = end else {
                Issue.record("not unreachable: \(String(describing: end))")
                continue
            }
            #expect(why.contains("6 attempts"), "\(why)")
            #expect(!why.contains("Signature"), "the signed query stays out of messages: \(why)")
            #expect(server.opened == Transfer<FakeHTTPConnection>.maxFailures)
            let pauses = zip(server.openedAt.dropFirst(), server.openedAt).map { $0 - $1 }
            #expect(pauses.count == 5)
            for (k, p) in pauses.enumerated() {
                #expect(p >= 1000 && p <= 1000 << k, "pause \(k + 1) is \(p) ms")
                longest[k] = max(longest[k], p)
            }
        }
        #expect(longest[4] > 4000, "later pauses reach past the first ceilings: \(longest)")
    }

    @Test(arguments: [403, 404, 410])
    func aRefusalEndsTheTransferAtOnce(status: Int) throws {
        let server = FakeHTTPServer(file: pattern(100), script: [.status(status)], clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: 100, method: .sha256, resumeFrom: 0)
        guard case .failed(.refused(let why))? = finish(d, id, server) else {
            Issue.record("not refused")
            return
        }
        #expect(why.contains("HTTP \(status)"), "\(why)")
        #expect(server.opened == 1, "no retry")
    }

    @Test func aServerWithAnotherLengthIsRefused() throws {
        let server = FakeHTTPServer(file: pattern(100), clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: 99, method: .sha256, resumeFrom: 0)
        guard case .failed(.refused(let why))? = finish(d, id, server) else {
            Issue.record("not refused")
            return
        }
        #expect(why.contains("100 bytes") && why.contains("announced 99"), "\(why)")
    }

    /// 30 s without a byte: the link is given up and the download resumes on a new one.
    @Test func aStalledLinkIsRetried() throws {
        let file = pattern(5000)
        let server = FakeHTTPServer(file: file, script: [.silent, .serve], clock: clock)
        let d = downloader(server)
        let id = try d.start("test", url: url, path: dir.file("f"), size: Int64(file.count), method: .sha256, resumeFrom: 0)
        #expect(done(finish(d, id, server)) == digestOf(file))
        #expect(server.opened == 2)
        #expect(server.openedAt[1] - server.openedAt[0] >= Transfer<FakeHTTPConnection>.stallMillis + 1000)
    }

    @Test func anUnwritablePathCannotBeWritten() {
        let server = FakeHTTPServer(file: pattern(100), clock: clock)
        let d = downloader(server)
        #expect(throws: DownloadError.self) {
            _ = try d.start("test", url: url, path: dir.file("missing/dir/f"), size: 100, method: .sha256, resumeFrom: 0)
        }
        do throws(DownloadError) {
            _ = try d.start("test", url: url, path: dir.file("missing/dir/f"), size: 100, method: .sha256, resumeFrom: 0)
        } catch {
            guard case .cannotWrite(let why) = error else { Issue.record("\(error)"); return }
            #expect(why.contains("missing/dir/f"), "\(why)")
        }
        #expect(server.opened == 0 && d.isIdle)
    }

    @Test func atMostOneTransferPerPollSlot() throws {
        let server = FakeHTTPServer(file: pattern(100), script: [.silent], clock: clock)
        let d = downloader(server)
        for n in 0..<Downloader<FakeHTTPConnection>.capacity {
            _ = try d.start("test", url: url, path: dir.file("f\(n)"), size: 100, method: .sha256, resumeFrom: 0)
        }
        #expect(throws: DownloadError.self) {
            _ = try d.start("test", url: url, path: dir.file("g"), size: 100, method: .sha256, resumeFrom: 0)
        }
    }

    /// Each transfer waiting on its connection is in the device's poll; one pausing is not.
    @Test func registerFillsThePollSlots() throws {
        let server = FakeHTTPServer(file: pattern(100), script: [.silent, .refuse, .silent], clock: clock)
        let d = downloader(server)
        var slots = PollSlots()
        slots.add(77, events: 2)  // last turn's
        let a = try d.start("A", url: url, path: dir.file("a"), size: 100, method: .sha256, resumeFrom: 0)
        let b = try d.start("B", url: url, path: dir.file("b"), size: 100, method: .sha256, resumeFrom: 0)
        slots.clear()  // the device empties the slots each turn
        d.register(into: &slots)
        #expect(slots.fds.allSatisfy { $0 < 0 }, "nothing opened yet")
        _ = d.advance(a)  // connection 1000: request sent, waiting for the answer
        _ = d.advance(b)  // connection 1001 refused: pausing
        slots.clear()  // the device empties the slots each turn
        d.register(into: &slots)
        #expect(slots.fds.filter { $0 >= 0 } == [1000])
        #expect(slots.events[slots.fds.firstIndex(of: 1000)!] == 1, "waits for readable")
        let c = try d.start("C", url: url, path: dir.file("c"), size: 100, method: .sha256, resumeFrom: 0)
        _ = d.advance(c)  // connection 1002
        slots.clear()  // the device empties the slots each turn
        d.register(into: &slots)
        #expect(slots.fds.filter { $0 >= 0 }.sorted() == [1000, 1002])
    }

    /// The device sleeps until the nearest of the transfers' deadlines.
    @Test func theDeadlineIsTheNearest() throws {
        let server = FakeHTTPServer(file: pattern(100), script: [.silent, .refuse], clock: clock)
        let d = downloader(server)
        #expect(d.deadline == UInt64.max, "idle: no deadline")
        let a = try d.start("A", url: url, path: dir.file("a"), size: 100, method: .sha256, resumeFrom: 0)
        let b = try d.start("B", url: url, path: dir.file("b"), size: 100, method: .sha256, resumeFrom: 0)
        #expect(d.deadline <= clock.now, "a new transfer starts at once")
        let t0 = clock.now
        _ = d.advance(a)
        #expect(d.deadline <= clock.now, "B has not started yet")
        _ = d.advance(b)
        let stall = t0 + Transfer<FakeHTTPConnection>.stallMillis
        let resume = try #require({ if case .waiting(let until)? = d.transfer(b)?.stage { return until }; return nil }())
        #expect(resume >= t0 + 1000 && resume < stall)
        #expect(d.deadline == resume, "B's retry pause ends before A's stall")
        d.cancel(b)
        #expect(d.deadline == stall)
    }
}
