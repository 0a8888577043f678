// JSON reader: never traps or reads past its input; an accepted document's members are
// all inside it, and numbers re-written by JSONWriter read back the same. Device info's
// reply reader and value sanitiser ride along.
func fuzz_json(_ bytes: [UInt8]) {
    // Device info: any text sanitises to at most 128 bytes the platform takes.
    let sanitised = DeviceInfoUpdate.sanitise(String(decoding: bytes, as: UTF8.self))
    check(sanitised.utf8.count <= DeviceInfoUpdate.maxValue && sanitised.utf8.allSatisfy(DeviceInfoUpdate.allowed), "sanitised value")
    bytes.withUnsafeBytes { raw in
        _ = DeviceInfoUpdate.reply(raw)  // the device-info reply's reader over the same input
        guard let json = try? JSONReader(raw) else { return }
        for (key, value) in json.members() {
            check(key.upperBound <= raw.count, "key inside input")
            if case .number(let scaled, let decimals) = value {
                var w = JSONWriter(capacity: 64)
                w.fixed(scaled, decimals: decimals)
                let text = w.buffer.bytes
                text.withUnsafeBytes { t in
                    guard let again = try? JSONReader(t), case .number(let s2, let d2) = again.root else {
                        check(false, "written number reads back"); return
                    }
                    var a = scaled, b = s2
                    for _ in d2..<max(d2, decimals) { b *= 10 }
                    for _ in decimals..<max(d2, decimals) { a *= 10 }
                    check(a == b, "number round trip")
                }
            }
        }
        if case .object(let params)? = json.member("params") {
            for (k, _) in json.members(of: params) { check(k.upperBound <= raw.count, "param key inside input") }
        }
    }
}
