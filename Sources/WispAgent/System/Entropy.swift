import CWispPlatform
import WispCore

/// The kernel CSPRNG (getrandom), for WebSocket keys and masks and the backoff seed.
/// A failure is fatal: wisp never masks with a predictable or zero key.
public enum Entropy {
    /// Fills `buffer`, or ends the process (exit 71) with a line that says why.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        let r = wisp_random(base.assumingMemoryBound(to: UInt8.self), buffer.count)
        if r < 0 {
            Log.standard().error("the kernel's random generator failed (getrandom: " + SystemError(errno: -r).message
                      + "); wisp cannot make unpredictable WebSocket keys and masks and stops")
            System.exit(.osError)
        }
    }

    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    /// A fresh `Sec-WebSocket-Key` (RFC 6455 §4.1: 16 random bytes in base64) and the
    /// accept value the server must return for it.
    public static func webSocketKey() -> WebSocketKey {
        let key = Crypto.base64(bytes(16))
        return WebSocketKey(key: key, accept: Crypto.webSocketAccept(forKey: key))
    }
}
