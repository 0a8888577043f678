/// The platform's OTA service, as far as wisp takes part so far: after every CONNACK a
/// device reports the version of its module on `/ota/device/inform/{pk}/{dn}`; the platform
/// counts an upgrade as done only when the new version is reported after it.
/// `{"id":"N","params":{"version":"0.1.0","module":"wisp"}}` (module `default` is the whole
/// device's firmware).
public enum OTAInform {
    public static func topic(productKey pk: String, deviceName dn: String) -> String {
        "/ota/device/inform/" + pk + "/" + dn
    }

    public static func write(id: UInt64, version: String, module: String, into json: inout JSONWriter) {
        json.reset()
        json.raw("{\"id\":\"")
        json.integer(Int64(truncatingIfNeeded: id))
        json.raw("\",\"params\":{\"version\":")
        json.string(version)
        json.raw(",\"module\":")
        json.string(module)
        json.raw("}}")
    }

    /// A module name as the console shows it: 1 to 32 of A-Z a-z 0-9 _ - .
    public static func isModuleName(_ s: String) -> Bool {
        let n = s.utf8.count
        guard n >= 1 && n <= 32 else { return false }
        for b in s.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            if !ok { return false }
        }
        return true
    }
}
