import CWispPlatform
import WispCore

/// Swift faces of CWispPlatform's file, clock and process calls. Errors are errno values
/// turned into one sentence here, at the edge.
public enum System {
    /// The command line, without the program name.
    public static var arguments: [String] {
        var args: [String] = []
        let n = wisp_argc()
        if n > 1 { for i in 1..<n { args.append(String(cString: wisp_argv(i))) } }
        return args
    }

    public static func environment(_ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBufferPointer { wisp_getenv(name, $0.baseAddress, $0.count) }
        if n < 0 { return nil }
        return String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The file's bytes, or the errno (EFBIG past `limit`).
    public static func readFile(_ path: String, limit: Int = 65_536) -> Result<[UInt8], SystemError> {
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBufferPointer { wisp_read_file(path, $0.baseAddress, $0.count) }
        if n < 0 { return .failure(SystemError(errno: Int32(-n))) }
        return .success(Array(buf[0..<Int(n)]))
    }

    public static func readText(_ path: String, limit: Int = 65_536) -> String? {
        guard case .success(let bytes) = readFile(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public enum SecretFileError: Error {
        case system(SystemError)
        case access(KeyFileAccess.Problem)
    }

    /// A file holding a secret: opened without following links, checked on the open
    /// descriptor (KeyFileAccess), then read; at most `limit` bytes (EFBIG past it).
    public static func readSecretFile(_ path: String, limit: Int) -> Result<[UInt8], SecretFileError> {
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
        let fd = withUnsafeMutablePointer(to: &info) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_open_secret(path, $0) }
        }
        if fd < 0 { return .failure(.system(SystemError(errno: -fd))) }
        defer { _ = wisp_close(fd) }
        let facts = KeyFileAccess.Facts(mode: info.0 & 0o7777, isRegular: info.0 & 0x10000 != 0, owner: info.1,
                                        group: info.2, user: info.3, userGroup: info.4)
        if let problem = KeyFileAccess.check(facts) { return .failure(.access(problem)) }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBufferPointer { wisp_read_fd(fd, $0.baseAddress, $0.count) }
        if n < 0 { return .failure(.system(SystemError(errno: Int32(-n)))) }
        return .success(Array(buf[0..<Int(n)]))
    }

    /// Permission bits, or the errno.
    public static func fileMode(_ path: String) -> Result<Int32, SystemError> {
        let m = wisp_file_mode(path)
        return m < 0 ? .failure(SystemError(errno: -m)) : .success(m)
    }

    public static func listDirectory(_ path: String) -> [String] {
        var buf = [UInt8](repeating: 0, count: 16_384)
        let n = buf.withUnsafeMutableBufferPointer { wisp_list_dir(path, $0.baseAddress, $0.count) }
        if n <= 0 { return [] }
        var names: [String] = []
        for part in buf[0..<Int(n)].split(separator: 0) { names.append(String(decoding: part, as: UTF8.self)) }
        return names.sorted { $0.precedes($1) }
    }

    public static var monotonicMillis: UInt64 { wisp_monotonic_ms() }
    public static var realtimeMillis: UInt64 { wisp_realtime_ms() }

    /// Waits until `fd` is ready as `events` asks (1 readable, 2 writable) or `milliseconds`
    /// pass (tools that drive one connection; the agent polls in `Driver`).
    public static func wait(_ fd: Int32, events: Int32, milliseconds: Int32) {
        var f = fd, e = events, ready: Int32 = 0
        _ = wisp_poll(&f, &e, &ready, 1, milliseconds)
    }

    /// Sleeps (a root step waiting for a restart; never the agent's loop).
    /// Gives the pages that freed heap memory spans back to the kernel: after a connect,
    /// whose TLS handshake is the heap's peak, they would stay Private_Dirty for good.
    static func releaseFreeHeap() { wisp_release_free_heap() }

    public static func sleep(milliseconds: Int32) {
        _ = wisp_poll(nil, nil, nil, 0, milliseconds)
    }

    public static func write(_ text: String, to fd: Int32) {
        var t = text
        t.withUTF8 { _ = wisp_write_all(fd, $0.baseAddress, $0.count) }
    }

    public static func out(_ line: String) { write(line + "\n", to: 1) }

    /// Runs `program` with `args` (no shell): its exit status (negative: -errno) and the
    /// first 4 KiB of what it printed.
    static func run(_ program: String, _ args: [String], timeoutMillis: Int32) -> (status: Int32, output: String) {
        var out = [UInt8](repeating: 0, count: 4096)
        var length: Int64 = 0
        // One buffer of NUL-terminated strings, and argv pointing into it.
        var flat: [CChar] = []
        var offsets: [Int] = []
        for s in [program] + args {
            offsets.append(flat.count)
            for b in s.utf8 { flat.append(CChar(bitPattern: b == 0 ? 0x20 : b)) }
            flat.append(0)
        }
        let status = flat.withUnsafeBufferPointer { base in
            var argv: [UnsafePointer<CChar>?] = offsets.map { base.baseAddress! + $0 }
            argv.append(nil)
            return argv.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { o in wisp_run(a.baseAddress, o.baseAddress, o.count, &length, timeoutMillis) }
            }
        }
        return (status, String(decoding: out[0..<Int(length)], as: UTF8.self))
    }

    public static func exit(_ code: ExitCode) -> Never { wisp_exit(code.rawValue) }
}

/// An errno from the platform layer, with its text.
public struct SystemError: Error, Equatable, Sendable {
    public var errno: Int32

    public init(errno: Int32) { self.errno = errno }

    public var message: String {
        var buf = [CChar](repeating: 0, count: 256)
        buf.withUnsafeMutableBufferPointer { wisp_strerror(errno, $0.baseAddress, $0.count) }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Process exit codes (sysexits.h), one per kind of failure a user can meet.
public enum ExitCode: Int32, Sendable {
    case ok = 0
    case failure = 1
    /// `wisp status`: the agent is not running (LSB: program is not running).
    case notRunning = 3
    /// `wisp status`: its status cannot be told (LSB: program or service status is unknown).
    case statusUnknown = 4
    case usage = 64
    case unreachable = 69
    case osError = 71
    case refused = 77
    case configuration = 78
}

/// A path kept NUL-terminated from start-up, for the calls made every interval: passing a
/// Swift String to C converts (and, in Embedded Swift, allocates) each time.
public struct CPath: Sendable {
    public let text: String
    let bytes: [CChar]

    public init(_ text: String) {
        self.text = text
        var b: [CChar] = []
        b.reserveCapacity(text.utf8.count + 1)
        for u in text.utf8 { b.append(CChar(bitPattern: u)) }
        b.append(0)
        bytes = b
    }

    public func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        bytes.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

extension System {
    /// The first `buffer.capacity` bytes of a file (a sensor's), for a path prepared at
    /// start-up: allocation-free. A longer file is read as far as the buffer goes.
    /// Only a regular file or one of sysfs/procfs is read (a FIFO would block the loop);
    /// `kernelOnly`: only sysfs/procfs, wherever the path led.
    public static func read(_ path: CPath, into buffer: inout ByteBuffer, kernelOnly: Bool = false) -> Result<Int, SystemError> {
        buffer.removeAll()
        var code: Int64 = 0
        let n = buffer.appendInPlace(upTo: buffer.capacity) { raw in
            code = path.withCString { wisp_read_sensor($0, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count, kernelOnly ? 1 : 0) }
            return Int(code)
        }
        if code < 0 { return .failure(SystemError(errno: Int32(-code))) }
        return .success(n)
    }
}
