/// The descriptors of the driver's one poll(2): the transport's and the signals' (slots 0
/// and 1, the driver's), then those a caller adds (downloads, the tunnel): a fixed number of slots,
/// set each turn, nothing allocated.
public struct PollSlots {
    /// The downloads (4), the tunnel's connection and its sessions (1 + 4).
    public static var capacity: Int { 9 }
    static var first: Int { 2 }
    public internal(set) var fds = [Int32](repeating: -1, count: PollSlots.first + PollSlots.capacity)
    public internal(set) var events = [Int32](repeating: 0, count: PollSlots.first + PollSlots.capacity)
    /// Slots in use, the driver's two included: poll(2) looks at no more.
    public private(set) var count = PollSlots.first

    public init() {}

    /// Empties the caller's slots.
    public mutating func clear() {
        for i in PollSlots.first..<count {
            fds[i] = -1
            events[i] = 0
        }
        count = PollSlots.first
    }

    /// Adds `fd`, waiting for `events` (1 readable, 2 writable); false when all slots are taken.
    @discardableResult
    public mutating func add(_ fd: Int32, events wanted: Int32) -> Bool {
        guard fd >= 0 else { return true }
        guard count < fds.count else { return false }
        fds[count] = fd
        events[count] = wanted
        count += 1
        return true
    }
}
