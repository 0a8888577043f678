/// A key-file problem: the line (0 when the file as a whole is at fault) and what is wrong.
public struct KeyFileError: Error, Equatable, Sendable {
    public enum Problem: Equatable, Sendable {
        case notKeyValue
        case unknownKey(String)
        case duplicate(String, firstLine: Int)
        case badValue(String, allowed: String)
        case missing(String, why: String)
        case conflict(String, with: String)
        /// A remote config named a key only the key file may set.
        case notRemote(String)
    }

    public var line: Int
    public var problem: Problem

    public var message: String {
        let at = line > 0 ? "line \(line): " : line < 0 ? "remote config line \(-line): " : ""
        switch problem {
        case .notKeyValue: return at + "expected `key = value` (or a # comment)"
        case .unknownKey(let key):
            var known = ""
            for k in KeyFile.keys { known += (known.isEmpty ? "" : ", ") + k.name }
            return at + "unknown key '" + key + "'; known keys: " + known
        case .duplicate(let key, let first): return at + "'" + key + "' is already set on line \(first < 0 ? -first : first)"
        case .badValue(let key, let allowed): return at + "bad value for '" + key + "': expected " + allowed
        case .missing(let key, let why): return at + "'" + key + "' is missing: " + why
        case .conflict(let key, let other): return at + "'" + key + "' cannot be combined with " + other
        case .notRemote(let key): return at + "'" + key + "' may only be set in the key file (a remote config sets telemetry_interval and keepalive, retunes the key file's sensors and outputs, and adds thermal, hwmon, iio, w1, system and /sys or /proc file: sensors)"
        }
    }
}
