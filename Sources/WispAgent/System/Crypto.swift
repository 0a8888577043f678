import CWispPlatform
import WispCore

/// The crypto the core is handed (it links no C): HMAC for the sign-in, SHA-1 and base64
/// for the WebSocket accept value, over CWispPlatform's mbedTLS. Start-up and handshake only.
public enum Crypto {
    /// Lowercase hex of HMAC-`method`(key, message).
    public static func hmacHex(_ method: SignMethod, key: String, message: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var keyBytes = Array(key.utf8)
        let messageBytes = Array(message.utf8)
        let n = digest.withUnsafeMutableBufferPointer { out in
            messageBytes.withUnsafeBufferPointer { m in
                keyBytes.withUnsafeBufferPointer { k in
                    wisp_hmac(code(method), k.baseAddress, k.count, m.baseAddress, m.count, out.baseAddress, out.count)
                }
            }
        }
        // Do not leave the secret's bytes in a freed heap block longer than needed.
        for i in keyBytes.indices { keyBytes[i] = 0 }
        return Hex.encode(digest[0..<Int(max(n, 0))])
    }

    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        _ = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { b in wisp_sha1(b.baseAddress, b.count, o.baseAddress) }
        }
        return out
    }

    public static func base64(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: (bytes.count + 2) / 3 * 4 + 1)
        let n = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { b in wisp_base64_encode(b.baseAddress, b.count, o.baseAddress, o.count) }
        }
        return String(decoding: out[0..<Int(max(n, 0))], as: UTF8.self)
    }

    static func code(_ method: SignMethod) -> Int32 {
        switch method {
        case .hmacmd5: WISP_HMAC_MD5
        case .hmacsha1: WISP_HMAC_SHA1
        case .hmacsha256: WISP_HMAC_SHA256
        }
    }

    /// `base64(SHA-1(key + GUID))` (RFC 6455 §1.3): the accept value a server must return.
    public static func webSocketAccept(forKey key: String) -> String {
        base64(sha1(Array((key + WebSocketHandshake.guid).utf8)))
    }

    /// The file's digest, or nil when it cannot be read.
    static func digest(file path: String, _ method: DigestMethod) -> [UInt8]? {
        let fd = wisp_open_read(path)
        if fd < 0 { return nil }
        defer { _ = wisp_close(fd) }
        guard let d = wisp_digest_new(method == .md5 ? WISP_HMAC_MD5 : WISP_HMAC_SHA256) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { wisp_read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                wisp_digest_free(d)
                return nil
            }
            if n == 0 { break }
            _ = buffer.withUnsafeBufferPointer { wisp_digest_update(d, $0.baseAddress, Int(n)) }
        }
        var out = [UInt8](repeating: 0, count: 32)
        let n = wisp_digest_finish(d, &out, out.count)
        return n == method.size ? Array(out[0..<Int(n)]) : nil
    }
}
