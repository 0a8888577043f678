import CWispPlatform
import WispCore

/// The sample ring on disk (`buffer_file = PATH`), so samples survive a restart or a
/// power cut.
///
/// An append-only file of checksummed frames (the format and its parser: `BufferReplay` in
/// WispCore). Samples are fdatasync'd before going on. A torn write loses at most the last
/// frame: replay stops at the first bad checksum and cuts the file there.
/// The file is rewritten with only the waiting samples once it passes its size bound, so
/// an SD card sees appends, and one rewrite per bound's worth of samples.
///
/// Nothing read from the file is trusted: replay reads it in fixed chunks (memory does not
/// grow with the file), and the file is cut or replaced only after it was read without an
/// error; a compaction that fails at any step leaves the old file as it was.
final class BufferFile {
    static let magic = BufferReplay.magic
    let path: String
    var fd: Int32
    var size: Int
    let limit: Int
    /// Compaction is tried again only past this size after a failure (a full card must
    /// not be rewritten at every sample).
    var nextCompaction: Int
    let header: [UInt8]
    var frame: ByteBuffer
    /// A write failure is logged once until writes succeed again.
    var failing = false
    let log: Log

    private init(path: String, fd: Int32, size: Int, limit: Int, header: [UInt8], recordSize: Int, log: Log) {
        self.path = path
        self.log = log
        self.fd = fd
        self.size = size
        self.limit = limit
        nextCompaction = limit
        self.header = header
        frame = ByteBuffer(capacity: max(recordSize, header.count) + 16)
    }

    deinit { _ = wisp_close(fd) }

    /// What replaying the file found.
    enum Replay {
        /// No file yet.
        case missing
        /// Read to its end: `good` bytes of valid frames out of `total`.
        case read(good: Int, total: Int)
        /// Written for other properties.
        case foreign
        /// Reading failed: nothing may be cut or rewritten.
        case failed(SystemError)
    }

    /// Opens the file, replaying what it holds into `ring`.
    static func open(_ path: String, names: [String], ring: inout SampleRing, log: Log) -> Result<BufferFile, SystemError> {
        var header: [UInt8] = []
        for (i, n) in names.enumerated() { header += (i > 0 ? [UInt8(ascii: ",")] : []) + Array(n.utf8) }
        // Two full rings' worth of sample frames, plus room for the header and marks.
        let limit = 4096 + 2 * ring.capacity * (8 + SampleRecord.size(maxValues: ring.maxValues))
        var good = 0
        switch replay(path, header: header, ring: &ring) {
        case .missing:
            break
        case .failed(let e):
            // Keep what may still be good for a person to recover; start a new file.
            log.error("buffer file " + path + " cannot be read (" + e.message + "); set aside as " + path + ".unreadable")
            let r = wisp_rename(path, path + ".unreadable")
            if r < 0 { return .failure(SystemError(errno: -r)) }
        case .foreign:
            log.warning("buffer file " + path + " was written for other sensors; set aside as " + path + ".old")
            _ = wisp_rename(path, path + ".old")
        case .read(let g, let total):
            if g == 0 && total > 0 {
                log.warning("buffer file " + path + " holds no valid record; set aside as " + path + ".old")
                _ = wisp_rename(path, path + ".old")
            } else if g < total {
                log.warning("buffer file " + path + ": cut a torn or corrupt record at byte \(g)")
                _ = wisp_truncate(path, Int64(g))
            }
            good = g
            if ring.count > 0 { log.info("buffer file " + path + ": \(ring.count) undelivered samples from before the restart") }
        }
        ring.requeueInFlight()
        let fd = wisp_open_append(path)
        if fd < 0 { return .failure(SystemError(errno: -fd)) }
        let file = BufferFile(path: path, fd: fd, size: good, limit: limit, header: header, recordSize: ring.recordSize, log: log)
        if good == 0 {
            _ = wisp_truncate(path, 0)  // a new (or set-aside) file: start with the header
            _ = file.write(type: 0, sync: true) { $0.put(contentsOf: header) }
        }
        file.compactIfNeeded(ring)
        return .success(file)
    }

