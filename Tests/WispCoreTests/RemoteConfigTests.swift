import Testing
@testable import WispCore

/// Remote config pushes and `thing.config.get` replies (`ConfigFile`).
@Suite("Remote config messages")
struct RemoteConfigTests {
    static let sha = String(repeating: "ab", count: 32)
    static let md5 = String(repeating: "0f", count: 16)

    func configOffer(_ text: String) -> ConfigFile.Offer {
        Array(text.utf8).withUnsafeBytes { ConfigFile.parse(try! JSONReader($0)) }
    }

    @Test func configPushesAndGetReplies() {
        let push = """
            {"id":"123","version":"1.0","method":"thing.config.push","params":{"configId":"abc_1","configSize":40,\
            "sign":"\(RemoteConfigTests.sha)","signMethod":"Sha256","url":"https://h/c?x=1","getType":"file"}}
            """
        #expect(configOffer(push) == .file(ConfigFile(configId: "abc_1", size: 40, sha256: hex(RemoteConfigTests.sha), url: "https://h/c?x=1")))
        #expect(Array(push.utf8).withUnsafeBytes { ConfigFile.requestId(try! JSONReader($0)) } == "123")
        #expect(configOffer(#"{"code":200,"data":{},"id":"1"}"#) == .nothing)
        for bad in [#"{"params":{"configId":"a/b","configSize":1,"sign":"x","signMethod":"Sha256","url":"https://h/c"}}"#,
                    #"{"params":{"configId":"a","configSize":20000,"sign":"x","signMethod":"Sha256","url":"https://h/c"}}"#,
                    #"{"params":{"configId":"a","configSize":10,"sign":"\#(RemoteConfigTests.md5)","signMethod":"Md5","url":"https://h/c"}}"#,
                    #"{"params":{"configId":"a","configSize":10,"sign":"\#(RemoteConfigTests.sha)","signMethod":"Sha256","url":"https://h/c","getType":"content"}}"#] {
            guard case .refused = configOffer(bad) else { Issue.record("accepted \(bad)"); continue }
        }
        var w = JSONWriter(capacity: 256)
        ConfigFile.writePushReply(code: 460, id: "123", message: "line 2: bad", into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"code":460,"data":{},"id":"123","message":"line 2: bad","version":"1.0"}"#)
    }
}
