import CWispPlatform
import WispCore

/// `wisp ota status`: what the OTA files say, for a person at the board.
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
        System.out("version: " + Agent.version + " (module " + device.otaModule + ")")
        if let why = board.settingsRefused {
            System.out("board settings: refused (" + why + "): OTA and reboots are refused")
        } else {
            System.out("publisher key: " + board.settings.otaPublicKey + (wisp_file_mode(board.settings.otaPublicKey) >= 0 ? "" : " (missing: OTA is refused)"))
        }
        System.out("state: " + files.dir + (files.exists ? "" : " (none yet)"))
        if let want = StateStore.read(files.want) {
            let have = max(0, wisp_file_size(files.part))
            System.out("downloading: version " + (want["version"] ?? "?") + ", \(have) of " + (want["size"] ?? "?") + " bytes")
        }
        if let ready = StateStore.read(files.ready) {
            System.out("staged: version " + (ready["version"] ?? "?") + " (counter " + (ready["counter"] ?? "?") + "), waiting for wisp-update.service")
        }
        if let installed = StateStore.read(files.installed) {
            System.out("installed by OTA: version " + (installed["version"] ?? "?") + ", security counter " + (installed["counter"] ?? "?"))
        }
        if let running = StateStore.read(files.running) {
            System.out("last connected: version " + (running["version"] ?? "?"))
        }
        if let result = StateStore.read(files.result) {
            System.out("last result: version " + (result["version"] ?? "?") + " step " + (result["step"] ?? "?") + ": " + (result["desc"] ?? ""))
        } else if wisp_file_mode(files.ready) < 0 {
            System.out("last result: none pending")
        }
        return .ok
    }
}
