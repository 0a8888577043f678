import CWispPlatform

/// systemd's notify protocol, spoken directly (no libsystemd): READY after the first
/// CONNACK, WATCHDOG pings from the loop at half the period systemd asks for.
public enum Systemd {
    /// `state` is a literal: no conversion, no allocation on the watchdog path. The error,
    /// when the notify socket refused it (nothing to do about it but say so in a debug line).
    @discardableResult
    public static func notify(_ state: StaticString) -> SystemError? {
        let r = state.withUTF8Buffer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count + 1) { wisp_sd_notify($0) }
        }
        return r < 0 ? SystemError(errno: -r) : nil
    }

    /// Milliseconds between WATCHDOG=1 pings, or nil when systemd wants none.
    public static var watchdogInterval: UInt64? {
        let usec = wisp_sd_watchdog_usec()
        return usec == 0 ? nil : max(usec / 2000, 1)
    }
}
