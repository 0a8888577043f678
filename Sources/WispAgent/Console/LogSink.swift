import WispCore

/// Where the log keeps the lines that go up to the console: one ring per process, shared by
/// every copy of the `Log` (a class, so a line logged anywhere lands in the one ring). The
/// agent makes it for platform devices; `LogUpload` empties it.
///
/// It keeps lines at `threshold` and above while `keeping`: from the start (the console's
/// switch is not known yet), until the switch is found off. Nothing here writes to the log
/// (a line about the ring would land in the ring).
public final class LogSink: @unchecked Sendable {  // one thread: the loop
    public var ring: LogRing
    public var threshold: Severity
    /// False while the console's switch is off: lines are not kept.
    public var keeping = true
    let monotonic: () -> UInt64

    /// 4 KiB: about 30 typical lines (the heap budget after connect is 64 KiB over wss, and
    /// a healthy device logs nothing at warning).
    public static let defaultCapacity = 4096

    public init(threshold: Severity, capacity: Int = LogSink.defaultCapacity, monotonic: @escaping () -> UInt64) {
        ring = LogRing(capacity: capacity)
        self.threshold = threshold
        self.monotonic = monotonic
    }

    /// Keeps a line of wisp's own (module `wisp`) or a diagnostic's.
    public func keep(_ level: Severity, module: UInt8 = 0, _ message: String) {
        guard keeping, level.atLeast(threshold) else { return }
        ring.append(level, module: module, at: monotonic(), message.utf8)
    }
}
