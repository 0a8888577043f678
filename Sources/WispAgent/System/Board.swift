import WispCore

/// The board wisp runs on: where its kernel interfaces are (/sys, /proc and /dev at `/`,
/// or under a folder holding a copy of a board's tree: `WISP_ROOT`, for tests and
/// `wisp sensors` on a copy), and its root-owned settings (board.conf). A value handed to
/// whatever reads them: sensors, GPIO, discovery, the board's serial, services, OTA.
public struct Board: Sendable {
    /// "" for the real board.
    public let root: String
    /// The board settings; the defaults (nothing allowed) when they were refused.
    public var settings = BoardSettings()
    /// Why the board settings were refused, if they were: OTA and reboots are refused
    /// with this reason until the file is fixed.
    public var settingsRefused: String?

    public init(root: String = "") { self.root = root }

    /// The board the process runs on, moved under `WISP_ROOT` when it is set.
    public static var fromEnvironment: Board { Board(root: System.environment("WISP_ROOT") ?? "") }

    /// This board with the settings in `path` (nil: /etc/wisp/board.conf, if it exists).
    public func withSettings(from path: String?) -> Board {
        var b = self
        switch BoardSettingsFile.load(path) {
        case .success(let s): b.settings = s
        case .failure(let e): b.settingsRefused = e.message
        }
        return b
    }

    /// `path` (which starts with /sys, /proc or /dev) on this board.
    public func path(_ path: String) -> String { root.isEmpty ? path : root + path }
}
