import CWispPlatform
import TestSupport
import WispAgent
import WispCore

/// An in-memory transport: the test plays the broker. What the client sends lands in
/// `sent`; what the test `deliver`s is received; `endOfStream` ends it. Opening follows
/// `openScript`, one step per call (`.waitWritable` until the script says `.open`).
/// There is no descriptor: tests step the driver with `next(until: 0)`, which does one
/// pass of I/O and returns `.deadline` without sleeping.
final class FakeTransport: Transport {
    var openScript: [OpenStep]
    var sent: [UInt8] = []
    var inbound: [UInt8] = []
    var endOfStream = false
    var closed: Bool = false
    /// False: sends take nothing (a peer that does not read).
    var accepting = true
    var openDeadline: UInt64
    let log: FakeLog

    init(openScript: [OpenStep], openDeadline: UInt64 = UInt64.max, log: FakeLog) {
        self.openScript = openScript
        self.openDeadline = openDeadline
        self.log = log
        log.made += 1
    }

    deinit { log.closed += 1 }

    var descriptor: Int32 { -1 }

    func open(now: UInt64) -> OpenStep {
        if openScript.isEmpty { return .waitWritable }
        let step = openScript.removeFirst()
        if step == .open { log.current = self }
        return step
    }

    func openTimedOut() -> String { "fake open timed out" }

    func send(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        if !accepting { return 0 }
        sent += bytes
        return Int64(bytes.count)
    }

    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        if inbound.isEmpty { return endOfStream ? Int64(WISP_IO_CLOSED) : 0 }
        let n = min(buffer.count, inbound.count)
        for i in 0..<n { buffer[i] = inbound[i] }
        inbound.removeFirst(n)
        return Int64(n)
    }

    /// The MQTT packets sent since the last call (plain TCP framing).
    func takePackets() -> [[UInt8]] {
        defer { sent = [] }
        return MQTTStream.packets(sent)
    }
}

/// What happened to the transports a driver made.
final class FakeLog {
    var made = 0
    var closed = 0
    weak var current: FakeTransport?
}
