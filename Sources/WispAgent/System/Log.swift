import WispCore

/// One line per event on stderr, with a level. Under systemd (JOURNAL_STREAM set) each
/// line starts with the syslog priority `<N>` so journald files it at the right level;
/// journald adds the time. Nothing that reaches here may hold a secret.
///
/// A value, made once by the CLI and handed to whatever logs: no global state, and a test
/// can make its own.
public struct Log: Sendable {
    public typealias Level = Severity

    public let threshold: Level
    /// Prefix each line with its syslog priority (stderr is journald's stream).
    let journal: Bool
    /// Lines for the console (platform devices): kept there too, at its own threshold.
    public let sink: LogSink?

    public init(threshold: Level = .info, journal: Bool = false, sink: LogSink? = nil) {
        self.threshold = threshold
        self.journal = journal
        self.sink = sink
    }

    /// This log, its lines kept for the console in `sink` too.
    public func uploading(to sink: LogSink?) -> Log { Log(threshold: threshold, journal: journal, sink: sink) }

    /// The process's log: info and up (debug too when `verbose`), the priority prefix when
    /// systemd connected stderr to the journal.
    public static func standard(verbose: Bool = false) -> Log {
        Log(threshold: verbose ? .debug : .info, journal: System.environment("JOURNAL_STREAM") != nil)
    }

    public func enabled(_ level: Level) -> Bool { level.rawValue <= threshold.rawValue }

    /// Writes a line (and keeps it for the console unless `local`: a line about the
    /// console's own log posts, which would otherwise feed itself).
    public func write(_ level: Level, _ message: String, module: UInt8 = 0, local: Bool = false) {
        if !local, let sink { sink.keep(level, module: module, message) }
        guard enabled(level) else { return }
        let prefix = journal ? "<\(level.rawValue)>" : ""
        System.write(prefix + level.name + ": " + message + "\n", to: 2)
    }

    public func error(_ m: String) { write(.error, m) }
    public func warning(_ m: String) { write(.warning, m) }
    public func info(_ m: String) { write(.info, m) }
    /// `local`: printed, never kept for the console (a line every post's own traffic causes,
    /// which would otherwise feed the next post).
    public func debug(_ m: @autoclosure () -> String, local: Bool = false) {
        if enabled(.debug) || (!local && sink.map({ Severity.debug.atLeast($0.threshold) }) == true) { write(.debug, m(), local: local) }
    }
}
