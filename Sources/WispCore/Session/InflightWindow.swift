/// QoS 1 messages awaiting PUBACK: fixed slots holding each encoded PUBLISH.
struct InflightWindow {
    var buffers: [ByteBuffer]
    var ids: [UInt16]
    var order: [UInt64]
    var sequence: UInt64 = 0

    init(slots: Int, capacity: Int) {
        buffers = []
        for _ in 0..<slots { buffers.append(ByteBuffer(capacity: capacity)) }
        ids = [UInt16](repeating: 0, count: slots)
        order = [UInt64](repeating: 0, count: slots)
    }

    var count: Int {
        var n = 0
        for id in ids where id != 0 { n += 1 }
        return n
    }

    func freeSlot() -> Int? {
        for i in ids.indices where ids[i] == 0 { return i }
        return nil
    }

    mutating func occupy(_ slot: Int, id: UInt16) {
        ids[slot] = id
        sequence += 1
        order[slot] = sequence
    }

    mutating func release(_ id: UInt16) -> Bool {
        for i in ids.indices where ids[i] == id {
            ids[i] = 0
            buffers[i].removeAll()
            return true
        }
        return false
    }

    /// Occupied slots, oldest first (what is resent after a reconnect). Start-up-sized
    /// and small: a selection over a handful of slots.
    func inOrder() -> InflightOrder { InflightOrder(window: self) }
}

/// Iterates occupied in-flight slots oldest first without allocating.
struct InflightOrder: Sequence, IteratorProtocol {
    let window: InflightWindow
    var last: UInt64 = 0

    mutating func next() -> Int? {
        var best: Int?
        for i in window.ids.indices where window.ids[i] != 0 && window.order[i] > last {
            if best == nil || window.order[i] < window.order[best!] { best = i }
        }
        if let b = best { last = window.order[b] }
        return best
    }
}
