import CWispPlatform
import WispCore

/// `wisp status [--config PATH] [--json]`: what the running agent's status file says (the
/// link and since when, the endpoint, the last post and its reply, the backlog, the last
/// error, the version, the OTA's last report), with the exit codes of an LSB init script's
/// `status`: 0 online, 1 offline (or still connecting), 3 not running (no status file, or
/// one left by an agent that is gone: its pid is gone or belongs to another process, or it
/// is from an earlier boot), 4 unknown (a file that cannot be read or does not parse).
///
/// The file is written by the service user and may be read by root: it is opened through
/// its directory (no link followed, no FIFO waited on), at most `StatusText.maxBytes`,
/// parsed strictly, and every value is escaped again before it reaches the terminal.
public enum StatusCommand {
    public enum Verdict: Error, Equatable {
        case online, offline
        case notRunning(String)
        case unknown(String)

        public var exitCode: ExitCode {
            switch self {
            case .online: .ok
            case .offline: .failure
            case .notRunning: .notRunning
            case .unknown: .statusUnknown
            }
        }

        /// The agent is running (online or offline). A pattern, not ==: the synthesized ==
        /// compares the reasons as Strings, which pulls Unicode normalisation into Embedded.
        public var running: Bool {
            switch self {
            case .online, .offline: true
            case .notRunning, .unknown: false
            }
        }
    }

    static let required = ["pid", "start_time", "boot_id", "version", "link", "since", "endpoint", "backlog", "updated", "updated_mono"]

    /// The command: finds the status file from the key file (the default when the key file
    /// cannot be read by this user, said only when that matters), reads it, prints it.
    public static func run(configPath: String, json: Bool) -> ExitCode {
        var path = DeviceConfig.defaultStatusFile
        var fallback = ""
        // The key file only: remote.conf and the identity live in state_dir, which the service
        // user writes, and this may run as root.
        switch ConfigLoader.keyFile(configPath) {
        case .success(let read): path = read.config.statusFile
        case .failure(let e): fallback = " (the key file could not be read: " + e.message + "; the default status_file was read)"
        }
        let (verdict, record) = read(path)
        if json {
            System.out(render(record, verdict: verdict, path: path, now: System.monotonicMillis))
        } else if let record, verdict.running {
            System.write(describe(record, path: path, now: System.monotonicMillis), to: 1)
        } else if case .notRunning(let why) = verdict {
            System.out("wisp is not running: " + why + fallback)
        } else if case .unknown(let why) = verdict {
            System.write("wisp: status unknown: " + why + fallback + "\n", to: 2)
        }
        return verdict.exitCode
    }

    /// The verdict on the status file at `path`, and its fields when it names a live agent.
    public static func read(_ path: String) -> (Verdict, StatusText.Record?) {
        let bytes: [UInt8]
        switch load(path) {
        case .failure(let verdict): return (verdict, nil)
        case .success(let b): bytes = b
        }
        let record: StatusText.Record
        switch StatusText.parse(bytes, required: required) {
        case .failure(let problem): return (.unknown("the status file " + path + " is not valid: " + problem.message), nil)
        case .success(let r): record = r
        }
        let pid: Int64, start: Int64
        do {
            guard let p = try record.number("pid"), let s = try record.number("start_time"), p >= 1, p <= 4_194_304 else {
                return (.unknown("the status file " + path + " names no valid pid"), nil)
            }
            for key in ["since", "backlog", "updated", "updated_mono", "last_post", "last_ack", "last_reply", "last_reply_at", "last_error_at"] {
                _ = try record.number(key)
            }
            (pid, start) = (p, s)
        } catch {
            return (.unknown("the status file " + path + " is not valid: " + error.message), nil)
        }
        if let boot = ProcessIdentity.bootId, let written = record["boot_id"], !boot.elementsEqual(written) {
            return (.notRunning("the status file " + path + " is from an earlier boot"), nil)
        }
        guard let process = ProcessIdentity.of(pid) else {
            return (.notRunning("the agent that wrote " + path + " (pid \(pid)) is gone"), nil)
        }
        guard process.startTime == start else {
            return (.notRunning("pid \(pid), which wrote " + path + ", is another process now: the agent is gone"), nil)
        }
        let link = record["link"] ?? []
        if link.elementsEqual("online".utf8) { return (.online, record) }
        if link.elementsEqual("offline".utf8) || link.elementsEqual("connecting".utf8) { return (.offline, record) }
        return (.unknown("the status file " + path + " has an unknown link state"), nil)
    }

