import CWispPlatform
import WispCore

/// The crash-safe ways wisp's files under `state_dir` change (the identity, the remote
/// config, the last-run record, the OTA records and binaries): each record is written
/// whole (temp file, fsync, rename, fsync of the directory), binaries are copied to a temp
/// name, synced, then renamed over the target. A power cut leaves the old or the new file.
enum StateStore {
    static func read(_ path: String) -> StateRecord? {
        guard case .success(let bytes) = System.readFile(path, limit: 4096) else { return nil }
        return StateRecord.parse(bytes)
    }

    /// Replaces `path` with `record` so that a power cut leaves the old or the new one.
    /// A record longer than `StateRecord.maxBytes` is not written (a reader would take it
    /// for absent): EFBIG.
    static func write(_ record: StateRecord, to path: String, mode: UInt32 = 0o600) -> SystemError? {
        guard record.printedCount <= StateRecord.maxBytes else { return SystemError(errno: 27) }
        return write(Array(record.text.utf8), to: path, mode: mode)
    }

    /// Replaces `path` with `bytes` the same way.
    static func write(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o600) -> SystemError? {
        let tmp = path + ".tmp"
        let fd = wisp_open_new(tmp)
        if fd < 0 { return SystemError(errno: -fd) }
        var r = bytes.withUnsafeBufferPointer { wisp_write_all(fd, $0.baseAddress, $0.count) }
        if r == 0 { r = Int32(wisp_sync(fd)) }
        _ = wisp_close(fd)
        if r == 0 { r = wisp_chmod(tmp, mode) }
        if r == 0 { r = wisp_rename(tmp, path) }
        if r < 0 {
            _ = wisp_unlink(tmp)
            return SystemError(errno: -Int32(r))
        }
        _ = wisp_sync_dir(directory(of: path))
        return nil
    }

    /// Replaces `path` with `bytes` through `tmp` (a temp file, then a rename: a reader sees
    /// the old or the new file) with `mode`, not synced: for a file on a tmpfs that is
    /// rewritten in the steady state (the status file), so the paths are prepared at start-up
    /// and nothing allocates. 0 or -errno.
    static func replace(_ path: CPath, via tmp: CPath, _ bytes: UnsafeRawBufferPointer, mode: UInt32) -> Int32 {
        replace(path, via: tmp, mode: mode) { fd in Int32(wisp_write_all(fd, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)) }
    }

    /// The same, the content written by `fill` into the temp file's descriptor (0, or -errno).
    static func replace(_ path: CPath, via tmp: CPath, mode: UInt32, fill: (Int32) -> Int32) -> Int32 {
        let fd = tmp.withCString { wisp_open_new($0) }
        if fd < 0 { return fd }
        var r = fill(fd)
        _ = wisp_close(fd)
        if r == 0 { r = tmp.withCString { wisp_chmod($0, mode) } }
        if r == 0 { r = tmp.withCString { t in path.withCString { wisp_rename(t, $0) } } }
        if r < 0 { _ = tmp.withCString { wisp_unlink($0) } }
        return r
    }

    /// Copies `from` to `to` through `to`.tmp with `mode`, synced, then renamed over `to`.
    static func copy(_ from: String, to: String, mode: UInt32) -> SystemError? {
        let input = wisp_open_read(from)
        if input < 0 { return SystemError(errno: -input) }
        defer { _ = wisp_close(input) }
        let tmp = to + ".tmp"
        let output = wisp_open_new(tmp)
        if output < 0 { return SystemError(errno: -output) }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var r: Int32 = 0
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { wisp_read(input, $0.baseAddress, $0.count) }
            if n < 0 { r = Int32(n); break }
            if n == 0 { break }
            r = buffer.withUnsafeBufferPointer { wisp_write_all(output, $0.baseAddress, Int(n)) }
            if r < 0 { break }
        }
        if r == 0 { r = wisp_sync(output) }
        _ = wisp_close(output)
        if r == 0 { r = wisp_chmod(tmp, mode) }
        if r == 0 { r = wisp_rename(tmp, to) }
        if r < 0 {
            _ = wisp_unlink(tmp)
            return SystemError(errno: -r)
        }
        _ = wisp_sync_dir(directory(of: to))
        return nil
    }

    /// The folder holding `path` (for the fsync that makes a rename durable).
    static func directory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}
