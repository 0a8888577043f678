/// Log entries waiting to go up to the console (`thing.log.post`): a fixed byte ring, sized
/// once, that never allocates. Each entry is a 12-byte head (content length, level, module,
/// monotonic ms) and its content; a full ring drops its oldest entries whole and counts them.
public struct LogRing {
    public struct Entry {
        public let level: Severity
        /// An index into `LogPost.modules`.
        public let module: UInt8
        /// Monotonic milliseconds when it was logged.
        public let at: UInt64
        /// Where the content is: `count` bytes from `start`, wrapping around the ring.
        let start: Int
        public let count: Int
    }

    static let head = 12
    var storage: [UInt8]
    /// The oldest entry's first byte, and the bytes in use.
    var first = 0
    var used = 0
    public private(set) var count = 0
    /// Entries dropped to make room since the last `takeDropped`.
    public private(set) var dropped = 0

    /// `capacity` bytes; an entry's content is cut at `LogPost.maxContent` and at what fits.
    public init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(capacity, LogRing.head + 64))
    }

    public var capacity: Int { storage.count }
    public var isEmpty: Bool { count == 0 }

    /// Keeps `content` (cut at a character boundary to at most `LogPost.maxContent` bytes
    /// and what the ring holds), dropping the oldest entries to make room.
    public mutating func append<C: Collection<UInt8>>(_ level: Severity, module: UInt8, at: UInt64, _ content: C) {
        var n = min(content.count, LogPost.maxContent, storage.count - LogRing.head)
        if n < content.count {
            // Back up to the start of a UTF-8 character (continuation bytes are 10xxxxxx).
            var i = content.index(content.startIndex, offsetBy: n)
            while n > 0 && i != content.endIndex && content[i] & 0xC0 == 0x80 {
                n -= 1
                i = content.index(content.startIndex, offsetBy: n)
            }
        }
        while storage.count - used < LogRing.head + n { dropOldest() }
        var p = (first + used) % storage.count
        func put(_ b: UInt8) {
            storage[p] = b
            p = p + 1 == storage.count ? 0 : p + 1
        }
        put(UInt8(truncatingIfNeeded: n))
        put(UInt8(truncatingIfNeeded: n >> 8))
        put(UInt8(truncatingIfNeeded: level.rawValue))
        put(module)
        for k in 0..<8 { put(UInt8(truncatingIfNeeded: at >> UInt64(8 * k))) }
        var taken = 0
        for b in content where taken < n {
            put(b)
            taken += 1
        }
        used += LogRing.head + n
        count += 1
    }

    /// The oldest entry (the ring must not be empty).
    public var oldest: Entry { entry(at: first) }

    /// The entry after `e`, if any.
    public func entry(after e: Entry, index: Int) -> Entry? {
        index + 1 < count ? entry(at: (e.start + e.count) % storage.count) : nil
    }

    func entry(at p: Int) -> Entry {
        func b(_ k: Int) -> UInt8 { storage[(p + k) % storage.count] }
        let n = Int(b(0)) | Int(b(1)) << 8
        var at: UInt64 = 0
        for k in 0..<8 { at |= UInt64(b(4 + k)) << UInt64(8 * k) }
        return Entry(level: Severity(rawValue: Int(b(2))) ?? .error, module: b(3), at: at,
                     start: (p + LogRing.head) % storage.count, count: n)
    }

    /// Calls `body` with the content of `e`, in at most two pieces (the ring wraps).
    public func content(_ e: Entry, _ body: (ArraySlice<UInt8>) -> Void) {
        let end = e.start + e.count
        if end <= storage.count {
            body(storage[e.start..<end])
        } else {
            body(storage[e.start...])
            body(storage[0..<(end - storage.count)])
        }
    }

    /// Removes the `n` oldest entries.
    public mutating func removeFirst(_ n: Int) {
        for _ in 0..<min(n, count) { removeOne() }
    }

    public mutating func removeAll() {
        first = 0
        used = 0
        count = 0
    }

    /// The dropped count, reset.
    public mutating func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }

    mutating func dropOldest() {
        removeOne()
        dropped += 1
    }

    mutating func removeOne() {
        let e = oldest
        let size = LogRing.head + e.count
        first = (first + size) % storage.count
        used -= size
        count -= 1
        if count == 0 { first = 0 }
    }
}
