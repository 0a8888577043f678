import Testing
@testable import WispCore

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
