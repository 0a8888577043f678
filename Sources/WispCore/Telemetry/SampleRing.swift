/// Samples waiting to be delivered, oldest first, in one fixed allocation.
///
/// Every sample enters the ring; the agent publishes from its tail (QoS 1) and a record
/// leaves only when its PUBACK arrives, so nothing sampled is lost across an outage or a
/// reconnect. When the ring is full the oldest waiting sample is dropped and counted.
///
/// Each slot holds one `SampleRecord` (the layout the buffer file stores too) for up to
/// `maxValues` values; its state and packet id live beside it.
public struct SampleRing {
    public enum State: UInt8 {
        case waiting = 0, inFlight = 1, delivered = 2
    }

    public let capacity: Int
    public let maxValues: Int
    public let recordSize: Int
    var storage: [UInt8]
    var states: [State]
    var packetIds: [UInt16]
    /// Index of the oldest record and the number of records held.
    var tail = 0
    public private(set) var count = 0
    /// Samples dropped because the ring was full, since start-up.
    public private(set) var dropped = 0
    /// The sequence number the next sample gets (persisted with it).
    public private(set) var nextSeq: UInt64 = 1

    public init(capacity: Int, maxValues: Int) {
        self.capacity = max(1, capacity)
        // A record counts its values in one byte (SampleRecord); the key file allows far fewer.
        self.maxValues = min(255, max(1, maxValues))
        recordSize = SampleRecord.size(maxValues: self.maxValues)
        storage = [UInt8](repeating: 0, count: self.capacity * recordSize)
        states = [State](repeating: .delivered, count: self.capacity)
        packetIds = [UInt16](repeating: 0, count: self.capacity)
    }

    func slot(_ i: Int) -> Int { (tail + i) % capacity }

    /// Appends a sample; returns its sequence number. A full ring first drops its oldest
    /// waiting record (or, when every record is in flight, this sample) and counts it.
    @discardableResult
    public mutating func append<S: Sequence>(time: UInt64, values: S, seq: UInt64? = nil) -> UInt64? where S.Element == PropertyValue {
        trim()
        if count == capacity {
            guard let oldest = (0..<count).first(where: { state(slot($0)) == .waiting }) else {
                dropped += 1
                return nil
            }
            remove(at: oldest)
            dropped += 1
        }
        let s = slot(count)
        let number = seq ?? nextSeq
        // Saturating: a record read back from the disk may carry any seq, UInt64.max included.
        nextSeq = max(nextSeq, number < UInt64.max ? number + 1 : number)
        SampleRecord.write(seq: number, time: time, values: values, maxValues: maxValues, into: &storage, at: s * recordSize)
        states[s] = .waiting
        packetIds[s] = 0
        count += 1
        return number
    }

    /// The oldest record not yet sent, as a ring position (0 = oldest).
    public func nextWaiting() -> Int? {
        (0..<count).first { state(slot($0)) == .waiting }
    }

    public func isWaiting(_ position: Int) -> Bool { state(slot(position)) == .waiting }

    /// How many values the record at `position` holds.
    public func valueCount(_ position: Int) -> Int { Int(storage[slot(position) * recordSize + 16]) }

    public mutating func markSent(_ position: Int, packetId: UInt16) {
        let s = slot(position)
        states[s] = .inFlight
        packetIds[s] = packetId
    }

    /// PUBACK for `packetId`: a record sent in it is delivered; returns its sequence number
    /// (a history batch carries several: call until nil).
    public mutating func acknowledge(_ packetId: UInt16) -> UInt64? {
        for i in 0..<count {
            let s = slot(i)
            if state(s) == .inFlight && packetIds[s] == packetId {
                states[s] = .delivered
                let seq = get64(at: s * recordSize)
                trim()
                return seq
            }
        }
        return nil
    }

    /// Removes a record by sequence number (an acknowledgement replayed from the file).
    public mutating func deliver(seq: UInt64) {
        for i in 0..<count where get64(at: slot(i) * recordSize) == seq {
            states[slot(i)] = .delivered
        }
        trim()
    }

    /// After a restart nothing is in flight: those records wait to be sent again.
    public mutating func requeueInFlight() {
        for i in 0..<count where state(slot(i)) == .inFlight {
            states[slot(i)] = .waiting
        }
    }

    public var waitingCount: Int { (0..<count).filter { state(slot($0)) == .waiting }.count }

    public func seq(_ position: Int) -> UInt64 { get64(at: slot(position) * recordSize) }
    public func time(_ position: Int) -> UInt64 { get64(at: slot(position) * recordSize + 8) }

    /// The record's values, for rendering.
    public func values(_ position: Int) -> RecordValues {
        RecordValues(storage: storage, base: slot(position) * recordSize, count: Int(storage[slot(position) * recordSize + 16]))
    }

    /// The used bytes of a record, in `SampleRecord` layout (what the buffer file stores).
    public func record(_ position: Int) -> ArraySlice<UInt8> {
        let base = slot(position) * recordSize
        return storage[base..<(base + SampleRecord.length(count: Int(storage[base + 16])))]
    }

    /// Appends a record read back from the buffer file (already checked with
    /// `SampleRecord.validCount`).
    @discardableResult
    public mutating func append(record bytes: ArraySlice<UInt8>) -> UInt64? {
        let seq = SampleRecord.seq(bytes)
        guard append(time: 0, values: EmptyCollection(), seq: seq) != nil else { return nil }
        // The same layout: the record goes into its slot byte for byte.
        let base = slot(count - 1) * recordSize
        for (k, b) in bytes.enumerated() where k < recordSize { storage[base + k] = b }
        return seq
    }

    /// Holds the record bytes' array alone: a copy of the whole ring cost a retain and a
    /// release of each of its arrays per post.
    public struct RecordValues: Sequence, IteratorProtocol {
        let storage: [UInt8]
        let base: Int
        let count: Int
        var i = 0

        public mutating func next() -> PropertyValue? {
            guard i < count else { return nil }
            let v = SampleRecord.value(storage[base...], i)
            i += 1
            return v
        }
    }

    // MARK: internals

    func state(_ s: Int) -> State { states[s] }

    /// Drops delivered records from the tail.
    mutating func trim() {
        while count > 0 && state(tail) == .delivered {
            tail = (tail + 1) % capacity
            count -= 1
        }
    }

    /// Removes the record at `position`, closing the gap (rare: a full ring).
    mutating func remove(at position: Int) {
        var i = position
        while i > 0 {
            copyRecord(from: slot(i - 1), to: slot(i))
            i -= 1
        }
        tail = (tail + 1) % capacity
        count -= 1
    }

    mutating func copyRecord(from a: Int, to b: Int) {
        for k in 0..<recordSize { storage[b * recordSize + k] = storage[a * recordSize + k] }
        states[b] = states[a]
        packetIds[b] = packetIds[a]
    }

    func get64(at i: Int) -> UInt64 { SampleRecord.get64(storage, i) }
}
