import CWispPlatform
import WispCore

/// The device's tags in the console (`thing.deviceinfo.update`, platform devices only): at
/// every CONNACK the board's facts — model, OS, kernel, architecture, wisp's version, the
/// primary IPv4 address — and the key file's `tag.NAME = VALUE` lines are collected (their
/// files read once) and compared with what the platform last accepted (a sha256 in
/// `state_dir/deviceinfo`); only a difference is sent. The update goes out in parts of as
/// many entries as the outbox's message takes, each sent when the platform said 200 to the
/// one before; when it said 200 to the last, the digest is recorded. A refused or
/// unanswered update is sent again whole at the next connect. Between connects nothing
/// happens here.
struct DeviceInfo {
    let device: DeviceConfig
    let board: Board
    let log: Log
    /// What this connect sends: the entries, the first not yet sent, the id of the part
    /// waiting for its reply, and the digest recorded when the last part is accepted.
    var entries: [DeviceInfoUpdate.Entry] = []
    var next = 0
    var waiting: UInt64?
    var digest = ""

    init(_ device: DeviceConfig, board: Board, log: Log) {
        self.device = device
        self.board = board
        self.log = log
    }

    var recordPath: String { device.stateDir + "/deviceinfo" }

    /// At CONNACK: the first part of the update, when something changed since the last
    /// accepted one.
    mutating func online(out: inout Outbox) {
        let (all, dropped) = DeviceInfoUpdate.entries(facts: DeviceInfo.facts(board), tags: device.tags)
        if dropped > 0 { log.warning("device info: \(dropped) entries left out (the platform takes \(DeviceInfoUpdate.maxEntries))") }
        digest = Hex.encode(DeviceInfo.sha256(DeviceInfoUpdate.canonical(all)))
        waiting = nil
        if !digest.isEmpty, StateStore.read(recordPath)?["sha256"]?.equals(digest) == true {
            entries = []
            log.debug("device info: unchanged since the platform accepted it; not sent")
            return
        }
        entries = all
        next = 0
        send(out: &out)
    }

    /// The platform's answer to a part: the next part, or the record once all are in.
    mutating func handle(_ payload: UnsafeRawBufferPointer, out: inout Outbox) {
        guard let reply = DeviceInfoUpdate.reply(payload) else {
            log.warning("device info: a reply that is not JSON ignored")
            return
        }
        guard let id = waiting, reply.id == id else {
            log.debug("device info: a reply to another update ignored")
            return
        }
        waiting = nil
        guard reply.code == 200 else {
            let code = reply.code.map { "\($0)" } ?? "none"
            log.warning("device info refused by the platform (code " + code + ": " + reply.message + "); sent again at the next connect")
            entries = []
            return
        }
        if next < entries.count {
            send(out: &out)
            return
        }
        var record = StateRecord()
        record["sha256"] = digest
        record["entries"] = "\(entries.count)"
        // Recorded before it is said: whoever reads the line finds the record.
        if wisp_file_mode(device.stateDir) < 0 {  // made by the unit (StateDirectory), not here (as LastRun)
            log.info("device info: state_dir " + device.stateDir + " does not exist; sent again at the next connect")
        } else if let e = StateStore.write(record, to: recordPath) {
            log.warning("device info: cannot write " + recordPath + ": " + e.message + "; sent again at the next connect")
        }
        log.info("device info: \(entries.count) entries accepted by the platform")
        entries = []
    }

    /// The next part: as many entries from `next` as the outbox's message takes.
    mutating func send(out: inout Outbox) {
        guard let topic = out.topics.deviceInfoUpdate else { return }
        let id = out.nextId()
        let end = DeviceInfoUpdate.write(id: id, entries: entries, from: next, into: &out.json)
        guard end > next else {  // an entry is at most ~190 bytes: cannot happen in a 512-byte message
            log.warning("device info: an entry does not fit in a message; not sent")
            entries = []
            return
        }
        log.debug("device info: sending entries \(next + 1)–\(end) of \(entries.count)")
        out.send(topic, qos: .atMostOnce)
        waiting = id
        next = end
    }

    /// The board's facts, each nil when it cannot be read: `/proc/device-tree/model`,
    /// os-release's PRETTY_NAME, uname's release and machine, wisp's version, and the IPv4
    /// address of the interface the default route goes through (`/proc/net/route`).
    static func facts(_ board: Board) -> [(String, String?)] {
        var model: String?
        if case .success(let b) = System.readFile(board.path("/proc/device-tree/model"), limit: 1024) { model = DeviceInfoUpdate.model(b) }
        var os: String?
        for path in ["/etc/os-release", "/usr/lib/os-release"] where os == nil {
            if case .success(let b) = System.readFile(path, limit: 8192) { os = DeviceInfoUpdate.prettyName(osRelease: b) }
        }
        var release = [CChar](repeating: 0, count: 128), machine = [CChar](repeating: 0, count: 64)
        let named = wisp_uname(&release, release.count, &machine, machine.count) == 0
        var ip: String?
        if case .success(let b) = System.readFile(board.path("/proc/net/route"), limit: 65_536),
           let name = DeviceInfoUpdate.defaultRouteInterface(b) {
            var text = [CChar](repeating: 0, count: 16)
            if wisp_interface_ipv4(name, &text, text.count) == 0 { ip = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }
        }
        return [(DeviceInfoUpdate.boardModel, model), (DeviceInfoUpdate.osRelease, os),
                (DeviceInfoUpdate.kernelRelease, named ? release.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : nil),
                (DeviceInfoUpdate.architecture, named ? machine.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : nil),
                (DeviceInfoUpdate.wispVersion, Agent.version), (DeviceInfoUpdate.ipv4, ip)]
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        guard let d = wisp_digest_new(WISP_HMAC_SHA256) else { return [] }
        _ = bytes.withUnsafeBufferPointer { wisp_digest_update(d, $0.baseAddress, $0.count) }
        var out = [UInt8](repeating: 0, count: 32)
        let n = wisp_digest_finish(d, &out, out.count)
        return n == 32 ? out : []
    }
}
