/// Who may own and read the key file, which holds the device secret.
///
/// The file must be a regular file (not a symlink: it is opened with O_NOFOLLOW), owned
/// by root or by the user wisp runs as, and readable by nobody else — except that
/// `root:wisp 0640` is fine when wisp runs in group `wisp`, so the service user need not
/// own (and so cannot rewrite) its own secret. The facts come from `fstat` of the open
/// descriptor, never from a second look at the path.
public enum KeyFileAccess {
    public struct Facts: Equatable, Sendable {
        public var mode: UInt32
        public var isRegular: Bool
        public var owner: UInt32
        public var group: UInt32
        public var user: UInt32
        public var userGroup: UInt32

        public init(mode: UInt32, isRegular: Bool, owner: UInt32, group: UInt32, user: UInt32, userGroup: UInt32) {
            self.mode = mode
            self.isRegular = isRegular
            self.owner = owner
            self.group = group
            self.user = user
            self.userGroup = userGroup
        }
    }

    public enum Problem: Equatable, Sendable {
        case notRegular
        case owner(UInt32)
        case readableByOthers(UInt32)
        case groupWritable(UInt32)
        case foreignGroup(mode: UInt32, group: UInt32)
    }

    /// Nil when wisp may use the file.
    public static func check(_ f: Facts) -> Problem? {
        if !f.isRegular { return .notRegular }
        if f.owner != 0 && f.owner != f.user { return .owner(f.owner) }
        if f.mode & 0o007 != 0 { return .readableByOthers(f.mode) }
        if f.mode & 0o030 != 0 { return .groupWritable(f.mode) }
        if f.mode & 0o040 != 0 && f.group != f.userGroup { return .foreignGroup(mode: f.mode, group: f.group) }
        return nil
    }

    /// One sentence that says what is wrong with `path` and the command that fixes it.
    public static func message(_ problem: Problem, path: String) -> String {
        switch problem {
        case .notRegular:
            "key file " + path + " is not a regular file; point --config at the file itself"
        case .owner(let uid):
            "key file " + path + " belongs to uid \(uid), neither root nor the user wisp runs as; run `chown root " + path + "`"
        case .readableByOthers(let mode):
            "key file " + path + " is readable by others (mode " + octal(mode) + "); it holds the device secret: run `chmod 600 " + path + "`"
        case .groupWritable(let mode):
            "key file " + path + " is writable by its group (mode " + octal(mode) + "): run `chmod 600 " + path + "`"
        case .foreignGroup(let mode, let gid):
            "key file " + path + " is readable by group \(gid) (mode " + octal(mode)
                + "), which is not wisp's own group: run `chmod 600 " + path + "`, or `chgrp wisp` it for root:wisp 0640"
        }
    }

    public static func octal(_ mode: UInt32) -> String {
        var digits = ""
        var m = mode & 0o7777
        for _ in 0..<4 {
            digits = String(m & 7) + digits
            m >>= 3
        }
        return digits
    }
}