    /// The file's bytes, opened through its directory: no link followed, no FIFO waited on.
    static func load(_ path: String) -> Result<[UInt8], Verdict> {
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let name = slash.map { String(path[path.utf8.index(after: $0)...]) } ?? path
        let missing = Verdict.notRunning("no status file at " + path + " (or the agent's status_file is elsewhere: --config names its key file)")
        let directory: OpenDirectory
        switch OpenDirectory.open(StateStore.directory(of: path)) {
        case .failure(let e) where e.errno == 2: return .failure(missing)
        case .failure(let e): return .failure(.unknown("cannot open the folder of " + path + ": " + e.message))
        case .success(let d): directory = d
        }
        defer { directory.close() }
        let file: OpenDirectory.File
        switch directory.open(name) {
        case .failure(let e) where e.errno == 2: return .failure(missing)
        case .failure(let e): return .failure(.unknown("cannot open " + path + ": " + e.message))
        case .success(let f): file = f
        }
        defer { _ = wisp_close(file.fd) }
        guard file.isRegular else { return .failure(.unknown(path + " is not a regular file")) }
        var buffer = [UInt8](repeating: 0, count: StatusText.maxBytes)
        let n = buffer.withUnsafeMutableBufferPointer { wisp_read_fd(file.fd, $0.baseAddress, $0.count) }
        if n == -27 { return .failure(.unknown("the status file " + path + " is not valid: " + StatusText.Problem.tooLong.message)) }
        if n < 0 { return .failure(.unknown("cannot read " + path + ": " + SystemError(errno: Int32(-n)).message)) }
        return .success(Array(buffer[0..<Int(n)]))
    }

    // MARK: showing

    /// A field escaped for the terminal (as the log escapes network text).
    static func show(_ record: StatusText.Record, _ key: String) -> String { LogText.escape(record[key] ?? [], limit: StatusText.maxValue + 3) }

    static func number(_ record: StatusText.Record, _ key: String) -> Int64? { (try? record.number(key)) ?? nil }

    /// Milliseconds since wall-clock time `t` of the file: measured on the monotonic clock
    /// from the write (`updated_mono`), so a wall clock that moved since does not matter.
    static func ago(_ record: StatusText.Record, _ t: Int64, now: UInt64) -> Int64 {
        let updated = number(record, "updated") ?? 0, mono = number(record, "updated_mono") ?? 0
        let sinceWrite = Int64(now) > mono ? Int64(now) - mono : 0
        return sinceWrite + max(0, updated - t)
    }

    static func when(_ record: StatusText.Record, _ key: String, now: UInt64) -> String? {
        guard let t = number(record, key) else { return nil }
        return utc(t) + " (" + duration(ago(record, t, now: now)) + " ago)"
    }

