/// A small, fast PRNG (SplitMix64) for reconnect jitter, which needs spread, not secrecy
/// (WebSocket masks come from the CSPRNG, MaskPool). Seeded from the CSPRNG by the
/// session; tests seed it with a constant and get repeatable runs.
public struct SplitMix64: Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0...bound.
    public mutating func next(upTo bound: UInt64) -> UInt64 {
        bound == UInt64.max ? next() : next() % (bound + 1)
    }
}

/// Reconnect delays: exponential with full jitter (a random delay between `minimum` and
/// the current ceiling), capped; the ceiling resets once a connection has stayed up for
/// `stableAfter`. Refused credentials wait at least `refusedMinimum`: a device with a
/// wrong secret must not hammer the platform.
public struct Backoff: Sendable, Equatable {
    /// All in milliseconds.
    public var initial: UInt64 = 1_000
    public var maximum: UInt64 = 60_000
    public var minimum: UInt64 = 250
    public var refusedMinimum: UInt64 = 60_000
    public var stableAfter: UInt64 = 60_000
    /// Failed attempts since the last stable connection.
    public private(set) var attempts = 0

    public init() {}

    /// The ceiling the next delay is drawn under.
    public var ceiling: UInt64 {
        let shift = UInt64(min(attempts, 30))
        let value = initial << shift
        return min(maximum, value >> shift == initial ? value : maximum)
    }

    /// The delay before the next attempt; counts the attempt.
    public mutating func nextDelay(refused: Bool, random: inout SplitMix64) -> UInt64 {
        var delay = max(minimum, random.next(upTo: ceiling))
        if refused {
            delay = refusedMinimum + random.next(upTo: min(maximum, max(ceiling, refusedMinimum)))
        }
        attempts += 1
        return delay
    }

    /// The connection has been up for `stableAfter`: start again from `initial`.
    public mutating func reset() { attempts = 0 }
}
