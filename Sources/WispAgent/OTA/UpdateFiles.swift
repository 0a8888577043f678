import CWispPlatform
import WispCore

/// The files of an update under `state_dir/ota` and the crash-safe ways they change: each
/// record is written whole (temp file, fsync, rename, fsync of the directory), binaries
/// are copied to a temp name, synced, then renamed over the target.
///
///   package.part   the download so far                          (service)
///   package.want   which package package.part belongs to        (service)
///   staged         the verified binary, mode 0700                (service)
///   staged.deb     the package it came from, when it was a .deb  (service)
///   staged.ready   its version and sha256: the root step's cue   (service, written last)
///   applying       the root step's journal: a trial is running   (root)
///   running        the version that last reached CONNACK         (service)
///   result         the root step's verdict for the platform      (root; reported, then removed)
///   reboot         the platform's reboot service asked for one    (service; the root step reboots)
///   failed         a version that failed verification or was rolled back: not taken again (service)
struct UpdateFiles {
    let dir: String

    init(stateDir: String) { dir = stateDir + "/ota" }

    var part: String { dir + "/package.part" }
    var want: String { dir + "/package.want" }
    var staged: String { dir + "/staged" }
    var stagedDeb: String { dir + "/staged.deb" }
    var ready: String { dir + "/staged.ready" }
    var applying: String { dir + "/applying" }
    var running: String { dir + "/running" }
    var result: String { dir + "/result" }
    var reboot: String { dir + "/reboot" }
    var failed: String { dir + "/failed" }
    var debDir: String { dir + "/deb" }

    var exists: Bool { wisp_file_mode(dir) >= 0 }

    func create() -> SystemError? {
        let r = wisp_mkdir(dir, 0o700)
        return r < 0 ? SystemError(errno: -r) : nil
    }

    static func read(_ path: String) -> UpdateRecord? {
        guard case .success(let bytes) = System.readFile(path, limit: 4096) else { return nil }
        return UpdateRecord.parse(bytes)
    }

    /// Replaces `path` with `record` so that a power cut leaves the old or the new one.
    /// A record longer than `UpdateRecord.maxBytes` is not written (a reader would take it
    /// for absent): EFBIG.
    static func write(_ record: UpdateRecord, to path: String, mode: UInt32 = 0o600) -> SystemError? {
        guard record.printedCount <= UpdateRecord.maxBytes else { return SystemError(errno: 27) }
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

    /// The file's digest, or nil when it cannot be read.
    static func digest(_ path: String, _ method: DigestMethod) -> [UInt8]? {
        let fd = wisp_open_read(path)
        if fd < 0 { return nil }
        defer { _ = wisp_close(fd) }
        guard let d = wisp_digest_new(method == .md5 ? WISP_HMAC_MD5 : WISP_HMAC_SHA256) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { wisp_read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                wisp_digest_free(d)
                return nil
            }
            if n == 0 { break }
            _ = buffer.withUnsafeBufferPointer { wisp_digest_update(d, $0.baseAddress, Int(n)) }
        }
        var out = [UInt8](repeating: 0, count: 32)
        let n = wisp_digest_finish(d, &out, out.count)
        return n == method.size ? Array(out[0..<Int(n)]) : nil
    }

    /// What the ELF header of `path` says it runs on; nil for anything else.
    static func elf(_ path: String) -> ELFIdentity? {
        var head = [UInt8](repeating: 0, count: ELFIdentity.headerBytes)
        let n = head.withUnsafeMutableBufferPointer { wisp_read_head(path, $0.baseAddress, $0.count) }
        guard n == Int64(ELFIdentity.headerBytes) else { return nil }
        return head.withUnsafeBytes { ELFIdentity(header: $0) }
    }

    /// Whether `path` starts like a Debian package (an `ar` archive, debian-binary first).
    static func isDeb(_ path: String) -> Bool {
        var head = [UInt8](repeating: 0, count: 21)
        let n = head.withUnsafeMutableBufferPointer { wisp_read_head(path, $0.baseAddress, $0.count) }
        return n == 21 && head.elementsEqual(Array("!<arch>\ndebian-binary".utf8))
    }

    /// The running executable's path.
    static var selfPath: String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBufferPointer { wisp_self_path($0.baseAddress, $0.count) }
        if n < 0 { return nil }
        return String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    /// Runs `program` with up to three arguments: its exit status (negative: -errno) and the
    /// first 4 KiB of what it printed.
    static func run(_ program: String, _ args: [String], timeoutMillis: Int32) -> (status: Int32, output: String) {
        var out = [UInt8](repeating: 0, count: 4096)
        var length: Int64 = 0
        let a = args + ["", "", ""]
        let n = Int32(args.count)
        let status = out.withUnsafeMutableBufferPointer { o in
            a[0].withCString { a1 in
                a[1].withCString { a2 in
                    a[2].withCString { a3 in
                        wisp_run(program, n > 0 ? a1 : nil, n > 1 ? a2 : nil, n > 2 ? a3 : nil, o.baseAddress, o.count, &length, timeoutMillis)
                    }
                }
            }
        }
        return (status, String(decoding: out[0..<Int(length)], as: UTF8.self))
    }
}
