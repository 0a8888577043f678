import CWispPlatform

/// Time as a value: the driver, the downloader and the device read the clock they are
/// given, so the tests run them on a simulated one (no sleeps, no real-time windows).
public struct Clock {
    /// Monotonic milliseconds (deadlines, timeouts, backoff).
    public let monotonic: () -> UInt64
    /// Wall-clock milliseconds since 1970 (sample times before the platform's clock is known).
    public let realtime: () -> UInt64

    public init(monotonic: @escaping () -> UInt64, realtime: @escaping () -> UInt64) {
        self.monotonic = monotonic
        self.realtime = realtime
    }

    /// The system's clocks.
    public static var system: Clock { Clock(monotonic: { wisp_monotonic_ms() }, realtime: { wisp_realtime_ms() }) }
}
