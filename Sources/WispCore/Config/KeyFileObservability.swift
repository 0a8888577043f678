extension KeyFile {
    /// What the console sees of the device: the log level that goes up, the health
    /// interval, the status file and the tags.
    static func observability(_ config: inout DeviceConfig, values: Entries, bad: (String) -> KeyFileError) throws(KeyFileError) {
        if let v = values["log_upload_level"]?.value {
            guard let level = Severity(name: v) else { throw bad("log_upload_level") }
            config.logUploadLevel = level
        }
        if let v = values["health_interval"]?.value {
            guard let n = parseInt(v, in: 0...DeviceConfig.healthIntervalRange.upperBound),
                  n == 0 || DeviceConfig.healthIntervalRange.contains(n) else { throw bad("health_interval") }
            config.healthInterval = n
        }
        if let v = values["status_file"]?.value {
            guard v.startsWith("/"), !v.utf8.contains(0), !v.utf8.contains(UInt8(ascii: "\n")) else { throw bad("status_file") }
            config.statusFile = v
        }
        for e in values.items where e.key.startsWith("tag.") {
            let name = String(e.key.utf8.dropFirst(4))!
            guard isTagName(name) else {
                throw KeyFileError(line: e.line, problem: .badValue(e.key, allowed: "a tag name after the dot: a letter, then letters, digits or _, at most 30 in all"))
            }
            guard !e.value.isEmpty, e.value.utf8.count <= 512 else {
                throw KeyFileError(line: e.line, problem: .badValue(e.key, allowed: "a value of 1 to 128 characters"))
            }
            guard config.tags.count < DeviceConfig.maxTags else {
                throw KeyFileError(line: e.line, problem: .badValue(e.key, allowed: "at most \(DeviceConfig.maxTags) tag. lines"))
            }
            config.tags.append(DeviceConfig.Tag(name: name, value: e.value))
        }
    }

    /// A device-info key: a letter, then letters, digits or `_`; at most 30.
    public static func isTagName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= 30, (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7A else { return false }
        return b.allSatisfy { c in (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || c == UInt8(ascii: "_") }
    }
}
