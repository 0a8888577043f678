import Testing
@testable import WispCore

/// The core composes the sign-in; the HMAC is the agent's (mbedTLS), so here a recorder
/// stands in and shows exactly what would be signed, with which key and method. The
/// digests themselves are checked against independent vectors in WispAgentTests.
@Suite("Platform sign-in (the document's example)")
struct CredentialsTests {
    static let identity = PlatformIdentity(productKey: "pk", deviceName: "device", deviceSecret: "secret", clientId: "12345", signMethod: .hmacsha1)

    static func recorder(_ method: SignMethod, _ key: String, _ message: String) -> String {
        method.rawValue + "(" + key + "," + message + ")"
    }

    @Test func theDocumentsWorkedExample() {
        #expect(Self.identity.signContent(timestamp: "789") == "clientId12345deviceNamedeviceproductKeypktimestamp789")
        let ws = Self.identity.credentials(secureMode: 3, timestamp: "789", sign: Self.recorder)
        #expect(ws.clientId == "12345|securemode=3,signmethod=hmacsha1,timestamp=789|")
        #expect(ws.username == "device&pk")
        #expect(ws.password == "hmacsha1(secret,clientId12345deviceNamedeviceproductKeypktimestamp789)")
        let wss = Self.identity.credentials(secureMode: 2, timestamp: "789", sign: Self.recorder)
        #expect(wss.clientId == "12345|securemode=2,signmethod=hmacsha1,timestamp=789|")
    }

    @Test(arguments: SignMethod.allCases, [String?.some("789"), nil])
    func everyMethodNamesItselfAndSignsTheSortedContent(method: SignMethod, timestamp: String?) {
        var id = Self.identity
        id.signMethod = method
        let c = id.credentials(secureMode: 2, timestamp: timestamp, sign: Self.recorder)
        let ts = timestamp.map { ",timestamp=" + $0 } ?? ""
        #expect(c.clientId == "12345|securemode=2,signmethod=" + method.rawValue + ts + "|")
        #expect(c.password == method.rawValue + "(secret,clientId12345deviceNamedeviceproductKeypk" + (timestamp.map { "timestamp" + $0 } ?? "") + ")")
    }

    @Test func registrationSignsInWithTheProductSecret() {
        let r = DynamicRegistration(productKey: "pk", deviceName: "device", productSecret: "psecret", clientId: "12345", signMethod: .hmacsha256)
        let c = r.credentials(random: "ab12", sign: Self.recorder)
        #expect(c.clientId == "12345|securemode=2,authType=register,random=ab12,signmethod=hmacsha256|")
        #expect(c.username == "device&pk")
        #expect(c.password == "hmacsha256(psecret,deviceNamedeviceproductKeypkrandomab12)")
    }

    @Test(arguments: [
        (#"{"productKey":"pk","deviceName":"device","deviceSecret":"s3cr3t"}"#, "s3cr3t"),
        (#"{"productKey":"pk","deviceName":"other","deviceSecret":"s3cr3t"}"#, nil),
        (#"{"productKey":"pk","deviceName":"device"}"#, nil),
        (#"{"productKey":"pk","deviceName":"device","deviceSecret":"a b"}"#, nil),
        (#"{"productKey":"pk","deviceName":"device","deviceSecret":""}"#, nil),
        ("not json", nil),
    ] as [(String, String?)])
    func theRegistrationReplyMustNameThisDevice(reply: String, secret: String?) {
        let r = DynamicRegistration(productKey: "pk", deviceName: "device", productSecret: "p", clientId: "c", signMethod: .hmacsha256)
        let got = Array(reply.utf8).withUnsafeBytes { r.granted(fromReply: $0) }
        if let secret { #expect(got == .success(.secret(secret))) } else {
            guard case .failure = got else { Issue.record("accepted \(reply)"); return }
        }
    }

    @Test func registrationWithoutPreRegistrationGetsAToken() {
        let r = DynamicRegistration(productKey: "pk", deviceName: "device", productSecret: "psecret", clientId: "12345", signMethod: .hmacsha1,
                                    mode: .regnwl, instanceId: "iot-06z00abc")
        let c = r.credentials(random: "77", sign: Self.recorder)
        #expect(c.clientId == "12345|securemode=-2,authType=regnwl,random=77,signmethod=hmacsha1,instanceId=iot-06z00abc|")
        #expect(c.password == "hmacsha1(psecret,deviceNamedeviceproductKeypkrandom77)")
        #expect(r.topic == "/ext/regnwl")
        let reply = #"{"clientId":"pk.device|x","productKey":"pk","deviceName":"device","deviceToken":"tok"}"#
        guard case .failure = Array(reply.utf8).withUnsafeBytes({ r.granted(fromReply: $0) }) else { Issue.record("a | in the client id"); return }
        let ok = #"{"clientId":"pk.device","productKey":"pk","deviceName":"device","deviceToken":"tok-1"}"#
        #expect(Array(ok.utf8).withUnsafeBytes { r.granted(fromReply: $0) } == .success(.token(clientId: "pk.device", token: "tok-1")))
        let t = TokenIdentity(productKey: "pk", deviceName: "device", clientId: "pk.device", token: "tok-1").credentials
        #expect(t == MQTTCredentials(clientId: "pk.device|securemode=-2,authType=connwl|", username: "device&pk", password: "tok-1"))
    }
}