    /// The text for a person at the board.
    static func describe(_ record: StatusText.Record, path: String, now: UInt64) -> String {
        var out = "wisp " + show(record, "version") + " (pid " + show(record, "pid") + "): " + show(record, "link") + " since "
            + (when(record, "since", now: now) ?? "?") + "\n"
        out += "endpoint:   " + show(record, "endpoint") + "\n"
        if let post = when(record, "last_post", now: now) {
            let acked = (number(record, "last_ack") ?? -1) >= (number(record, "last_post") ?? 0)
            out += "last post:  " + post + (acked ? ", acknowledged" : ", not acknowledged yet")
            if let code = number(record, "last_reply") { out += ", last platform reply \(code)" }
            out += "\n"
        } else {
            out += "last post:  none yet\n"
        }
        out += "backlog:    " + show(record, "backlog") + " sample(s) waiting\n"
        if record["last_error"] != nil {
            out += "last error: " + show(record, "last_error") + ", at " + (when(record, "last_error_at", now: now) ?? "?") + "\n"
        } else {
            out += "last error: none\n"
        }
        if let step = record["ota_step"] {
            out += "ota:        version " + show(record, "ota_version") + ", step " + LogText.escape(step) + ": " + show(record, "ota_desc") + "\n"
        } else {
            out += "ota:        nothing this run (wisp ota status has the files)\n"
        }
        out += "status:     " + path + ", written " + duration(ago(record, number(record, "updated") ?? 0, now: now)) + " ago\n"
        return out
    }

    /// One JSON object with the same fields (`running`: false when not running, null when unknown).
    static func render(_ record: StatusText.Record?, verdict: Verdict, path: String, now: UInt64) -> String {
        var j = JSONWriter(capacity: 2 * StatusText.maxBytes + 1024)
        switch verdict {
        case .notRunning(let why), .unknown(let why):
            if case .notRunning = verdict { j.raw("{\"running\":false") } else { j.raw("{\"running\":null") }
            j.raw(",\"status_file\":")
            j.string(path)
            j.raw(",\"reason\":")
            j.string(why)
        case .online, .offline:
            let r = record ?? StatusText.Record()
            j.raw("{\"running\":true,\"status_file\":")
            j.string(path)
            for key in ["link", "endpoint", "version", "boot_id", "last_error", "ota_version", "ota_desc"] {
                j.raw(",")
                j.string(key)
                j.raw(":")
                // Escaped as the text output is (printable ASCII, `\xNN`): JSON's own escaping
                // leaves DEL and C1 controls (U+0080–U+009F) raw for a terminal to act on.
                if let v = r[key] { j.string(LogText.escape(v)) } else { j.raw("null") }
            }
            for key in ["pid", "since", "backlog", "last_post", "last_ack", "last_reply", "last_reply_at", "last_error_at", "updated"] {
                j.raw(",")
                j.string(key)
                j.raw(":")
                if let v = number(r, key) { j.integer(v) } else { j.raw("null") }
            }
            j.raw(",\"ota_step\":")
            if let s = r["ota_step"], let v = s.first == UInt8(ascii: "-") ? DecimalScan.whole(s.dropFirst()).map({ -$0 }) : DecimalScan.whole(s) {
                j.integer(v)
            } else {
                j.raw("null")
            }
            j.raw(",\"since_seconds\":")
            j.integer(ago(r, number(r, "since") ?? 0, now: now) / 1000)
        }
        j.raw("}")
        return String(decoding: j.buffer.bytes, as: UTF8.self)
    }

    /// `2026-12-06 15:20:01 UTC` for wall-clock milliseconds (`CivilTime`).
    static func utc(_ ms: Int64) -> String {
        let t = CivilTime(ms: UInt64(max(0, ms)))
        return "\(t.year)-" + two(t.month) + "-" + two(t.day) + " " + two(t.hour) + ":" + two(t.minute) + ":" + two(t.second) + " UTC"
    }

    static func two(_ v: Int64) -> String { (v < 10 ? "0" : "") + "\(v)" }

    /// `4 s`, `5 min 3 s`, `2 h 5 min`, `3 d 4 h`.
    static func duration(_ ms: Int64) -> String {
        let s = max(0, ms) / 1000
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86_400 { return "\(s / 3600) h \(s / 60 % 60) min" }
        return "\(s / 86_400) d \(s / 3600 % 24) h"
    }
}
