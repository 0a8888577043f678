import Testing
@testable import WispAgent
import WispCore

@Suite("ClockSync: the platform's clock")
struct ClockSyncTests {
    func payload(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func onlyAnAnswerToOurRequestSetsTheClock() {
        var clock = ClockSync()
        let answer = payload(#"{"deviceSendTime":"1000","serverRecvTime":"1700000000100","serverSendTime":"1700000000110"}"#)
        #expect(answer.withUnsafeBytes { clock.response($0, monotonic: 1200) } == .unsolicited)
        var w = JSONWriter(capacity: 64)
        clock.request(monotonic: 1000, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"deviceSendTime":"1000"}"#)
        #expect(answer.withUnsafeBytes { clock.response($0, monotonic: 1200) } == .set)
        // (100 + 110 + 200) / 2 = 205 past the base at monotonic 1200.
        #expect(clock.wallClock(monotonic: 1200) == 1_700_000_000_205)
        #expect(clock.wallClock(monotonic: 61_200) == 1_700_000_060_205, "and follows the monotonic clock")
    }

    @Test(arguments: [
        #"{"serverRecvTime":"99999999999999999","serverSendTime":"99999999999999999"}"#,
        #"{"serverRecvTime":-5,"serverSendTime":-5}"#,
        #"{"serverRecvTime":"17e11","serverSendTime":"1700000000000"}"#,
        #"not json"#,
    ])
    func implausibleAnswersAreRefusedAndTheClockKept(answer: String) {
        var clock = ClockSync()
        var w = JSONWriter(capacity: 64)
        clock.request(monotonic: 1000, into: &w)
        guard case .refused = payload(answer).withUnsafeBytes({ clock.response($0, monotonic: 1100) }) else {
            Issue.record(Comment(rawValue: "accepted " + answer))
            return
        }
        #expect(clock.offset == nil)
    }
}
