/// Bytes from the network made safe for one log line.
///
/// Under systemd each stderr line may start with `<N>`, the priority journald files it at:
/// a raw newline in a topic or payload would let a peer forge an entry at any priority. So
/// printable ASCII stays as it is, `\` becomes `\\`, every other byte becomes `\xNN`, and at
/// most `limit` bytes are shown, followed by how many were left out.
public enum LogText {
    public static func escape(_ bytes: [UInt8], limit: Int = 200) -> String { escape(bytes[...], limit: limit) }

    /// One body for every caller (a generic one was specialised per collection type).
    public static func escape(_ bytes: ArraySlice<UInt8>, limit: Int = 200) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(min(bytes.count, limit) + 16)
        var shown = 0
        for b in bytes {
            if shown == limit { break }
            shown += 1
            if b == UInt8(ascii: "\\") {
                out.append(b)
                out.append(b)
            } else if b >= 0x20 && b < 0x7F {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "x"))
                out.append(Hex.digit(b >> 4))
                out.append(Hex.digit(b & 0x0F))
            }
        }
        var text = String(decoding: out, as: UTF8.self)
        let rest = bytes.count - shown
        if rest > 0 { text += "… (\(rest) more bytes)" }
        return text
    }
}
