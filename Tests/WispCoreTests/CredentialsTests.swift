import Testing
@testable import WispCore

@Suite("Platform sign-in (the document's example and all three methods)")
struct CredentialsTests {
    static let identity = PlatformIdentity(productKey: "pk", deviceName: "device", deviceSecret: "secret", clientId: "12345", signMethod: .hmacsha1)

    @Test func theDocumentsWorkedExample() {
        #expect(Self.identity.signContent(timestamp: "789") == "clientId12345deviceNamedeviceproductKeypktimestamp789")
        let ws = Self.identity.credentials(secureMode: 3, timestamp: "789")
        #expect(ws.clientId == "12345|securemode=3,signmethod=hmacsha1,timestamp=789|")
        #expect(ws.username == "device&pk")
        #expect(ws.password == "fafd82a3d602b37fb0fa8b7892f24a477f851a14")
        #expect(Self.identity.credentials(secureMode: 2, timestamp: "789").clientId == "12345|securemode=2,signmethod=hmacsha1,timestamp=789|")
    }

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
    func everyMethod(method: SignMethod, timestamp: String?, password: String) {
        var id = Self.identity
        id.signMethod = method
        let c = id.credentials(secureMode: 2, timestamp: timestamp)
        #expect(c.password == password)
        let ts = timestamp.map { ",timestamp=" + $0 } ?? ""
        #expect(c.clientId == "12345|securemode=2,signmethod=" + method.rawValue + ts + "|")
    }
}
