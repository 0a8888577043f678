import Testing
@testable import WispCore

/// The secure tunnel's notify and proxy request_reply, and the request.
@Suite("Tunnel notify: connect, update, close, refusals, the token kept secret")
struct TunnelNotifyTests {
    static let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.secret-part_42"

    func parse(_ text: String) -> TunnelNotify {
        Array(text.utf8).withUnsafeBytes { TunnelNotify.parse($0) }
    }

    func endpoint(_ text: String) -> TunnelEndpoint? {
        if case .open(let e) = parse(text) { return e }
        return nil
    }

    static func notify(_ fields: String) -> String {
        #"{"id":"5","version":"1.0","data":{"# + fields + "}}"
    }

    static let connect = #""operation":"connect","tunnel_id":"t-9","host":"backend-iotx-remote-debug.aliyun.com","port":443,"#
        + #""path":"/tunnel/t-9","token":""# + token + #"","token_expire":3600,"future":{"x":[1]}"#

    @Test func aConnectIsAnEndpoint() {
        let e = endpoint(Self.notify(Self.connect))
        #expect(e == TunnelEndpoint(operation: .connect, tunnelId: "t-9", host: "backend-iotx-remote-debug.aliyun.com", port: 443,
                                    path: "/tunnel/t-9", token: TunnelToken(Array(Self.token.utf8)), tokenExpire: 3600))
    }

    @Test func aRequestReplyWithCode200AndStringNumbersIsAnUpdate() {
        let reply = #"{"code":200,"id":"1","message":"success","data":{"tunnel_id":"t-9","host":"10.0.0.2","port":"8443","#
            + #""path":"\/t","token":"abc","token_expire":"60"}}"#
        let e = endpoint(reply)
        #expect(e?.operation == .update && e?.port == 8443 && e?.path == "/t" && e?.tokenExpire == 60 && e?.host == "10.0.0.2")
    }

    @Test func fieldsAtTheTopLevelReadToo() {
        let e = endpoint(#"{"tunnel_id":"t","host":"[::1]","port":1,"path":"/","token":"k"}"#)
        #expect(e?.host == "[::1]" && e?.port == 1 && e?.tokenExpire == nil && e?.operation == .update)
    }

    @Test func aCloseNeedsOnlyTheTunnel() {
        #expect(parse(Self.notify(#""operation":"close","tunnel_id":"t-9","close_reason":"closed by user""#))
            == .close(tunnelId: "t-9", reason: "closed by user"))
        #expect(parse(Self.notify(#""operation":"close","tunnel_id":"t-9""#)) == .close(tunnelId: "t-9", reason: ""))
        #expect(parse(Self.notify(#""operation":"close","tunnel_id":"t","close_reason":"a\u0000b\nc""#))
            == .close(tunnelId: "t", reason: LogText.escape(Array(#"a\u0000b\nc"#.utf8), limit: 128)))
        guard case .close(_, let reason) = parse(Self.notify(#""operation":"close","tunnel_id":"t","close_reason":""# + String(repeating: "r", count: 500) + #"""#)) else {
            Issue.record("not a close"); return
        }
        #expect(reason == String(repeating: "r", count: 128) + "… (372 more bytes)")
        #expect(parse(Self.notify(#""operation":"close""#)) == .invalid("no usable tunnel_id (1 to 64 printable characters)"))
        #expect(parse(Self.notify(#""operation":"close","tunnel_id":"t","close_reason":[1]"#)) == .invalid("close_reason is not a string"))
    }

    /// Replaces one field of the connect notify.
    func with(_ field: String, _ value: String?) -> TunnelNotify {
        var parts = Self.connect.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        parts.removeAll { $0.hasPrefix("\"" + field + "\":") }
        if let value { parts.append("\"" + field + "\":" + value) }
        return parse(Self.notify(parts.joined(separator: ",")))
    }

    func invalid(_ n: TunnelNotify) -> String? {
        if case .invalid(let why) = n { return why }
        return nil
    }

    @Test func everyRefusal() {
        #expect(invalid(parse("")) != nil)
        #expect(invalid(parse("[]")) == "not a JSON object")
        #expect(invalid(parse(#"{"code":460,"data":{}}"#)) == "the platform says code 460")
        #expect(invalid(parse(#"{"code":"500","data":{}}"#)) == "the platform says code 500")
        #expect(invalid(parse(#"{"code":true}"#)) == "code is neither a string nor a number")
        // Found by the fuzzer: a code's text is escaped, never quoted raw.
        #expect(invalid(parse("{\"code\":\"S1\u{7F}x\"}")) == "the platform says code S1\\x7fx")
        #expect(invalid(parse(#"{"data":"x"}"#)) == "data is not an object")
        #expect(invalid(with("operation", #""open""#)) == "operation is not connect or close")
        #expect(invalid(with("operation", "1")) == "operation is not a string")
        for bad in [nil, #""""#, #""a b""#, "7", #""\#(String(repeating: "t", count: 65))""#, #""t\"""#] {
            #expect(invalid(with("tunnel_id", bad))?.hasPrefix("no usable tunnel_id") == true, "\(bad ?? "absent")")
        }
        for bad in [nil, #""""#, #""a b""#, #""h/x""#, #""user@h""#, #""h:443""#, #""-h""#, #"".h""#, #""[::1""#, #""[]""#, #""[g::1]""#,
                    #""h\u0000""#, #""é.com""#, "1", #""\#(String(repeating: "a", count: 254))""#] {
            #expect(invalid(with("host", bad))?.hasPrefix("no usable host") == true, "\(bad ?? "absent")")
        }
        for bad in [nil, "0", "65536", "-1", "44.3", #""""#, #""x""#, #""99999999999999999999""#, "true"] {
            #expect(invalid(with("port", bad)) == "no usable port (1 to 65535)", "\(bad ?? "absent")")
        }
        for bad in [nil, #""""#, #""t""#, #""/a b""#, #""/a#b""#, #""/\u00e9""#, #""/\\""#, "1", #""/\#(String(repeating: "p", count: 512))""#] {
            #expect(invalid(with("path", bad))?.hasPrefix("no usable path") == true, "\(bad ?? "absent")")
        }
        for bad in [nil, #""""#, #""a b""#, #""a\r\nX: y""#, #""é""#, "5", #""\#(String(repeating: "k", count: 1025))""#] {
            #expect(invalid(with("token", bad)) == "no usable token (1 to 1024 printable characters)", "\(bad ?? "absent")")
        }
        for bad in ["-1", "1.5", #""x""#, "4294967296", "[]"] {
            #expect(invalid(with("token_expire", bad)) == "token_expire is not a number of seconds", "\(bad)")
        }
        guard case .open(let e) = with("token_expire", "null") else { Issue.record("a null token_expire refused"); return }
        #expect(e.tokenExpire == nil)
    }

    @Test func theBoundsAreInclusive() {
        #expect(endpoint(Self.notify(#""tunnel_id":"\#(String(repeating: "t", count: 64))","host":"\#(String(repeating: "a", count: 253))","#
            + #""port":65535,"path":"/\#(String(repeating: "p", count: 511))","token":"\#(String(repeating: "k", count: 1024))","#
            + #""token_expire":4294967295"#)) != nil)
    }

    @Test func theTokenIsNeverPrinted() {
        let n = parse(Self.notify(Self.connect))
        guard case .open(let e) = n else { Issue.record("not an endpoint"); return }
        for text in [e.description, "\(e)", String(describing: e), String(reflecting: e), "\(n)", String(reflecting: n), "\(e.token)"] {
            #expect(!text.contains("secret-part"), "\(text)")
        }
        #expect(e.description == "tunnel t-9 at wss://backend-iotx-remote-debug.aliyun.com:443/tunnel/t-9, token for 3600 s")
        #expect(e.token.description == "(a token of \(Self.token.utf8.count) bytes)")
        #expect(e.token.withBytes { Array($0) } == Array(Self.token.utf8))
        // Refusals never quote the token, even a malformed one.
        for bad in [#""secret-part x""#, #""secret-part\u0001""#] {
            #expect(invalid(with("token", bad))?.contains("secret") == false)
        }
    }

    @Test func hostsAndPaths() {
        for good in ["a", "a.b-c.example", "xn--bcher-kva.example", "10.0.0.1", "::1", "[::1]", "fe80::1:2", "[2001:db8::7]", "a_b.c"] {
            #expect(TunnelNotify.isHost(good), "\(good)")
        }
        for bad in ["", "a b", "a/b", "a:1", "-a", ".a", "a-", "[a", "[]", "a@b", "a?b", "a#b", "::g"] {
            #expect(!TunnelNotify.isHost(bad), "\(bad)")
        }
        #expect(TunnelNotify.isPath("/a/b?c=d&e=%20"))
        #expect(!TunnelNotify.isPath("a") && !TunnelNotify.isPath("/a b") && !TunnelNotify.isPath(""))
    }

    @Test func theRequest() {
        var w = JSONWriter(capacity: 64)
        TunnelRequest.write(id: 42, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"id":"42","params":{}}"#)
    }

    /// The tunnel's topics: platform devices only, subscribed apart (only when the board
    /// allows remote access), and told apart from the rest.
    @Test func theTopicsArePlatformOnlyAndSubscribedApart() {
        let t = AlinkTopics(productKey: "pk", deviceName: "dn")
        #expect(t.tunnelNotify == "/sys/pk/dn/secure_tunnel/notify")
        #expect(t.tunnelRequest == "/sys/pk/dn/secure_tunnel/proxy/request")
        #expect(t.tunnelRequestReply == "/sys/pk/dn/secure_tunnel/proxy/request_reply")
        #expect(!t.subscriptions.contains { $0.topic.contains("secure_tunnel") })
        #expect(t.tunnelSubscriptions.map(\.topic) == ["/sys/pk/dn/secure_tunnel/notify", "/sys/pk/dn/secure_tunnel/proxy/request_reply"])
        #expect(t.tunnelSubscriptions.first?.qos == .atLeastOnce)
        let plain = AlinkTopics(plainClientId: "c")
        #expect(plain.tunnelNotify == nil && plain.tunnelRequest == nil && plain.tunnelRequestReply == nil)
        #expect(plain.tunnelSubscriptions.isEmpty)
        for (topic, kind) in [(t.tunnelNotify!, AlinkTopics.Inbound.tunnelNotify), (t.tunnelRequestReply!, .tunnelReply),
                              (t.tunnelRequest!, .other), ("/sys/pk/other/secure_tunnel/notify", .other)] {
            var b = ByteBuffer(capacity: 64)
            b.put(utf8: topic)
            #expect(t.classify(b, 0..<b.count) == kind, "\(topic)")
        }
    }
}
