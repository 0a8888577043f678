/// Bytes read from the transport, waiting to be parsed: one fixed allocation made at
/// start-up. A class so decoders can read it through a plain pointer while the session
/// mutates its other parts (no closure holds the session's storage borrowed).
public final class InputBuffer {
    public let storage: UnsafeMutableRawBufferPointer
    public private(set) var count = 0

    public init(capacity: Int) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { storage.deallocate() }

    public var capacity: Int { storage.count }
    public var available: Int { storage.count - count }

    /// The unparsed bytes, valid until the next `append` or `removeAll`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }

    /// Lets `read` fill free space; returns what it returned.
    public func append(_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let room = available
        if room == 0 { return 0 }
        let n = read(UnsafeMutableRawBufferPointer(rebasing: storage[count..<storage.count]))
        if n > 0 { count += min(n, room) }
        return n
    }

    /// Copies bytes in (tests and tools).
    public func append<C: Collection>(contentsOf bytes: C) -> Int where C.Element == UInt8 {
        var n = 0
        for b in bytes where count < storage.count {
            storage[count] = b
            count += 1
            n += 1
        }
        return n
    }

    public func removeAll() { count = 0 }
}
