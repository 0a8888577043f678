import CWispPlatform
import WispCore

/// `wisp ota status`: what the OTA files say, for a person at the board (often as root).
/// The service's files are read through its open directory, no link followed and no FIFO
/// waited on; root's own records (the trial's journal, what was installed) when readable.
public enum OTAStatus {
    public static func print(configPath: String, board: Board, log: Log) -> ExitCode {
        let device: DeviceConfig
        switch ConfigLoader.load(configPath, log: log, board: board) {
        case .success(let l): device = l.device
        case .failure(let e):
            log.error(e.message)
            return .configuration
        }
        let files = OTAFiles(stateDir: device.stateDir)
        System.out("version: " + Agent.version + " (module " + device.otaModule + ", security counter \(Agent.securityCounter))")
        if let why = board.settingsRefused {
            System.out("board settings: refused (" + why + "): OTA and reboots are refused")
        } else {
            System.out("publisher key: " + board.settings.otaPublicKey + (wisp_file_mode(board.settings.otaPublicKey) >= 0 ? "" : " (missing: OTA is refused)"))
        }
        var rootSaid = false
        if case .success(let root) = OpenDirectory.open(ApplyUpdate.defaultUpdateDir) {
            defer { root.close() }
            if let journal = root.record(ApplyUpdate.journal) {
                System.out("root step: version " + show(journal["version"]) + " " + show(journal["state"]) + " (journal in " + root.path + ")")
            }
            if let installed = root.record(ApplyUpdate.installed) {
                System.out("installed by OTA: version " + show(installed["version"]) + ", security counter " + show(installed["counter"]))
                rootSaid = true
            }
        }
        guard case .success(let ota) = OpenDirectory.open(files.dir) else {
            System.out("state: " + files.dir + " (none yet, or not readable)")
            return .ok
        }
        defer { ota.close() }
        System.out("state: " + files.dir)
        if let want = ota.record("package.want") {
            System.out("downloading: version " + show(want["version"]) + " of " + show(want["size"]) + " bytes")
        }
        if let ready = ota.record(OTAFiles.readyName) {
            System.out("staged: version " + show(ready["version"]) + " (counter " + show(ready["counter"]) + "), waiting for wisp-update.service")
        }
        if !rootSaid, let installed = ota.record(OTAFiles.installedName) {
            System.out("installed by OTA (the root step's copy in state_dir): version " + show(installed["version"])
                       + ", security counter " + show(installed["counter"]))
        }
        if let running = ota.record(OTAFiles.runningName) {
            System.out("last connected: version " + show(running["version"]))
        }
        if let result = ota.record(OTAFiles.resultName) {
            System.out("last result: version " + show(result["version"]) + " step " + show(result["step"]) + ": " + show(result["desc"]))
        } else if !ota.exists(OTAFiles.readyName) {
            System.out("last result: none pending")
        }
        return .ok
    }

    /// A value from a record, escaped for the terminal.
    static func show(_ value: String?) -> String { LogText.escape(Array((value ?? "?").utf8.prefix(200))) }
}
