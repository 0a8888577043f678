/// One line per event on stderr, with a level. Under systemd (JOURNAL_STREAM set) each
/// line starts with the syslog priority `<N>` so journald files it at the right level;
/// journald adds the time. Nothing that reaches here may hold a secret.
public enum Log {
    public enum Level: Int, Sendable {
        case error = 3, warning = 4, info = 6, debug = 7

        var name: String {
            switch self {
            case .error: "error"
            case .warning: "warning"
            case .info: "info"
            case .debug: "debug"
            }
        }
    }

    nonisolated(unsafe) public static var threshold: Level = .info
    nonisolated(unsafe) static var journal = System.environment("JOURNAL_STREAM") != nil

    public static func enabled(_ level: Level) -> Bool { level.rawValue <= threshold.rawValue }

    public static func write(_ level: Level, _ message: String) {
        guard enabled(level) else { return }
        let prefix = journal ? "<\(level.rawValue)>" : ""
        System.write(prefix + level.name + ": " + message + "\n", to: 2)
    }

    public static func error(_ m: String) { write(.error, m) }
    public static func warning(_ m: String) { write(.warning, m) }
    public static func info(_ m: String) { write(.info, m) }
    public static func debug(_ m: @autoclosure () -> String) {
        if enabled(.debug) { write(.debug, m()) }
    }
}
