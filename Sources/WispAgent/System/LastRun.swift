import CWispPlatform
import WispCore

/// Why this process started, for the `startup` event, from `state_dir/last-run` (the boot
/// it ran in, its version, whether it stopped cleanly) and the kernel's boot id:
/// `boot` (another boot, or no record), `ota` (another version than last time), `crash`
/// (the last run never said it stopped: killed, crashed, power cut), else `restart`.
/// nil when state_dir does not exist (nothing to compare with).
enum LastRun {
    static func path(_ device: DeviceConfig) -> String { device.stateDir + "/last-run" }

    static func bootId(_ board: Board) -> String {
        let text = System.readText(board.path("/proc/sys/kernel/random/boot_id"), limit: 64) ?? ""
        return String(decoding: text.utf8.prefix { $0 > 0x20 }, as: UTF8.self)
    }

    /// Reads the last record and writes this run's (`state = running`).
    static func start(_ device: DeviceConfig, board: Board, log: Log) -> String? {
        guard wisp_file_mode(device.stateDir) >= 0 else { return nil }
        let boot = bootId(board)
        let last = StateStore.read(path(device))
        let reason: String
        if let last, last["boot_id"]?.equals(boot) == true {
            if last["version"]?.equals(Agent.version) != true {
                reason = "ota"
            } else if last["state"]?.equals("stopped") == true {
                reason = "restart"
            } else {
                reason = "crash"
            }
        } else {
            reason = "boot"
        }
        write(device, boot: boot, state: "running", log: log)
        return reason
    }

    /// A clean stop: the next start is a `restart`, not a `crash`.
    static func stopped(_ device: DeviceConfig, board: Board, log: Log) {
        guard wisp_file_mode(device.stateDir) >= 0 else { return }
        write(device, boot: bootId(board), state: "stopped", log: log)
    }

    static func write(_ device: DeviceConfig, boot: String, state: String, log: Log) {
        var r = StateRecord()
        r["boot_id"] = boot
        r["version"] = Agent.version
        r["state"] = state
        if let e = StateStore.write(r, to: path(device), mode: 0o644) { log.debug("cannot write " + path(device) + ": " + e.message) }
    }
}
