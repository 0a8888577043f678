/// Masking keys for client frames. RFC 6455 §5.3: each key must be "derived from a strong
/// source of entropy" and unpredictable to the path, so that a client cannot be used to
/// poison an intermediary's cache. Keys are taken 4 bytes at a time from a pool that
/// `fill` (the kernel CSPRNG, from the agent) refills a batch at a time: one system call
/// per 64 frames and no allocation after start-up.
///
/// `fill` must fill the whole buffer or not return (a failing CSPRNG is fatal to the
/// agent: never a zero or repeated key).
public struct MaskPool {
    public typealias Fill = (UnsafeMutableRawBufferPointer) -> Void

    var pool: [UInt8]
    var used: Int
    let fill: Fill

    public init(batch: Int = 256, fill: @escaping Fill) {
        pool = [UInt8](repeating: 0, count: max(8, batch & ~3))
        used = pool.count
        self.fill = fill
    }

    /// The next 4 bytes of the pool, refilling it when it is spent.
    public mutating func next() -> UInt32 {
        if used + 4 > pool.count {
            let f = fill
            pool.withUnsafeMutableBytes { f($0) }
            used = 0
        }
        let v = UInt32(pool[used]) << 24 | UInt32(pool[used + 1]) << 16 | UInt32(pool[used + 2]) << 8 | UInt32(pool[used + 3])
        used += 4
        return v
    }

    /// 8 bytes of the pool, e.g. to seed the backoff jitter.
    public mutating func next64() -> UInt64 { UInt64(next()) << 32 | UInt64(next()) }
}
