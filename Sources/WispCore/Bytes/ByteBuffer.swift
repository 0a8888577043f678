/// A byte buffer whose capacity is fixed when it is made.
///
/// Encoders size first, then `reserve` the bytes and write them, so a buffer never grows
/// and steady state never allocates: the storage is one array, created at start-up,
/// written in place. Appending past the capacity is a thrown `BufferTooSmall`, never a
/// reallocation and never a trap.
public struct ByteBuffer {
    var storage: [UInt8]
    /// Bytes written so far, from index 0.
    public private(set) var count: Int = 0

    public init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: capacity)
    }

    public var capacity: Int { storage.count }
    public var available: Int { storage.count - count }
    public var isEmpty: Bool { count == 0 }

    public subscript(index: Int) -> UInt8 {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    /// Fails unless `n` more bytes fit.
    public func reserve(_ n: Int) throws(BufferTooSmall) {
        if n > available { throw BufferTooSmall(needed: n, available: available) }
    }

    /// Appends one byte; the caller has reserved room (a trap here is a bug in an encoder).
    public mutating func put(_ byte: UInt8) {
        storage[count] = byte
        count += 1
    }

    public mutating func put16(_ value: UInt16) {
        put(UInt8(truncatingIfNeeded: value >> 8))
        put(UInt8(truncatingIfNeeded: value))
    }

    public mutating func put(utf8 string: String) {
        for byte in string.utf8 { put(byte) }
    }

    public mutating func put<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        for byte in bytes { put(byte) }
    }

    /// Appends `bytes` if they fit.
    public mutating func append<C: Collection>(_ bytes: C) throws(BufferTooSmall) where C.Element == UInt8 {
        try reserve(bytes.count)
        put(contentsOf: bytes)
    }

    public mutating func append(utf8 string: String) throws(BufferTooSmall) {
        try reserve(string.utf8.count)
        put(utf8: string)
    }

    /// Forgets everything written; the capacity stays.
    public mutating func removeAll() { count = 0 }

    /// Shortens the content to `length` bytes (used to undo a partial write).
    public mutating func truncate(to length: Int) {
        if length < count { count = max(0, length) }
    }

    /// Drops the first `n` bytes (those just sent), moving the rest to the front.
    public mutating func removeFirst(_ n: Int) {
        let n = min(n, count)
        if n == 0 { return }
        let rest = count - n
        if rest > 0 {
            storage.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress!
                (base).update(from: base + n, count: rest)
            }
        }
        count = rest
    }

    /// Makes room for `n` bytes at the end and lets `body` fill them (a socket read, say);
    /// `body` returns how many it wrote.
    public mutating func appendInPlace(upTo n: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let room = min(n, available)
        if room == 0 { return 0 }
        let start = count
        let written = storage.withUnsafeMutableBytes { raw in
            body(UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + room)]))
        }
        if written > 0 { count += min(written, room) }
        return written
    }

    /// The written bytes, read-only, for the duration of `body`.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let n = count
        return storage.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
    }

    /// The written bytes as a collection indexed from 0, without copying (for DecimalScan).
    public var written: ArraySlice<UInt8> { storage[0..<count] }

    /// The bytes in `range`, as a collection that does not copy.
    public func bytesView(_ range: Range<Int>) -> ArraySlice<UInt8> { storage[range] }

    /// A copy of the written bytes (tests and start-up only: it allocates).
    public var bytes: [UInt8] { Array(storage[0..<count]) }

    /// True when bytes[range] equal the UTF-8 of `string` (no allocation).
    public func bytes(_ range: Range<Int>, equal string: String) -> Bool {
        if range.count != string.utf8.count { return false }
        var i = range.lowerBound
        for byte in string.utf8 {
            if storage[i] != byte { return false }
            i += 1
        }
        return true
    }
}

/// An encoder needed more room than the fixed buffer had.
public struct BufferTooSmall: Error, Equatable {
    public var needed: Int
    public var available: Int
}
