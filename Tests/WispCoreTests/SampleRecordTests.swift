import Testing
@testable import WispCore

@Suite("SampleRecord: one layout for the ring and the buffer file")
struct SampleRecordTests {
    @Test func ringRecordsAreTheFileLayout() {
        var ring = SampleRing(capacity: 4, maxValues: 3)
        ring.append(time: 1_700_000_000_123, values: [PropertyValue(index: 2, scaled: -2350, decimals: 2)], seq: 0x0102)
        let record = Array(ring.record(0))
        #expect(record == [0x02, 0x01, 0, 0, 0, 0, 0, 0] + [0x7B, 0x68, 0xE5, 0xCF, 0x8B, 0x01, 0, 0] + [1]
            + [2, 2] + [0xD2, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(SampleRecord.validCount(record, maxValues: 3) == 1)
        var copy = SampleRing(capacity: 4, maxValues: 3)
        copy.append(record: record[...])
        #expect(Array(copy.record(0)) == record, "a record read back is the same record")
        #expect(copy.nextSeq == 0x0103)
    }

    @Test func truncatedOrOverfullRecordsAreRefused() {
        var ring = SampleRing(capacity: 2, maxValues: 2)
        ring.append(time: 1, values: [PropertyValue(index: 0, scaled: 1, decimals: 0), PropertyValue(index: 1, scaled: 2, decimals: 0)])
        let record = Array(ring.record(0))
        #expect(SampleRecord.validCount(record, maxValues: 2) == 2)
        #expect(SampleRecord.validCount(record.dropLast(), maxValues: 2) == nil)
        #expect(SampleRecord.validCount(record, maxValues: 1) == nil)
        #expect(SampleRecord.validCount(record.prefix(10), maxValues: 2) == nil)
    }
}
