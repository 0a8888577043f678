import CWispPlatform

/// The signal descriptor (signalfd: SIGTERM, SIGINT, SIGHUP blocked and read as data).
public enum Signals {
    /// Calls `body` with each pending signal's number, until none is left.
    public static func drain(_ fd: Int32, _ body: (Int32) -> Void) {
        while true {
            let signal = wisp_signal_next(fd)
            if signal <= 0 { return }
            body(signal)
        }
    }
}
