import WispCore

/// The Raspberry Pi firmware's throttled word (under-voltage, throttling), when the board
/// has one: a `power` event each time its low bits change.
struct PowerWatch {
    var sensor: Sensor?
    var last: Int64?
    /// Sized only on a board that has the word.
    var scratch = ByteBuffer(capacity: 0)
    let log: Log

    init(board: Board, log: Log) {
        self.log = log
        let s = Sensor(SensorSpec(identifier: "power", source: .system(.throttled)), board: board)
        if s.problem == nil {
            sensor = s
            scratch = ByteBuffer(capacity: 64)
        }
    }

    mutating func check(time: UInt64, out: inout Outbox) {
        guard var s = sensor, case .success(let v) = s.read(scratch: &scratch) else { return }
        let flags = Int64(v)
        if last.map({ $0 & 0xF != flags & 0xF }) ?? (flags & 0xF != 0) {
            log.warning("power: the firmware reports \(flags & 1 != 0 ? "under-voltage" : "no under-voltage")"
                        + (flags & 0xE != 0 ? ", throttling" : "") + " (flags 0x"
                        + Hex.encode([UInt8(flags >> 16 & 0xFF), UInt8(flags >> 8 & 0xFF), UInt8(flags & 0xFF)]) + ")")
            out.event("power", EventPost.powerFields(flags), time: time)
        }
        last = flags
        sensor = s
    }
}
