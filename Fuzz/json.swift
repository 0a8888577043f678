// JSON reader: never traps or reads past its input; an accepted document's members are
// all inside it, and numbers re-written by JSONWriter read back the same. Device info's
// reply reader and value sanitiser ride along; so do the log switch and a reply's id, and
// the same bytes as a log line: kept in a small ring and written into a log post cut to
// fit, it is still valid JSON.
func fuzz_json(_ bytes: [UInt8]) {
    // Device info: any text sanitises to at most 128 bytes the platform takes.
    let sanitised = DeviceInfoUpdate.sanitise(String(decoding: bytes, as: UTF8.self))
    check(sanitised.utf8.count <= DeviceInfoUpdate.maxValue && sanitised.utf8.allSatisfy(DeviceInfoUpdate.allowed), "sanitised value")
    logLine(bytes)
    var reply = ByteBuffer(capacity: bytes.count + 1)
    for b in bytes { reply.put(b) }
    _ = PropertyPost.replyId(reply, 0..<reply.count)
    bytes.withUnsafeBytes { raw in
        _ = DeviceInfoUpdate.reply(raw)  // the device-info reply's reader over the same input
        guard let json = try? JSONReader(raw) else { return }
        _ = LogPost.switchMode(json)
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

func logLine(_ bytes: [UInt8]) {
    let line = String(decoding: bytes, as: UTF8.self)
    var ring = LogRing(capacity: 300)
    ring.append(.warning, module: UInt8(bytes.first ?? 0), at: 1, line.utf8)
    ring.append(.error, module: 0, at: 2, line.utf8)
    var w = JSONWriter(capacity: 200 + bytes.count % 300)
    LogPost.start(id: 1, into: &w)
    var e: LogRing.Entry? = ring.isEmpty ? nil : ring.oldest
    var first = true
    var i = 0
    while let entry = e {
        let mark = w.buffer.count
        var content = LogPost.Content(w, reserve: 40)
        LogPost.entry(first: first, time: 1_765_000_000_000, level: entry.level, module: entry.module, into: &w) { json in
            json.byte(UInt8(ascii: "\""))
            ring.content(entry) { content.add($0, into: &json) }
            json.byte(UInt8(ascii: "\""))
        }
        if !w.ok { w.rollBack(to: mark); break }
        first = false
        e = ring.entry(after: entry, index: i)
        i += 1
    }
    LogPost.finish(into: &w)
    guard w.ok, !first else { return }
    let text = w.buffer.bytes
    text.withUnsafeBytes { t in check((try? JSONReader(t)) != nil, "a log post is valid JSON") }
}
