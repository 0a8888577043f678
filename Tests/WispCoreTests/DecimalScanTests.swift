import Testing
@testable import WispCore

@Suite("DecimalScan: the one decimal scanner")
struct DecimalScanTests {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test(arguments: [
        ("0", Optional<Int64>(0)), ("443", 443), ("65535", 65535), ("999999999999999999", 999_999_999_999_999_999),
        ("", nil), ("-1", nil), ("1 ", nil), (" 1", nil), ("1.0", nil), ("1234567890123456789", nil), ("0x10", nil),
    ])
    func whole(text: String, value: Int64?) {
        #expect(DecimalScan.whole(bytes(text)) == value)
    }

    @Test func digitsHonourTheCap() {
        #expect(DecimalScan.digits(bytes("port:8443/"), from: 5, maxDigits: 5)! == (8443, 9))
        #expect(DecimalScan.digits(bytes("123456"), from: 0, maxDigits: 5) == nil, "six digits are not a port")
        #expect(DecimalScan.digits(bytes("x"), from: 0) == nil)
    }

    @Test(arguments: [
        ("45123\n", 0, Optional<Int64>(45123)), ("-2.5", 3, -2500), ("23.456789", 3, 23456), ("0.000244140625", 12, 244_140_625),
        ("7.", 1, 70), ("9223372036854775807", 0, Int64.max), ("9223372036854775808", 0, nil), ("922337203685477580", 2, nil),
    ])
    func fixed(text: String, decimals: Int, value: Int64?) {
        #expect(DecimalScan.fixed(bytes(text), from: 0, decimals: decimals)?.value == value)
    }

    @Test func firstNumberInFreeText() {
        let meminfo = bytes("MemTotal:  3884000 kB\nMemAvailable:    2543216 kB\n")
        #expect(DecimalScan.firstNumber(meminfo, from: 0, decimals: 0)?.value == 3_884_000)
        #expect(DecimalScan.firstNumber(meminfo, from: 22, decimals: 0)?.value == 2_543_216)
        #expect(DecimalScan.firstNumber(bytes("t=-1250"), decimals: 0)?.value == -1250)
        #expect(DecimalScan.firstNumber(bytes("no number - here"), decimals: 0) == nil)
    }

    @Test func trimmed() {
        #expect(Array(DecimalScan.trimmed(bytes(" \t key = v \r"))) == bytes("key = v"))
        #expect(DecimalScan.trimmed(bytes("   ")).isEmpty)
    }

    @Test(arguments: [("-2.5", Optional(-2.5)), (".5", 0.5), ("0.000244140625", 0.000244140625), ("3", 3.0), ("", nil), ("-", nil), ("1.2.3", nil), ("1e3", nil)])
    func sensorNumbers(text: String, value: Double?) {
        #expect(SensorSyntax.parseNumber(text) == value)
    }
}

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
