import CWispPlatform
import WispCore

/// What `wisp status` reads: the agent's status file (`status_file`, by default
/// /run/wisp/status, the unit's RuntimeDirectory: a tmpfs, nothing on the SD card),
/// rewritten whole (temp file, rename; mode 0644) when something changed, at most once per
/// `spacing`: the device's loop takes `advance`'s answer as a deadline, so a change waits
/// for the next write and nothing wakes the loop while nothing changes. The text is made in
/// one fixed buffer and the paths are prepared at start-up: the steady state allocates
/// nothing. It holds no secret: the link, the endpoint, the posts, the backlog, the last
/// error, the OTA's last report, and who wrote it (pid, boot id, the process's start time)
/// so that a file left by an agent that is gone is known for what it is.
struct StatusFile {
    static let spacing: UInt64 = 5000

    enum Link {
        case connecting, online, offline
        var name: String {
            switch self {
            case .connecting: "connecting"
            case .online: "online"
            case .offline: "offline"
            }
        }
    }

    let path: CPath
    let tmp: CPath
    var writer = StatusText.Writer(capacity: 2 * StatusText.maxField)
    let me: ProcessIdentity?
    let bootId: [UInt8]
    let endpoint: [UInt8]
    let version: [UInt8]
    let clock: Clock
    let log: Log

    var link = Link.connecting
    /// When the link came up or went down (monotonic ms); the start while it never came up.
    var since: UInt64
    var lastError: String?
    var lastErrorAt: UInt64 = 0
    var reply: (code: Int, at: UInt64)?
    /// The telemetry's counters as last seen, and when they last moved.
    var posts = 0, acks = 0, backlog = 0
    var lastPost: UInt64?
    var lastAck: UInt64?
    var ota = OTAReport()
    var dirty = true
    var nextWrite: UInt64 = 0
    var failures = 0

    init(_ device: DeviceConfig, clock: Clock, log: Log) {
        path = CPath(device.statusFile)
        tmp = CPath(device.statusFile + ".tmp")
        me = ProcessIdentity.current
        bootId = ProcessIdentity.bootId ?? []
        endpoint = Array(device.endpoint.description.utf8)
        version = Array(Agent.version.utf8)
        self.clock = clock
        self.log = log
        since = clock.monotonic()
    }

    // MARK: what happened

    /// What the driver reported about the link.
    mutating func note<T>(_ event: Driver<T>.Event) {
        switch event {
        case .openFailed(let message):
            error("cannot connect: " + message)
            wentOffline()
        case .session(.online):
            link = .online
            since = clock.monotonic()
            dirty = true
        case .session(.offline(let reason, _)):
            // By pattern, not ==: a synthesized == over the reasons' payloads pulls String's
            // (and Unicode normalisation) into the Embedded build.
            if case .stopped = reason { return }
            if case .connectFailed = reason {} else { error(reason.message) }  // openFailed said why
            wentOffline()
        case .session(.subscribed(let refused)) where refused != 0:
            error("the broker refused \(refused.nonzeroBitCount) subscription(s)")
        default:
            break
        }
    }

    /// The platform's reply to a property post (the code; nil when it has none).
    mutating func reply(_ kind: AlinkTopics.Inbound, _ code: Int?) {
        guard kind == .postReply else { return }
        reply = (code ?? -1, clock.monotonic())
        if code != 200 { error("property post refused by the platform (code " + (code.map { "\($0)" } ?? "none") + ")") }
        dirty = true
    }

    mutating func error(_ message: String) {
        lastError = message
        lastErrorAt = clock.monotonic()
        dirty = true
    }

    mutating func wentOffline() {
        if link == .online { since = clock.monotonic() }
        link = .offline
        dirty = true
    }

    // MARK: writing

    /// Notes what the telemetry and the OTA did since the last call, and writes the file
    /// when something changed and the spacing allows. The deadline for the next write
    /// (`UInt64.max` when nothing waits).
    mutating func advance(now: UInt64, wall: UInt64, telemetry: borrowing Telemetry, ota report: OTAReport?) -> UInt64 {
        advance(now: now, wall: wall, posts: telemetry.posts, acks: telemetry.acks, backlog: telemetry.backlog.depth, ota: report)
    }

    mutating func advance(now: UInt64, wall: UInt64, posts: Int, acks: Int, backlog: Int, ota report: OTAReport?) -> UInt64 {
        if posts != self.posts {
            self.posts = posts
            lastPost = now
            dirty = true
        }
        if acks != self.acks {
            self.acks = acks
            lastAck = now
            dirty = true
        }
        if backlog != self.backlog {
            self.backlog = backlog
            dirty = true
        }
        if let report, report.count != ota.count {
            ota = report
            dirty = true
        }
        guard dirty else { return UInt64.max }
        guard now >= nextWrite else { return nextWrite }
        write(now: now, wall: wall)
        dirty = false
        nextWrite = now + StatusFile.spacing
        return UInt64.max
    }

