/// Where the board's kernel interfaces are: /sys, /proc and /dev at `/`, or under a folder
/// holding a copy of a board's tree (`WISP_ROOT`, for tests and `wisp sensors` on a copy).
/// A value handed to whatever reads them: sensors, GPIO, discovery, the board's serial.
public struct Board: Sendable {
    /// "" for the real board.
    public let root: String

    public init(root: String = "") { self.root = root }

    /// The board the process runs on, moved under `WISP_ROOT` when it is set.
    public static var fromEnvironment: Board { Board(root: System.environment("WISP_ROOT") ?? "") }

    /// `path` (which starts with /sys, /proc or /dev) on this board.
    public func path(_ path: String) -> String { root.isEmpty ? path : root + path }
}
