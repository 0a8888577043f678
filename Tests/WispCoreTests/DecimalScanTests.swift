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
}
