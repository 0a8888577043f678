import CWispPlatform
import WispCore

/// The files of an update under `state_dir/ota`, the service user's directory (written
/// through `StateStore`). Nothing here is trusted by the root step but as a cue: it takes
/// `staged` into its own directory and verifies the publisher's signature there.
///
///   package.part   the download so far                                       (service)
///   package.want   which package package.part belongs to                     (service)
///   candidate      the payload, unpacked to run its --version after the signature checked (service)
///   staged         the signed package as downloaded, verified                (service)
///   staged.ready   its version and counter: the root step's cue              (service, written last)
///   running        the version that last reached CONNACK                     (service)
///   result         the root step's verdict for the platform                  (root; reported, then removed)
///   installed      the version and security counter installed last           (root; a copy of its own record)
///   reboot         the platform's reboot service asked for one               (service; the root step reboots)
///   failed         a version that failed verification or was rolled back: not taken again (service)
struct OTAFiles {
    let dir: String

    init(stateDir: String) { dir = stateDir + "/ota" }

    var part: String { dir + "/package.part" }
    var want: String { dir + "/package.want" }
    var candidate: String { dir + "/candidate" }
    var candidateDeb: String { dir + "/candidate.deb" }
    var staged: String { dir + "/staged" }
    var ready: String { dir + "/staged.ready" }
    var running: String { dir + "/running" }
    var result: String { dir + "/result" }
    var installed: String { dir + "/installed" }
    var reboot: String { dir + "/reboot" }
    var failed: String { dir + "/failed" }
    var debDir: String { dir + "/deb" }

    /// The names, for the root step (which reaches them through the open directory).
    static let stagedName = "staged", readyName = "staged.ready", runningName = "running", resultName = "result",
               installedName = "installed", rebootName = "reboot"

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

    /// The security counter the wisp binary at `path` carries (SecurityCounter), nil when
    /// it carries none or cannot be read. Read in 64 KiB pieces, at most 256 MiB.
    static func securityCounter(of path: String) -> Int64? {
        let fd = wisp_open_read(path)
        if fd < 0 { return nil }
        defer { _ = wisp_close(fd) }
        let keep = SecurityCounter.overlap
        var buffer = [UInt8](repeating: 0, count: 65_536 + keep)
        var held = 0
        var total: Int64 = 0
        while total < 256 << 20 {
            let n = buffer.withUnsafeMutableBufferPointer { wisp_read(fd, $0.baseAddress! + held, 65_536) }
            if n <= 0 { return nil }
            total += n
            let count = held + Int(n)
            if let found = buffer.withUnsafeBytes({ SecurityCounter.find(in: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) { return found }
            held = min(keep, count)
            for k in 0..<held { buffer[k] = buffer[count - held + k] }
        }
        return nil
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

/// Why an upgrade stops: the progress step the platform is told, and why.
struct OTARefusal: Error {
    var step: Int
    var message: String

    init(_ step: Int, _ message: String) {
        self.step = step
        self.message = message
    }
}
