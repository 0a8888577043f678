import CWispPlatform
import WispCore

/// A file that decides what root does (the board settings, the OTA public key): it must be
/// as trustworthy as the binary itself. Its owner, and its directory's, must be root or
/// the owner of the running binary (root on a board; the developer in tests), and neither
/// may be writable by group or others. So the service user, which owns neither, cannot
/// change what it says. Opened without following a link; the facts are the descriptor's.
enum TrustedFile {
    /// Its bytes (at most `limit`), or one sentence saying why not. `.missing` when there
    /// is no such file.
    static func read(_ path: String, limit: Int) -> Result<[UInt8], TrustedFileError> {
        let trusted = owners
        let dir = StateStore.directory(of: path)
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
        let dfd = withUnsafeMutablePointer(to: &info) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_dir_open(dir, $0) }
        }
        if dfd < 0 { return .failure(dfd == -2 ? .missing : .refused("cannot open " + dir + ": " + SystemError(errno: -dfd).message)) }
        defer { _ = wisp_close(dfd) }
        if let why = problem(mode: info.0, owner: info.1, trusted: trusted, what: "its directory " + dir, sticky: true) { return .failure(.refused(path + ": " + why)) }
        if let why = ancestors(of: dir, trusted: trusted) { return .failure(.refused(path + ": " + why)) }
        let bytes = Array(path.utf8)
        let name = String(decoding: bytes[(bytes.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0)...], as: UTF8.self)
        let fd = withUnsafeMutablePointer(to: &info) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_at_open_read(dfd, name, $0) }
        }
        if fd == -2 { return .failure(.missing) }
        if fd == -40 { return .failure(.refused(path + " is a symbolic link; point at the file itself")) }
        if fd < 0 { return .failure(.refused("cannot read " + path + ": " + SystemError(errno: -fd).message)) }
        defer { _ = wisp_close(fd) }
        if info.0 & WISP_FILE_REGULAR == 0 { return .failure(.refused(path + " is not a regular file")) }
        if let why = problem(mode: info.0, owner: info.1, trusted: trusted, what: "it") { return .failure(.refused(path + ": " + why)) }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBufferPointer { wisp_read_fd(fd, $0.baseAddress, $0.count) }
        if n < 0 { return .failure(.refused("cannot read " + path + ": " + SystemError(errno: Int32(-n)).message)) }
        return .success(Array(buf[0..<Int(n)]))
    }

    /// Why a file or directory with these facts could be changed by someone else, or nil.
    /// A directory writable by others is fine when sticky (like /tmp): nobody can rename
    /// or remove what root put there.
    static func problem(mode: UInt32, owner: UInt32, trusted: [UInt32], what: String, sticky: Bool = false) -> String? {
        if !trusted.contains(owner) {
            return what + " belongs to uid \(owner), not root: the service user could change it (`chown root`)"
        }
        if mode & 0o022 != 0 && !(sticky && mode & 0o1000 != 0) {
            return what + " is writable by group or others (mode " + KeyFileAccess.octal(mode & 0o7777) + "; `chmod go-w`)"
        }
        return nil
    }

    /// Why a directory above `dir` (each one from `/` down) lets someone else swap what is
    /// below it, or nil: each must be a real directory (no link), trusted, not writable by
    /// others unless sticky.
    static func ancestors(of dir: String, trusted: [UInt32]) -> String? {
        let bytes = Array(dir.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return "the path is not absolute" }
        var i = 0
        while i < bytes.count {
            let prefix = i == 0 ? "/" : String(decoding: bytes[0..<i], as: UTF8.self)
            var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
            let fd = withUnsafeMutablePointer(to: &info) { p in
                p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_dir_open(prefix, $0) }
            }
            if fd < 0 { return prefix + " is not a directory one can trust (" + SystemError(errno: -fd).message + "; a symbolic link?)" }
            _ = wisp_close(fd)
            if let why = problem(mode: info.0, owner: info.1, trusted: trusted, what: prefix, sticky: true) { return why }
            i += 1
            while i < bytes.count && bytes[i] != UInt8(ascii: "/") { i += 1 }
        }
        return nil
    }

    /// Root, and the owner of the running binary (whoever owns it already decides what runs).
    static var owners: [UInt32] {
        var owners: [UInt32] = [0]
        var info: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)
        if let me = OTAFiles.selfPath {
            let fd = withUnsafeMutablePointer(to: &info) { p in
                p.withMemoryRebound(to: UInt32.self, capacity: 5) { wisp_open_secret(me, $0) }
            }
            if fd >= 0 {
                _ = wisp_close(fd)
                if info.1 != 0 { owners.append(info.1) }
            }
        }
        return owners
    }
}

enum TrustedFileError: Error, Equatable {
    case missing
    case refused(String)
}

/// The board settings as the agent and the root step read them.
public enum BoardSettingsFile {
    /// The settings in `path`. No file at the default path: the defaults (reboot refused,
    /// OTA needs /etc/wisp/ota.pub); a file named by --board-config must exist.
    public static func load(_ path: String?) -> Result<BoardSettings, BoardSettingsFileError> {
        let file = path ?? BoardSettings.defaultPath
        switch TrustedFile.read(file, limit: 4096) {
        case .failure(.missing):
            if path == nil { return .success(BoardSettings()) }
            return .failure(BoardSettingsFileError(message: "board settings " + file + " do not exist"))
        case .failure(.refused(let why)):
            return .failure(BoardSettingsFileError(message: "board settings refused: " + why))
        case .success(let bytes):
            switch BoardSettings.parse(String(decoding: bytes, as: UTF8.self)) {
            case .success(let s): return .success(s)
            case .failure(let e): return .failure(BoardSettingsFileError(message: file + ": " + e.message))
            }
        }
    }
}

public struct BoardSettingsFileError: Error, Sendable {
    public var message: String
}
