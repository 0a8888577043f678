import CWispPlatform
import WispCore

/// A directory opened once (no link followed), and the files in it reached by name through
/// that descriptor: what root uses on a directory the service user can write, where any
/// name may have become a symbolic link, a FIFO or a hard link to something else since it
/// was last looked at. Records are written whole (a fresh temp name, fsync, rename, fsync
/// of the directory); nothing is opened by path a second time.
struct OpenDirectory {
    let fd: Int32
    let path: String
    /// Permission bits and owner of the directory itself (fstat of `fd`).
    let mode: UInt32
    let owner: UInt32

    /// A file opened for reading in it, and the facts of that descriptor.
    struct File {
        let fd: Int32
        let mode: UInt32
        let owner: UInt32
        let isRegular: Bool
        let links: UInt32
    }

    static func open(_ path: String) -> Result<OpenDirectory, SystemError> {
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
        let fd = withUnsafeMutablePointer(to: &info) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_dir_open(path, $0) }
        }
        if fd < 0 { return .failure(SystemError(errno: -fd)) }
        return .success(OpenDirectory(fd: fd, path: path, mode: info.0 & 0o7777, owner: info.1))
    }

    func close() { _ = wisp_close(fd) }

    func exists(_ name: String) -> Bool { wisp_at_exists(fd, name) == 1 }

    func open(_ name: String) -> Result<File, SystemError> {
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
        let f = withUnsafeMutablePointer(to: &info) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_at_open_read(fd, name, $0) }
        }
        if f < 0 { return .failure(SystemError(errno: -f)) }
        return .success(File(fd: f, mode: info.0 & 0o7777, owner: info.1, isRegular: info.0 & WISP_FILE_REGULAR != 0, links: info.4))
    }

    /// A small regular file's bytes (at most `limit`), or nil.
    func read(_ name: String, limit: Int = StateRecord.maxBytes) -> [UInt8]? {
        guard case .success(let f) = open(name) else { return nil }
        defer { _ = wisp_close(f.fd) }
        guard f.isRegular else { return nil }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBufferPointer { wisp_read_fd(f.fd, $0.baseAddress, $0.count) }
        return n < 0 ? nil : Array(buf[0..<Int(n)])
    }

    func record(_ name: String) -> StateRecord? { read(name).flatMap { StateRecord.parse($0) } }

    func write(_ record: StateRecord, to name: String, mode: UInt32 = 0o600) -> SystemError? {
        guard record.printedCount <= StateRecord.maxBytes else { return SystemError(errno: 27) }
        let bytes = Array(record.text.utf8)
        return replace(name, mode: mode) { out in bytes.withUnsafeBufferPointer { Int64(wisp_write_all(out, $0.baseAddress, $0.count)) } }
    }

    /// Copies what `from` holds (from its start, at most `limit` bytes) to `name`.
    func copy(from: Int32, to name: String, mode: UInt32, limit: Int64) -> SystemError? {
        replace(name, mode: mode) { out in wisp_copy_fd(from, out, limit) }
    }

    /// `name` made whole under a temp name, then renamed over it: a power cut leaves the
    /// old or the new file. A temp name left behind (or planted) is removed first, unfollowed.
    func replace(_ name: String, mode: UInt32, fill: (Int32) -> Int64) -> SystemError? {
        let tmp = name + ".tmp"
        _ = wisp_at_unlink(fd, tmp)
        let out = wisp_at_create(fd, tmp, mode)
        if out < 0 { return SystemError(errno: -out) }
        var r = fill(out)
        if r >= 0 { r = Int64(wisp_sync(out)) }
        _ = wisp_close(out)
        if r >= 0 { r = Int64(wisp_at_rename(fd, tmp, name)) }
        if r < 0 {
            _ = wisp_at_unlink(fd, tmp)
            return SystemError(errno: Int32(truncatingIfNeeded: -r))
        }
        _ = wisp_sync(fd)
        return nil
    }

    func unlink(_ name: String) { _ = wisp_at_unlink(fd, name) }

    /// Removes `names`, then makes the removal durable.
    func remove(_ names: [String]) {
        for n in names { _ = wisp_at_unlink(fd, n) }
        _ = wisp_sync(fd)
    }
}