    mutating func write(now: UInt64, wall: UInt64) {
        // Times go out as wall-clock ms (the clock posts are stamped with); `updated_mono`
        // lets a reader on this boot say how long ago, whatever the wall clock did.
        func at(_ t: UInt64) -> UInt64 { wall - min(wall, now - min(now, t)) }
        // Streamed: the writer is drained into the file whenever the next field might not
        // fit (its buffer is 2 × StatusText.maxField, not the file's 4 KiB).
        let r = StateStore.replace(path, via: tmp, mode: 0o644) { fd in
            var failed: Int32 = 0
            func drain(_ all: Bool = false) {
                guard all || writer.buffer.available < StatusText.maxField else { return }
                if failed == 0 && writer.ok {
                    failed = writer.buffer.withBytes { Int32(wisp_write_all(fd, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count)) }
                }
                writer.buffer.removeAll()
            }
            writer.begin()
            writer.field("pid", number: UInt64(me?.pid ?? 0))
            drain()
            writer.field("start_time", number: UInt64(me?.startTime ?? 0))
            drain()
            writer.field("boot_id", bootId)
            drain()
            writer.field("version", version)
            drain()
            writer.field("link", text: link.name)
            drain()
            writer.field("since", number: at(since))
            drain()
            writer.field("endpoint", endpoint)
            drain()
            if let lastPost { writer.field("last_post", number: at(lastPost)) }
            drain()
            if let lastAck { writer.field("last_ack", number: at(lastAck)) }
            if let reply {
                drain()
                writer.field("last_reply", number: UInt64(max(0, reply.code)))
                drain()
                writer.field("last_reply_at", number: at(reply.at))
            }
            drain()
            writer.field("backlog", number: UInt64(backlog))
            if let lastError {
                drain()
                writer.field("last_error", text: lastError)
                drain()
                writer.field("last_error_at", number: at(lastErrorAt))
            }
            if ota.count > 0 {
                drain()
                writer.field("ota_step", signed: Int64(ota.step))
                drain()
                writer.field("ota_version", text: ota.version)
                drain()
                writer.field("ota_desc", text: ota.desc)
            }
            drain()
            writer.field("updated", number: wall)
            drain()
            writer.field("updated_mono", number: now)
            writer.finish()
            let whole = writer.ok
            drain(true)
            return failed != 0 ? failed : whole ? 0 : -75  // EOVERFLOW: a field did not fit (cannot happen)
        }
        if r < 0 {
            // Said once, then at every 100th failure; a default whose directory is missing
            // (wisp run by hand, outside the unit's RuntimeDirectory) only in the debug log.
            // The message is made only when it is said: a failing write allocates nothing either.
            failures += 1
            let quiet = r == -2 && path.text.equals(DeviceConfig.defaultStatusFile)
            guard failures == 1 || (!quiet && failures % 100 == 0) else { return }
            let message = "status file " + path.text + ": " + SystemError(errno: -r).message + "; `wisp status` will not see this agent"
            if quiet { log.debug(message) } else { log.warning(message) }
        } else {
            failures = 0
        }
    }
}

/// The OTA's last progress report this run, counted so that a change is seen cheaply.
struct OTAReport {
    var count = 0
    var step = 0
    var version = ""
    var desc = ""
}

/// A process as the kernel knows it: its pid and its start time (clock ticks after boot,
/// field 22 of /proc/PID/stat), which tell a live agent from a pid reused by another
/// process. /proc is reached through an open descriptor with relative names, so qemu-user
/// (the tests' armv7 and aarch64 runs) hands over the kernel's own file, not its emulation.
public struct ProcessIdentity: Equatable {
    public let pid: Int64
    public let startTime: Int64

    public static var current: ProcessIdentity? { read("self/stat") }

    /// The process `pid`, or nil when there is none (or /proc does not show it).
    public static func of(_ pid: Int64) -> ProcessIdentity? { read("\(pid)/stat") }

    static func read(_ name: String) -> ProcessIdentity? {
        guard case .success(let proc) = OpenDirectory.open("/proc") else { return nil }
        defer { proc.close() }
        return proc.read(name, limit: 1024).flatMap(parse)
    }

    /// `pid (comm) state ppid … starttime …`: the command may hold spaces and parentheses,
    /// so the fields are counted after the last `)`.
    public static func parse(_ stat: [UInt8]) -> ProcessIdentity? {
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")), let open = stat.firstIndex(of: UInt8(ascii: " ")),
              open < close, let pid = DecimalScan.whole(stat[0..<open]) else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let start = DecimalScan.whole(fields[19]) else { return nil }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// This boot's id (/proc/sys/kernel/random/boot_id), without its newline.
    public static var bootId: [UInt8]? {
        guard case .success(let bytes) = System.readFile("/proc/sys/kernel/random/boot_id", limit: 64) else { return nil }
        let id = Array(DecimalScan.trimmed(bytes.filter { $0 != UInt8(ascii: "\n") }))
        return id.isEmpty ? nil : id
    }
}
