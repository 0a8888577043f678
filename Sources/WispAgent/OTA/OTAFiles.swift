import CWispPlatform
import WispCore

/// The files of an update under `state_dir/ota` (written through `StateStore`):
///
///   package.part   the download so far                          (service)
///   package.want   which package package.part belongs to        (service)
///   staged         the verified binary, mode 0755                (service)
///   staged.deb     the package it came from, when it was a .deb  (service)
///   staged.ready   its version and sha256: the root step's cue   (service, written last)
///   applying       the root step's journal: a trial is running   (root)
///   running        the version that last reached CONNACK         (service)
///   result         the root step's verdict for the platform      (root; reported, then removed)
///   reboot         the platform's reboot service asked for one    (service; the root step reboots)
///   failed         a version that failed verification or was rolled back: not taken again (service)
struct OTAFiles {
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
}
