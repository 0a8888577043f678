import CWispPlatform
import Testing
import WispAgent
import WispCore

/// mbedTLS's HMAC, SHA-1 and base64 as the agent hands them to the core, against vectors
/// computed elsewhere: the platform's worked example (Python `hmac`), RFC 6455 §1.3.
@Suite("Crypto through mbedTLS")
struct CryptoTests {
    static let identity = PlatformIdentity(productKey: "pk", deviceName: "device", deviceSecret: "secret", clientId: "12345", signMethod: .hmacsha1)

    /// Expected digests computed independently (Python `hmac`) over the same content.
    static let methods: [(SignMethod, String?, String)] = [
        (.hmacmd5, "789", "14b198324fe55e1d3c88f2e705e201ee"),
        (.hmacsha1, "789", "fafd82a3d602b37fb0fa8b7892f24a477f851a14"),
        (.hmacsha256, "789", "6074a46a91b1ebb2cc4ea42790ad0e80202c9843859fc292e57c4eb19fad9e57"),
        (.hmacmd5, nil, "2ce7304ec0ddd548eb1492d65ac0b334"),
        (.hmacsha1, nil, "3504e4df7ce4766d30f796ee973c9ce7fc5425cb"),
        (.hmacsha256, nil, "c8cb3dcb7159682438e5fd9a9c34f398e41bb8edb6f222795e307bafee151090"),
    ]

    @Test(arguments: methods)
    func platformSignatureForEveryMethod(method: SignMethod, timestamp: String?, password: String) {
        var id = Self.identity
        id.signMethod = method
        #expect(id.credentials(secureMode: 2, timestamp: timestamp, sign: Crypto.hmacHex).password == password)
    }

    /// Dynamic registration's signature, against Python `hmac` over the same content.
    @Test(arguments: [
        (SignMethod.hmacsha256, "a1TestProd", "sensor-9", "product-secret-xyz", "1fe46b8394283101",
         "4dffbcf06579b4832ce897369574002b9423be2cfb812e5aa87fe22fa006a80b"),
        (.hmacmd5, "a1ExAmPlE", "device-01", "sBqyWkJbBexampleXYZ", "123", "681ae4e69eac3f5a652fbc1349383c80"),
    ])
    func registrationSignature(method: SignMethod, pk: String, dn: String, secret: String, random: String, password: String) {
        let r = DynamicRegistration(productKey: pk, deviceName: dn, productSecret: secret, clientId: "c", signMethod: method)
        #expect(r.credentials(random: random, sign: Crypto.hmacHex).password == password)
    }

    @Test func webSocketAcceptForTheRFCExample() {
        #expect(Crypto.webSocketAccept(forKey: WebSocketKey.rfcExample.key) == WebSocketKey.rfcExample.accept)
    }

    @Test func freshWebSocketKeysAreSixteenRandomBytesAndCarryTheirAccept() {
        let a = Entropy.webSocketKey(), b = Entropy.webSocketKey()
        #expect(a.key.utf8.count == 24 && a.key.hasSuffix("=="))
        #expect(a.key != b.key)
        #expect(a.accept == Crypto.webSocketAccept(forKey: a.key))
    }
}

/// What the TLS handshake found about the server's certificate, beside what wisp verifies
/// again against the roots that issued it (mbedTLS 2.28's MBEDTLS_X509_BADCERT_* bits).
@Suite("TLS verification flags")
struct TLSFlagTests {
    static let expired: UInt32 = 0x01, cnMismatch: UInt32 = 0x04, notTrusted: UInt32 = 0x08, badMD: UInt32 = 0x4000
    static let badKey: UInt32 = 0x10000, keyUsage: UInt32 = 0x0800, extKeyUsage: UInt32 = 0x1000, nsCertType: UInt32 = 0x2000

    @Test func whatTheChainCheckDecidesAgainIsClearedTheRestCounts() {
        // The handshake ran without the roots: "not trusted" and the chain's details (its
        // algorithms and keys, the leaf's curve among them) are decided again; key usage is not.
        #expect(wisp_tls_handshake_flags_kept(Self.notTrusted | Self.expired | Self.cnMismatch | Self.badMD | Self.badKey) == 0)
        #expect(wisp_tls_handshake_flags_kept(Self.notTrusted | 0x0100_0000) == 0x0100_0000, "a flag a later mbedTLS adds still counts")
        #expect(wisp_tls_handshake_flags_kept(Self.keyUsage | Self.extKeyUsage | Self.nsCertType) == Self.keyUsage | Self.extKeyUsage | Self.nsCertType)
    }
}
