import Testing
@testable import WispCore

@Suite("HTTP CONNECT response (proxy)")
struct HTTPConnectTests {
    func verdict(_ text: String) -> Result<Int, HTTPConnectError> {
        var parser = HTTPConnect(maxResponseBytes: 512)
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in
            var pos = 0
            do throws(HTTPConnectError) {
                return try parser.parse(raw, at: &pos) ? .success(pos) : .success(-1)
            } catch { return .failure(error) }
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 Connection established\r\n\r\n", 39),
        ("HTTP/1.0 200\r\nProxy-Agent: squid\r\n\r\n", 36),
    ])
    func opensOn2xx(response: String, end: Int) {
        #expect(verdict(response + "\u{16}\u{03}") == .success(end), "stops at the blank line")
    }

    @Test(arguments: [
        ("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", HTTPConnectError.refused(407)),
        ("HTTP/1.1 502 Bad Gateway\r\n\r\n", .refused(502)),
        ("HTTP/1.1200\r\n\r\n", .malformed),              // no space: used to build an invalid range and abort
        ("HTTP/1.1\r\n\r\n\r\n\r\n", .malformed),
        ("HTTP/1.1 20\r\n\r\n", .malformed),
        ("HTTP/1.1 2000 OK\r\n\r\n", .malformed),
        ("HTTP/1.1 2x0 OK\r\n\r\n", .malformed),
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", .malformed),
        ("\r\n\r\n", .malformed),
    ])
    func refusesOrRejects(response: String, error: HTTPConnectError) {
        #expect(verdict(response) == .failure(error))
    }
}

@Suite("NTP over MQTT: only plausible answers set the clock")
struct NTPTests {
    // The platform's documented example shape: times in epoch ms around 2023.
    @Test func computesTheOffset() {
        let r = NTP.offset(serverRecv: 1_700_000_000_100, serverSend: 1_700_000_000_110, sent: 5_000, received: 5_200)
        // server now = (100 + 110 + 200) / 2 past the epoch base = …205; minus monotonic 5,200.
        #expect(r == .success(1_700_000_000_205 - 5_200))
    }

    @Test(arguments: [
        (Int64.max, Int64.max, UInt64(0), UInt64(1)),             // used to overflow and abort
        (-1, -1, 0, 1),
        (Int64.min, Int64.max, 0, 1),
        (0, 0, 0, 1),
        (1_577_836_799_999, 1_577_836_800_000, 0, 1),                 // 1 ms before 2020
        (4_102_444_800_001, 4_102_444_800_001, 0, 1),                 // past 2100
        (1_700_000_000_100, 1_700_000_000_000, 0, 1),                 // sent before received
        (1_700_000_000_000, 1_700_000_000_000, 10, 5),                // answer before the request
        (1_700_000_000_000, 1_700_000_000_000, 0, 86_400_001),        // a day's round trip
        (1_700_000_000_000, 1_700_000_000_000, 0, UInt64.max),
    ])
    func refusesImplausibleAnswers(recv: Int64, send: Int64, sent: UInt64, received: UInt64) {
        guard case .failure = NTP.offset(serverRecv: recv, serverSend: send, sent: sent, received: received) else {
            Issue.record("accepted \(recv) \(send) \(sent) \(received)")
            return
        }
    }
}

@Suite("Network text in logs")
struct LogTextTests {
    @Test func forgedJournalLinesAreEscaped() {
        let text = LogText.escape(Array("ok\n<0>forged\r\u{1b}[31m\\".utf8))
        #expect(text == "ok\\x0a<0>forged\\x0d\\x1b[31m\\\\")
        #expect(!text.utf8.contains(10) && !text.utf8.contains(13))
    }

    @Test func longTextIsCapped() {
        let text = LogText.escape([UInt8](repeating: 0x41, count: 1000))
        #expect(text == String(repeating: "A", count: 200) + "… (800 more bytes)")
    }

    @Test func nonASCIIBytesAreShownAsHex() {
        #expect(LogText.escape(Array("°C".utf8)) == "\\xc2\\xb0C")
    }
}

@Suite("Key file ownership and mode")
struct KeyFileAccessTests {
    static let root: UInt32 = 0, wisp: UInt32 = 999, wispGroup: UInt32 = 998, other: UInt32 = 1000

    func facts(_ mode: UInt32, owner: UInt32 = wisp, group: UInt32 = wispGroup, user: UInt32 = wisp, regular: Bool = true) -> KeyFileAccess.Facts {
        .init(mode: mode, isRegular: regular, owner: owner, group: group, user: user, userGroup: Self.wispGroup)
    }

    @Test func accepted() {
        #expect(KeyFileAccess.check(facts(0o600)) == nil)
        #expect(KeyFileAccess.check(facts(0o400)) == nil)
        #expect(KeyFileAccess.check(facts(0o640, owner: Self.root)) == nil, "root:wisp 0640")
        #expect(KeyFileAccess.check(facts(0o600, owner: Self.root, group: Self.root)) == nil)
    }

    @Test func refused() {
        #expect(KeyFileAccess.check(facts(0o644)) == .readableByOthers(0o644))
        #expect(KeyFileAccess.check(facts(0o604)) == .readableByOthers(0o604))
        #expect(KeyFileAccess.check(facts(0o660, owner: Self.root)) == .groupWritable(0o660))
        #expect(KeyFileAccess.check(facts(0o640, owner: Self.root, group: Self.other)) == .foreignGroup(mode: 0o640, group: Self.other))
        #expect(KeyFileAccess.check(facts(0o600, owner: Self.other)) == .owner(Self.other))
        #expect(KeyFileAccess.check(facts(0o600, regular: false)) == .notRegular)
    }

    @Test func messagesNameTheFix() {
        let m = KeyFileAccess.message(.readableByOthers(0o644), path: "/etc/wisp/device.key")
        #expect(m.contains("chmod 600 /etc/wisp/device.key") && m.contains("0644"))
        #expect(KeyFileAccess.message(.foreignGroup(mode: 0o640, group: 5), path: "k").contains("root:wisp 0640"))
    }
}
