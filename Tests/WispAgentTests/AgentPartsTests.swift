import CWispPlatform
import Foundation
import Testing
@testable import WispAgent
import WispCore

/// A fresh folder under the system's temporary directory.
func scratchDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "wisp-agent-tests-" + name + "-" + String(UInt64.random(in: 0..<UInt64.max))
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("ClockSync: the platform's clock")
struct ClockSyncTests {
    func payload(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func onlyAnAnswerToOurRequestSetsTheClock() {
        var clock = ClockSync()
        let answer = payload(#"{"deviceSendTime":"1000","serverRecvTime":"1700000000100","serverSendTime":"1700000000110"}"#)
        #expect(answer.withUnsafeBytes { clock.response($0, monotonic: 1200) } == .unsolicited)
        var w = JSONWriter(capacity: 64)
        clock.request(monotonic: 1000, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"deviceSendTime":"1000"}"#)
        #expect(answer.withUnsafeBytes { clock.response($0, monotonic: 1200) } == .set)
        // (100 + 110 + 200) / 2 = 205 past the base at monotonic 1200.
        #expect(clock.wallClock(monotonic: 1200) == 1_700_000_000_205)
        #expect(clock.wallClock(monotonic: 61_200) == 1_700_000_060_205, "and follows the monotonic clock")
    }

    @Test(arguments: [
        #"{"serverRecvTime":"99999999999999999","serverSendTime":"99999999999999999"}"#,
        #"{"serverRecvTime":-5,"serverSendTime":-5}"#,
        #"{"serverRecvTime":"17e11","serverSendTime":"1700000000000"}"#,
        #"not json"#,
    ])
    func implausibleAnswersAreRefusedAndTheClockKept(answer: String) {
        var clock = ClockSync()
        var w = JSONWriter(capacity: 64)
        clock.request(monotonic: 1000, into: &w)
        guard case .refused = payload(answer).withUnsafeBytes({ clock.response($0, monotonic: 1100) }) else {
            Issue.record(Comment(rawValue: "accepted " + answer))
            return
        }
        #expect(clock.offset == nil)
    }
}

@Suite("Buffer file on disk")
struct BufferFileTests {
    func ring() -> SampleRing { SampleRing(capacity: 8, maxValues: 1) }

    func value(_ v: Int64) -> [PropertyValue] { [PropertyValue(index: 0, scaled: v, decimals: 0)] }

    @Test func samplesSurviveAReopenAndATornTailIsCut() throws {
        let path = scratchDirectory("torn") + "/wisp.buffer"
        do {
            var r = ring()
            let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
            for v in 1...3 {
                r.append(time: 1000 + UInt64(v), values: value(Int64(v)))
                file.appendSample(r, r.count - 1)
            }
        }
        let good = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data([0xB7, 0x01, 0x20, 0x00, 0x01, 0x02]))  // a frame cut short by a power loss
        handle.closeFile()
        var r = ring()
        _ = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
        #expect(r.count == 3)
        #expect((0..<3).map { r.seq($0) } == [1, 2, 3])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int == good, "the torn frame is cut off")
    }

    @Test func aFileForOtherSensorsIsSetAside() throws {
        let dir = scratchDirectory("foreign")
        let path = dir + "/wisp.buffer"
        do {
            var r = ring()
            let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
            r.append(time: 1, values: value(7))
            file.appendSample(r, 0)
        }
        var r = ring()
        _ = try BufferFile.open(path, names: ["temperature"], ring: &r, log: Log()).get()
        #expect(r.count == 0)
        #expect(FileManager.default.fileExists(atPath: path + ".old"), "kept for a person, not replayed as the wrong property")
    }

    @Test func compactionKeepsOnlyWaitingSamples() throws {
        let path = scratchDirectory("compact") + "/wisp.buffer"
        var r = SampleRing(capacity: 4, maxValues: 1)
        let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
        var delivered: UInt64 = 0
        for v in 1...400 {
            r.append(time: UInt64(v), values: value(Int64(v)))
            file.appendSample(r, r.count - 1)
            if r.count > 1 {  // deliver all but the newest
                let seq = r.seq(0)
                r.deliver(seq: seq)
                file.appendDelivered(seq)
                delivered += 1
            }
        }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(size <= file.limit + 64, "compacted: the file stays near its bound")
        var back = SampleRing(capacity: 4, maxValues: 1)
        _ = try BufferFile.open(path, names: ["load"], ring: &back, log: Log()).get()
        #expect(back.count == 1 && back.seq(0) == 400, "only the sample still waiting comes back")
    }
}

@Suite("Sensor number scan")
struct SensorScanTests {
    func read(_ text: String, source: String = "") -> Result<Double, SensorError> {
        let path = scratchDirectory("sensor") + "/value"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        let spec = SensorSyntax.parseSensor(identifier: "x", "file:" + path + source)!
        var sensor = Sensor(spec, board: Board())
        var scratch = ByteBuffer(capacity: 256)
        return sensor.read(scratch: &scratch)
    }

    @Test(arguments: [
        ("23.5\n", "", 23.5), ("temp=-12.25 C", "", -12.25), ("45123\n", ":0.001", 45.123), ("20", ":2:1", 41.0),
    ])
    func reads(text: String, source: String, expected: Double) throws {
        let v = try read(text, source: source).get()
        #expect(abs(v - expected) < 1e-9)
    }

    @Test(arguments: ["", "no number here", "99999999999999999999999"])
    func garbageIsAFailureNotACrash(text: String) {
        guard case .failure = read(text) else {
            Issue.record(Comment(rawValue: "read a number from '" + text + "'"))
            return
        }
    }
}

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
