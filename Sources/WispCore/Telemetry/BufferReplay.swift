/// Reads back the buffer file (`buffer_file`), fed in chunks of any size — the disk is
/// hostile until parsed, so this is the one parser of it and has a fuzz harness.
///
/// The file is a run of frames `B7 type len(u16 LE) payload crc32(u32 LE)`, the checksum
/// over type, length and payload. Type 0 names the properties (a file written for other
/// sensors is foreign), 1 is a sample in `SampleRecord` layout, 2 marks a sample delivered
/// (its seq, u64 LE). Replay stops at the first frame that is torn, fails its checksum or is
/// longer than any frame wisp writes; `good` says where the file is to be cut.
public struct BufferReplay {
    public static let magic: UInt8 = 0xB7

    public enum Outcome: Equatable, Sendable {
        /// Every frame so far was whole and valid: feed more, or stop at the end of the file.
        case reading
        /// A torn, corrupt or oversized frame: nothing after `good` is read.
        case ended
        /// The file was written for other properties (or is not a buffer file of ours).
        case foreign
    }

    public private(set) var outcome = Outcome.reading
    /// Bytes of valid frames from the start of the file.
    public private(set) var good = 0
    /// Samples appended to the ring.
    public private(set) var replayed = 0
    let header: [UInt8]
    let maxValues: Int
    /// The largest frame wisp writes for this header and ring.
    public let maxFrame: Int
    /// The frame being assembled (never more than `maxFrame` bytes).
    var frame: [UInt8] = []
    var need = 4
    var sameHeader = false

    public init(header: [UInt8], maxValues: Int) {
        self.header = header
        self.maxValues = maxValues
        maxFrame = 8 + max(header.count, SampleRecord.size(maxValues: maxValues), 8)
        frame.reserveCapacity(maxFrame)
    }

    /// Takes the next bytes of the file; samples and delivery marks go into `ring`.
    public mutating func feed<C: Collection>(_ chunk: C, into ring: inout SampleRing) where C.Element == UInt8 {
        var i = chunk.startIndex
        while outcome == .reading && i != chunk.endIndex {
            let take = min(need - frame.count, chunk.distance(from: i, to: chunk.endIndex))
            let j = chunk.index(i, offsetBy: take)
            frame.append(contentsOf: chunk[i..<j])
            i = j
            if frame.count == need { step(&ring) }
        }
    }

    mutating func step(_ ring: inout SampleRing) {
        guard frame[0] == Self.magic else {
            outcome = .ended
            return
        }
        let type = frame[1]
        let len = Int(frame[2]) | Int(frame[3]) << 8
        if need == 4 {
            if 8 + len > maxFrame {
                // A header longer than ours is not ours; any other frame this long is corrupt.
                outcome = type == 0 ? .foreign : .ended
                return
            }
            need = 8 + len
            return
        }
        let c = 4 + len
        let stored = UInt32(frame[c]) | UInt32(frame[c + 1]) << 8 | UInt32(frame[c + 2]) << 16 | UInt32(frame[c + 3]) << 24
        guard CRC32.checksum(frame[1..<c]) == stored else {
            outcome = .ended
            return
        }
        // The slice of `frame` lives in its own scope: alive at the removeAll below, it would
        // make that copy the buffer (one allocation per frame replayed).
        do {
            let payload = frame[4..<c]
            switch type {
            case 0:
                sameHeader = payload.elementsEqual(header)
                if !sameHeader {
                    outcome = .foreign
                    return
                }
            case 1 where sameHeader && SampleRecord.validCount(payload, maxValues: maxValues) != nil:
                if ring.append(record: payload) != nil { replayed += 1 }
            case 2 where sameHeader && len == 8:
                ring.deliver(seq: SampleRecord.get64(frame, 4))
            default:
                break
            }
        }
        good += need
        frame.removeAll(keepingCapacity: true)
        need = 4
    }
}
