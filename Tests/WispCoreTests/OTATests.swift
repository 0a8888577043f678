import Testing
@testable import WispCore

/// The OTA messages as the platform's documentation and C SDK show them, and the
/// package URLs they carry.
@Suite("OTA: offers, progress, firmware.get, package URLs")
struct OTATests {
    static let sha = String(repeating: "ab", count: 32)
    static let md5 = String(repeating: "0f", count: 16)

    func offer(_ text: String) -> OTAOffer {
        Array(text.utf8).withUnsafeBytes { OTAOffer.parse($0) }
    }

    @Test func anUpgradePushIsAPackage() {
        let push = """
            {"code":"1000","message":"success","id":2,"data":{"size":4096,"version":"0.2.0",\
            "url":"https://ota.example.com/ota/a1/wisp?Expires=1&Signature=x%3D","sign":"\(OTATests.sha)",\
            "signMethod":"SHA256","md5":"\(OTATests.md5)","module":"wisp","isDiff":0,"extData":{"k":"v"}}}
            """
        #expect(offer(push) == .package(OTAPackage(module: "wisp", version: "0.2.0", size: 4096,
                                                   url: "https://ota.example.com/ota/a1/wisp?Expires=1&Signature=x%3D",
                                                   method: .sha256, digest: hex(OTATests.sha))))
    }

    @Test(arguments: ["Md5", "MD5", "md5"])
    func md5InAnySpellingUsesTheMd5Digest(method: String) {
        let reply = """
            {"code":200,"data":{"size":10,"version":"1.0.1","url":"https:\\/\\/h\\/f.bin","signMethod":"\(method)",\
            "md5":"\(OTATests.md5.uppercased())"},"id":"7","message":"success","method":"thing.ota.firmware.get","version":"1.0"}
            """
        guard case .package(let p) = offer(reply) else { Issue.record("not a package"); return }
        #expect(p.method == .md5 && p.digest == hex(OTATests.md5) && p.url == "https://h/f.bin")
        #expect(p.module == "default", "no module: the console's default module")
    }

    @Test func anEmptyReplyMeansNothingPending() {
        #expect(offer(#"{"code":200,"data":{},"id":"1","message":"success"}"#) == .nothing)
    }

    @Test(arguments: [
        (#"{"data":{"module":"wisp","files":[{"fileName":"a"}],"version":"2"}}"#, "multi-file"),
        (#"{"data":{"module":"wisp","isDiff":1,"version":"2","size":1,"url":"https://h/x"}}"#, "differential"),
        (#"{"data":{"module":"wisp","version":"two words","size":1,"url":"https://h/x"}}"#, "version"),
        (#"{"data":{"module":"wisp","version":"2","url":"https://h/x"}}"#, "size"),
        (#"{"data":{"module":"wisp","version":"2","size":1,"url":"https://h/\u0001"}}"#, "url"),
        (#"{"data":{"module":"wisp","version":"2","size":1,"url":"https://h/x","signMethod":"SHA1","sign":"00"}}"#, "SHA1"),
        (#"{"data":{"module":"wisp","version":"2","size":1,"url":"https://h/x","signMethod":"SHA256","sign":"abcd"}}"#, "64 hex"),
    ])
    func unusableOffersAreRefusedWithAReason(text: String, reason: String) {
        guard case .refused(let module, let why) = offer(text) else { Issue.record("not refused: \(text)"); return }
        #expect(module == "wisp")
        #expect(why.contains(reason), "\(why)")
    }

    @Test(arguments: [#"{"code":"9112","data":{"version":"2"}}"#, #"{"code":200}"#, "{not json", #"{"code":[1],"data":{}}"#])
    func failuresAndMalformedMessagesAreNoOffer(text: String) {
        guard case .malformed = offer(text) else { Issue.record("accepted: \(text)"); return }
    }

    @Test func progressAndFirmwareGetAreTheSDKsMessages() {
        var json = JSONWriter(capacity: 512)
        OTAProgress.write(id: 12, step: -3, desc: "bad \"digest\"", module: "wisp", into: &json)
        #expect(String(decoding: json.buffer.bytes, as: UTF8.self)
                == #"{"id":"12","params":{"step":"-3","desc":"bad \"digest\"","module":"wisp"}}"#)
        FirmwareGet.write(id: 3, module: "wisp", into: &json)
        #expect(String(decoding: json.buffer.bytes, as: UTF8.self)
                == #"{"id":"3","version":"1.0","params":{"module":"wisp"},"method":"thing.ota.firmware.get"}"#)
    }

    @Test func packageURLs() {
        let u = Endpoint(parsing: "https://ota.example.com/ota/x.bin?Expires=1&Sig=a%2F", allowing: [.https, .http])
        #expect(u == Endpoint(scheme: .https, host: "ota.example.com", port: 443, path: "/ota/x.bin?Expires=1&Sig=a%2F"))
        #expect(u?.isTLS == true)
        #expect(Endpoint(parsing: "http://10.0.0.2:8080/f", allowing: [.https, .http])?.isTLS == false)
        #expect(Endpoint(parsing: "ftp://h/f", allowing: [.https, .http]) == nil)
        #expect(Endpoint(parsing: "mqtt://h/f") == nil, "MQTT endpoints still have no path")
    }
}