    /// Reads the file through one fixed buffer into `BufferReplay` (WispCore), the parser.
    static func replay(_ path: String, header: [UInt8], ring: inout SampleRing) -> Replay {
        let fd = wisp_open_read(path)
        if fd == -2 { return .missing }  // ENOENT
        if fd < 0 { return .failed(SystemError(errno: -fd)) }
        defer { _ = wisp_close(fd) }
        var parser = BufferReplay(header: header, maxValues: ring.maxValues)
        var buf = [UInt8](repeating: 0, count: 4096)
        var total = 0  // the whole file is read (and counted) before anything is cut
        while true {
            // Parsed in place: a slice of `buf` still alive at the next read would copy it.
            let got = buf.withUnsafeMutableBufferPointer { b in
                let n = wisp_read(fd, b.baseAddress!, b.count)
                if n > 0 && parser.outcome == .reading { parser.feed(UnsafeBufferPointer(rebasing: b[0..<Int(n)]), into: &ring) }
                return n
            }
            if got < 0 { return .failed(SystemError(errno: Int32(-got))) }
            if got == 0 { break }
            total += Int(got)
        }
        if parser.outcome == .foreign { return .foreign }
        return .read(good: parser.good, total: total)
    }

    /// Appends the sample at ring `position` and syncs it to the card.
    func appendSample(_ ring: SampleRing, _ position: Int) {
        _ = write(type: 1, sync: true) { f in
            BufferFile.putSample(ring, position, into: &f)
        }
        compactIfNeeded(ring)
    }

    /// Marks sample `seq` delivered (not synced: losing it costs one duplicate).
    func appendDelivered(_ seq: UInt64) {
        _ = write(type: 2, sync: false) { f in BufferFile.put64(seq, into: &f) }
    }

    /// The ring's record, byte for byte (`SampleRecord`).
    static func putSample(_ ring: SampleRing, _ position: Int, into f: inout ByteBuffer) {
        f.put(contentsOf: ring.record(position))
    }

    /// Writes one frame to the current fd; the error, or nil.
    func write(type: UInt8, sync: Bool, _ body: (inout ByteBuffer) -> Void) -> SystemError? {
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
        var r = frame.withBytes { raw in wisp_write_all(fd, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count) }
        if r == 0 {
            size += frame.count
            if sync { r = wisp_sync(fd) }
        }
        if r < 0 {
            let e = SystemError(errno: -r)
            if !failing { log.warning("buffer file " + path + ": write failed: " + e.message + "; samples are kept in memory") }
            failing = true
            return e
        }
        if failing { log.info("buffer file " + path + ": writes succeed again") }
        failing = false
        return nil
    }

    /// Rewrites the file with only the samples still waiting, once it passes its bound.
    /// Any failure (disk full, I/O error) keeps the old file and fd as they were.
    func compactIfNeeded(_ ring: SampleRing) {
        guard size > nextCompaction else { return }
        let tmp = path + ".tmp"
        let fresh = wisp_open_new(tmp)
        if fresh < 0 {
            compactionFailed(SystemError(errno: -fresh), tmp: nil)
            return
        }
        let old = fd, oldSize = size, wasFailing = failing
        fd = fresh
        size = 0
        failing = true  // no "write failed" line per frame here; one line below says it all
        var error = write(type: 0, sync: false) { $0.put(contentsOf: header) }
        for i in 0..<ring.count where error == nil {
            error = write(type: 1, sync: false) { f in BufferFile.putSample(ring, i, into: &f) }
        }
        if error == nil {
            let r = wisp_sync(fd)
            if r < 0 { error = SystemError(errno: -r) }
        }
        if error == nil {
            let r = wisp_rename(tmp, path)
            if r < 0 { error = SystemError(errno: -r) }
        }
        failing = wasFailing
        if let error {
            _ = wisp_close(fd)
            fd = old
            size = oldSize
            compactionFailed(error, tmp: tmp)
            return
        }
        _ = wisp_close(old)
        _ = wisp_sync_dir(StateStore.directory(of: path))
        nextCompaction = limit
        log.debug("buffer file " + path + " compacted to \(ring.count) samples")
    }

    func compactionFailed(_ e: SystemError, tmp: String?) {
        if let tmp { _ = wisp_unlink(tmp) }
        nextCompaction = size + limit / 4
        log.warning("buffer file " + path + ": compaction failed (" + e.message + "); the old file is kept and grows until the next try")
    }

    static func put64(_ v: UInt64, into f: inout ByteBuffer) {
        for k in 0..<8 { f.put(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }

}
