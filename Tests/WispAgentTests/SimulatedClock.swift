import WispAgent

/// A clock the test moves: monotonic and wall-clock milliseconds that change only when
/// `advance` says so.
final class SimulatedClock: @unchecked Sendable {
    var now: UInt64 = 1_000_000
    var wallOffset: UInt64 = 1_767_225_600_000 - 1_000_000  // 2026-01-01 at the start

    func advance(_ ms: UInt64) { now += ms }

    var clock: Clock {
        Clock(monotonic: { [unowned self] in now }, realtime: { [unowned self] in now + wallOffset })
    }
}
