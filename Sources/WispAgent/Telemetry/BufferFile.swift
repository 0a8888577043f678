import CWispPlatform
import WispCore

/// The sample ring on disk (`buffer_file = PATH`), so samples survive a restart or a
/// power cut.
///
/// An append-only file of checksummed frames: `B7 type len(u16) payload crc32(u32)`.
/// Type 0 names the properties (a file written for other sensors is set aside), 1 is a
/// sample (fdatasync'd before going on), 2 marks a sample delivered. A torn write loses
/// at most the last frame: replay stops at the first bad checksum and cuts the file there.
/// The file is rewritten with only the waiting samples once it passes its size bound, so
/// an SD card sees appends, and one rewrite per bound's worth of samples.
final class BufferFile {
    static let magic: UInt8 = 0xB7
    let path: String
    var fd: Int32
    var size: Int
    let limit: Int
    let header: [UInt8]
    var frame: ByteBuffer

    private init(path: String, fd: Int32, size: Int, limit: Int, header: [UInt8], recordSize: Int) {
        self.path = path
        self.fd = fd
        self.size = size
        self.limit = limit
        self.header = header
        frame = ByteBuffer(capacity: max(recordSize, header.count) + 16)
    }

    deinit { _ = wisp_close(fd) }

    /// Opens the file, replaying what it holds into `ring`.
    static func open(_ path: String, names: [String], ring: inout SampleRing) -> Result<BufferFile, SystemError> {
        var header: [UInt8] = []
        for (i, n) in names.enumerated() { header += (i > 0 ? [UInt8(ascii: ",")] : []) + Array(n.utf8) }
        let limit = 4096 + 2 * ring.capacity * (SampleRing.headerSize + ring.maxValues * SampleRing.valueSize + 8)
        var good = 0
        if case .success(let bytes) = System.readFile(path, limit: 4 * limit) {
            var replayed = 0, sameHeader = false
            var pos = 0
            while pos + 8 <= bytes.count, bytes[pos] == magic {
                let type = bytes[pos + 1]
                let len = Int(bytes[pos + 2]) | Int(bytes[pos + 3]) << 8
                guard pos + 4 + len + 4 <= bytes.count else { break }
                let body = bytes[(pos + 1)..<(pos + 4 + len)]
                let stored = UInt32(bytes[pos + 4 + len]) | UInt32(bytes[pos + 5 + len]) << 8
                    | UInt32(bytes[pos + 6 + len]) << 16 | UInt32(bytes[pos + 7 + len]) << 24
                guard CRC32.checksum(body) == stored else { break }
                let payload = Array(bytes[(pos + 4)..<(pos + 4 + len)])
                switch type {
                case 0:
                    sameHeader = payload == header
                    if !sameHeader {
                        Log.warning("buffer file " + path + " was written for other sensors; set aside as " + path + ".old")
                        _ = wisp_rename(path, path + ".old")
                        good = 0
                        pos = bytes.count
                        continue
                    }
                case 1 where sameHeader && payload.count >= 17:
                    let seq = le64(payload, 0), time = le64(payload, 8)
                    var values: [PropertyValue] = []
                    var at = 17
                    for _ in 0..<Int(payload[16]) where at + 10 <= payload.count {
                        values.append(PropertyValue(index: Int(payload[at]), scaled: Int64(bitPattern: le64(payload, at + 2)), decimals: Int(payload[at + 1])))
                        at += 10
                    }
                    ring.append(time: time, values: values, seq: seq)
                    replayed += 1
                case 2 where sameHeader && payload.count == 8:
                    ring.deliver(seq: le64(payload, 0))
                default:
                    break
                }
                pos += 8 + len
                good = pos
            }
            if good < bytes.count && good > 0 {
                Log.warning("buffer file " + path + ": cut a torn or corrupt record at byte \(good)")
                _ = wisp_truncate(path, Int64(good))
            }
            if replayed > 0 { Log.info("buffer file " + path + ": \(ring.count) undelivered samples from before the restart") }
        }
        ring.requeueInFlight()
        let fd = wisp_open_append(path)
        if fd < 0 { return .failure(SystemError(errno: -fd)) }
        let file = BufferFile(path: path, fd: fd, size: good, limit: limit, header: header, recordSize: ring.recordSize)
        if good == 0 {
            _ = wisp_truncate(path, 0)
            file.write(type: 0, sync: true) { $0.put(contentsOf: header) }
        }
        file.compactIfNeeded(ring)
        return .success(file)
    }

    /// Appends the sample at ring `position` and syncs it to the card.
    func appendSample(_ ring: SampleRing, _ position: Int) {
        write(type: 1, sync: true) { f in
            BufferFile.putSample(ring, position, into: &f)
        }
        compactIfNeeded(ring)
    }

    /// Marks sample `seq` delivered (not synced: losing it costs one duplicate).
    func appendDelivered(_ seq: UInt64) {
        write(type: 2, sync: false) { f in BufferFile.put64(seq, into: &f) }
    }

    static func putSample(_ ring: SampleRing, _ position: Int, into f: inout ByteBuffer) {
        put64(ring.seq(position), into: &f)
        put64(ring.time(position), into: &f)
        let countAt = f.count
        f.put(0)
        var n: UInt8 = 0
        for v in ring.values(position) {
            f.put(UInt8(truncatingIfNeeded: v.index))
            f.put(UInt8(truncatingIfNeeded: v.decimals))
            put64(UInt64(bitPattern: v.scaled), into: &f)
            n += 1
        }
        f[countAt] = n
    }

    func write(type: UInt8, sync: Bool, _ body: (inout ByteBuffer) -> Void) {
        frame.removeAll()
        frame.put(BufferFile.magic)
        frame.put(type)
        frame.put(0)
        frame.put(0)
        body(&frame)
        let len = frame.count - 4
        frame[2] = UInt8(truncatingIfNeeded: len)
        frame[3] = UInt8(truncatingIfNeeded: len >> 8)
        let crc = CRC32.checksum(frame.bytesView(1..<frame.count))
        for k in 0..<4 { frame.put(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k)))) }
        let r = frame.withBytes { raw in wisp_write_all(fd, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count) }
        if r < 0 {
            Log.warning("buffer file " + path + ": write failed: " + SystemError(errno: -r).message)
            return
        }
        size += frame.count
        if sync { _ = wisp_sync(fd) }
    }

    /// Rewrites the file with only the samples still waiting, once it passes its bound.
    func compactIfNeeded(_ ring: SampleRing) {
        guard size > limit else { return }
        let tmp = path + ".tmp"
        _ = wisp_truncate(tmp, 0)
        let fresh = wisp_open_append(tmp)
        guard fresh >= 0 else { return }
        let old = fd
        fd = fresh
        size = 0
        write(type: 0, sync: false) { $0.put(contentsOf: header) }
        for i in 0..<ring.count {
            write(type: 1, sync: false) { f in BufferFile.putSample(ring, i, into: &f) }
        }
        _ = wisp_sync(fd)
        if wisp_rename(tmp, path) != 0 {
            _ = wisp_close(fd)
            fd = old
            return
        }
        _ = wisp_close(old)
        Log.debug("buffer file " + path + " compacted to \(ring.count) samples")
    }

    static func put64(_ v: UInt64, into f: inout ByteBuffer) {
        for k in 0..<8 { f.put(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }

    static func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(b[at + k]) << (8 * UInt64(k)) }
        return v
    }
}
