import Testing
@testable import WispCore

@Suite("Offline sample ring")
struct SampleRingTests {
    func sample(_ v: Int64) -> [PropertyValue] { [PropertyValue(index: 0, scaled: v, decimals: 0)] }

    func firstValue(_ ring: SampleRing, _ position: Int) -> Int64 {
        var it = ring.values(position).makeIterator()
        return it.next()!.scaled
    }

    @Test func keepsOrderAndLeavesOnlyOnAcknowledgement() {
        var ring = SampleRing(capacity: 4, maxValues: 2)
        for v in 1...3 { ring.append(time: UInt64(v), values: sample(Int64(v))) }
        #expect(ring.count == 3 && ring.nextWaiting() == 0)
        ring.markSent(0, packetId: 10)
        ring.markSent(1, packetId: 11)
        #expect(ring.nextWaiting() == 2)
        #expect(ring.acknowledge(11) == 2)      // out of order: the head stays until 10 is acked
        #expect(ring.count == 3)
        #expect(ring.acknowledge(10) == 1)
        #expect(ring.count == 1 && firstValue(ring, 0) == 3)
        #expect(ring.acknowledge(99) == nil)
    }

    @Test func fullRingDropsTheOldestWaitingAndCounts() {
        var ring = SampleRing(capacity: 3, maxValues: 1)
        for v in 1...5 { ring.append(time: UInt64(v), values: sample(Int64(v))) }
        #expect(ring.dropped == 2)
        #expect((0..<ring.count).map { firstValue(ring, $0) } == [3, 4, 5])
        #expect((0..<ring.count).map { ring.seq($0) } == [3, 4, 5])
    }

    @Test func inFlightRecordsAreNotDropped() {
        var ring = SampleRing(capacity: 2, maxValues: 1)
        ring.append(time: 1, values: sample(1))
        ring.append(time: 2, values: sample(2))
        ring.markSent(0, packetId: 1)
        ring.append(time: 3, values: sample(3))     // drops 2, the oldest waiting
        #expect((0..<ring.count).map { firstValue(ring, $0) } == [1, 3])
        ring.markSent(1, packetId: 2)
        #expect(ring.append(time: 4, values: sample(4)) == nil)  // all in flight: this one is dropped
        #expect(ring.dropped == 2)
        ring.requeueInFlight()
        #expect(ring.nextWaiting() == 0)
    }

    @Test func wrapsAroundManyTimes() {
        var ring = SampleRing(capacity: 5, maxValues: 3)
        var expected: Int64 = 1
        for v in 1...1000 {
            ring.append(time: UInt64(v), values: [PropertyValue(index: 2, scaled: Int64(v), decimals: 1)])
            ring.markSent(ring.nextWaiting()!, packetId: UInt16(v))
            #expect(ring.acknowledge(UInt16(v)) == UInt64(expected))
            expected += 1
        }
        #expect(ring.count == 0 && ring.dropped == 0)
    }
}

@Suite("SampleRing with records from the disk")
struct SampleRingDiskTests {
    /// Found by the bufferfile fuzzer: a checksum-valid record with seq UInt64.max trapped
    /// in `nextSeq = seq + 1`, so one bad file made wisp crash at every start.
    @Test func aRecordWithTheLargestSeqIsKeptNotATrap() {
        var ring = SampleRing(capacity: 4, maxValues: 2)
        var storage = [UInt8](repeating: 0, count: SampleRecord.size(maxValues: 2))
        let n = SampleRecord.write(seq: UInt64.max, time: 1, values: [PropertyValue(index: 0, scaled: 5, decimals: 0)], maxValues: 2,
                                   into: &storage, at: 0)
        #expect(ring.append(record: storage[0..<SampleRecord.length(count: n)]) == UInt64.max)
        #expect(ring.append(time: 2, values: [PropertyValue(index: 0, scaled: 6, decimals: 0)]) != nil)
        #expect(ring.count == 2)
    }
}
