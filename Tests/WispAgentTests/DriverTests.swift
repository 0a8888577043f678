import CWispPlatform
import Glibc
import Testing
@testable import WispAgent
import WispCore

/// The driver over an in-memory transport and a simulated clock: the poll loop's decisions
/// (open, write, read, end of stream, reconnect, timeouts, backoff, signals) without a
/// socket and without waiting for real time.
@Suite("Driver over a fake transport")
struct DriverTests {
    static let connack: [UInt8] = [0x20, 0x02, 0x00, 0x00]
    let time = SimulatedClock()

    func makeDriver(_ log: FakeLog, script: [OpenStep] = [.waitWritable, .open], openDeadline: UInt64 = UInt64.max,
                    signals: Int32 = -1) -> Driver<FakeTransport> {
        var config = SessionConfig(keepAlive: 60, webSocket: nil)
        config.backoff.initial = 20
        config.backoff.minimum = 10
        let time = self.time
        return Driver(
            session: Session(config: config, now: time.now, random: Entropy.fill), signals: signals, clock: time.clock,
            transport: { FakeTransport(openScript: script, openDeadline: openDeadline == UInt64.max ? .max : time.now + openDeadline, log: log) },
            connect: { MQTTEncoder.Connect(clientId: "fake-1", keepAlive: 60) },
            webSocketKey: { .rfcExample })
    }

    /// Steps the driver until `match` says stop, the simulated clock moving 1 ms each time
    /// the driver has nothing to do (at most 10 simulated seconds); returns what it saw.
    func run(_ driver: inout Driver<FakeTransport>, until match: (Driver<FakeTransport>.Event) -> Bool) -> [Driver<FakeTransport>.Event] {
        var seen: [Driver<FakeTransport>.Event] = []
        let end = time.now + 10_000
        while time.now < end {
            let e = driver.next(until: 0)
            if case .deadline = e {
                time.advance(1)
                continue
            }
            seen.append(e)
            if match(e) { break }
        }
        return seen
    }

    @Test func connectsPublishesAndIsAcknowledged() throws {
        let log = FakeLog()
        var driver = makeDriver(log)
        let opening = run(&driver) { if case .opened = $0 { return true }; return false }
        #expect(opening.count == 2, "connecting, then opened after the scripted wait")
        let t = try #require(log.current)
        _ = driver.next(until: 0)
        let connect = t.takePackets()
        #expect(connect.count == 1 && connect[0][0] == 0x10, "CONNECT written")
        t.inbound = Self.connack
        let online = run(&driver) { if case .session(.online) = $0 { return true }; return false }
        #expect(!online.isEmpty)
        let id = try driver.session.publish(topic: "t", payload: [1, 2], qos: .atLeastOnce)
        _ = driver.next(until: 0)
        let publish = t.takePackets()
        #expect(publish.count == 1 && publish[0][0] == 0x32)
        t.inbound = [0x40, 0x02, UInt8(id >> 8), UInt8(id & 0xFF)]
        let delivered = run(&driver) { if case .session(.delivered(id)) = $0 { return true }; return false }
        #expect(!delivered.isEmpty)
    }

    /// A broker that sends CONNACK and closes in the same breath: the CONNACK is parsed
    /// first, then the end of the stream; the session reconnects with a new transport.
    @Test func bytesBeforeTheEndOfStreamAreParsedFirstThenItReconnects() throws {
        let log = FakeLog()
        var driver = makeDriver(log)
        _ = run(&driver) { if case .opened = $0 { return true }; return false }
        weak var t = log.current  // weak: the driver alone owns its transport
        try #require(t != nil)
        t!.inbound = Self.connack
        t!.endOfStream = true
        let events = run(&driver) { if case .session(.offline) = $0 { return true }; return false }
        var sawOnline = false, sawClosed = false
        for e in events {
            if case .session(.online) = e { sawOnline = true }
            if case .closed(.transportClosed) = e { sawClosed = true }
        }
        #expect(sawOnline && sawClosed)
        let again = run(&driver) { if case .opened = $0 { return true }; return false }
        #expect(!again.isEmpty)
        #expect(log.made == 2 && log.closed == 1, "a fresh transport for the retry; the old one closed")
    }

    @Test func anOpenThatNeverCompletesTimesOut() {
        let log = FakeLog()
        var driver = makeDriver(log, script: [], openDeadline: 30)
        let start = time.now
        let events = run(&driver) { if case .openFailed = $0 { return true }; return false }
        #expect(time.now - start == 30, "it gives up exactly at the open deadline")
        guard case .openFailed(let message)? = events.last else {
            Issue.record("\(events)")
            return
        }
        #expect(message == "fake open timed out")
        #expect(log.closed == 1)
    }

    @Test func aFailedOpenBacksOffAndRetries() {
        let log = FakeLog()
        var driver = makeDriver(log, script: [.failed("refused by the fake")])
        let start = time.now
        let events = run(&driver) { _ in log.made >= 2 }
        var failed = 0
        for e in events { if case .openFailed("refused by the fake") = e { failed += 1 } }
        #expect(failed >= 1)
        #expect(log.made >= 2)
        #expect(time.now - start >= 10 && time.now - start <= 20, "the retry waits the backoff: between its minimum and first ceiling")
    }

    /// SIGTERM while a connect hangs: the signal wakes the driver (it is not blocked in
    /// the open), and stopping drops the half-open transport at once.
    @Test func aSignalInterruptsAnOpenThatHangs() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let log = FakeLog()
        var driver = makeDriver(log, script: [], signals: fds[0])
        #expect({ if case .connecting = driver.next(until: .max) { return true }; return false }())
        var byte: UInt8 = 15
        #expect(write(fds[1], &byte, 1) == 1)
        // The simulated clock stands still: only the signal can end this poll (its timeout is 5 s).
        let start = System.monotonicMillis
        let woke = driver.next(until: time.now + 5000)
        guard case .signal = woke else {
            Issue.record("\(woke)")
            return
        }
        #expect(System.monotonicMillis - start < 1000)
        driver.session.stop(now: time.now)
        let end = driver.next(until: .max)
        guard case .stopped = end else {
            Issue.record("\(end)")
            return
        }
        #expect(log.made == 1 && log.closed == 1)
    }
}
