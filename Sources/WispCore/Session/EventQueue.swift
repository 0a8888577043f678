/// A small fixed ring of pending events.
///
/// It cannot overflow: `poll` hands out every queued event before parsing more input, and
/// parsing stops after each packet that queued one; one packet queues at most two (its own
/// and `.offline` when it ends the connection). `aBurstOfPacketsInOneReadLosesNoEvent`
/// feeds 44 packets in one read and checks every event comes out.
struct EventQueue {
    var items = [SessionEvent?](repeating: nil, count: 8)
    var head = 0
    var count = 0

    mutating func push(_ event: SessionEvent) {
        if count == items.count {  // drop the oldest rather than grow
            head = (head + 1) % items.count
            count -= 1
        }
        items[(head + count) % items.count] = event
        count += 1
    }

    mutating func pop() -> SessionEvent? {
        guard count > 0 else { return nil }
        let e = items[head]
        items[head] = nil
        head = (head + 1) % items.count
        count -= 1
        return e
    }
}
