/// A log line's level, with its syslog priority (journald's `<N>` prefix).
public enum Severity: Int, Sendable {
    case error = 3, warning = 4, info = 6, debug = 7

    /// The name in wisp's own log and in the key file.
    public var name: String {
        switch self {
        case .error: "error"
        case .warning: "warning"
        case .info: "info"
        case .debug: "debug"
        }
    }

    public init?(name: String) {
        if name.equals("error") { self = .error } else if name.equals("warning") { self = .warning }
        else if name.equals("info") { self = .info } else if name.equals("debug") { self = .debug } else { return nil }
    }

    /// At least as severe as `threshold`.
    public func atLeast(_ threshold: Severity) -> Bool { rawValue <= threshold.rawValue }
}
