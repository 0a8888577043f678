/// The hash-based MACs the IoT Platform accepts for `signmethod`.
public enum SignMethod: String, Sendable, CaseIterable {
    case hmacmd5, hmacsha1, hmacsha256

    public init?(name: String) {
        guard let method = Self.allCases.first(where: { $0.rawValue.equals(name) }) else { return nil }
        self = method
    }
}

/// Signs the platform's content: lowercase hex of HMAC-`method`(key, message). The agent
/// passes mbedTLS's; the core has no crypto of its own.
public typealias HMACHex = (_ method: SignMethod, _ key: String, _ message: String) -> String
