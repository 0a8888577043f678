import Testing
@testable import WispCore

@Suite struct BoardSettingsTests {
    @Test func defaultsAllowNothing() throws {
        let s = try BoardSettings.parse("# nothing set\n\n").get()
        #expect(s == BoardSettings())
        #expect(!s.allowReboot && s.otaPublicKey == "/etc/wisp/ota.pub" && s.otaConfirmSeconds == 300)
    }

    @Test func everyKeyIsRead() throws {
        let s = try BoardSettings.parse("allow_reboot = true\n  ota_public_key = /opt/keys/fleet.pub  \nota_confirm_seconds = 45\nota_module = default\n").get()
        #expect(s.allowReboot && s.otaPublicKey == "/opt/keys/fleet.pub" && s.otaConfirmSeconds == 45 && s.otaModule == "default")
        #expect(s.lines == ["allow_reboot = true", "ota_public_key = /opt/keys/fleet.pub", "ota_confirm_seconds = 45", "ota_module = default", "remote_access = false"])
    }

    @Test func remoteAccessAndTunnelServices() throws {
        let s = try BoardSettings.parse("remote_access = true\ntunnel_service._SSH = 127.0.0.1:2222\ntunnel_service.HTTP = 127.0.0.1:8080\n").get()
        #expect(s.remoteAccess)
        #expect(s.tunnelPort(Array("_SSH".utf8)) == 2222, "_SSH moved by its line")
        #expect(s.tunnelPort(Array("HTTP".utf8)) == 8080)
        #expect(s.tunnelPort(Array("VNC".utf8)) == nil, "not declared: refused")
        #expect(s.lines.suffix(3) == ["remote_access = true", "tunnel_service._SSH = 127.0.0.1:2222", "tunnel_service.HTTP = 127.0.0.1:8080"])
        #expect(s.tunnelHosts.isEmpty && !s.tunnelHostAllowed("backend.aliyun.com"), "no tunnel host unless root names it")
        let hosts = try BoardSettings.parse("tunnel_hosts = platform.test 127.0.0.1 .Example.net\n").get()
        #expect(hosts.tunnelHostAllowed("platform.test") && hosts.tunnelHostAllowed("127.0.0.1") && hosts.tunnelHostAllowed("a.example.NET"))
        #expect(!hosts.tunnelHostAllowed("example.net") && !hosts.tunnelHostAllowed("evilexample.net") && !hosts.tunnelHostAllowed("platform.test."))
        #expect(hosts.lines.last == "tunnel_hosts = platform.test 127.0.0.1 .Example.net")
        let defaults = try BoardSettings.parse("").get()
        #expect(!defaults.remoteAccess, "off unless the board says so")
        #expect(defaults.tunnelPort(Array("_SSH".utf8)) == 22)
        #expect(defaults.tunnelPort(Array("_ssh".utf8)) == nil)
    }

    @Test(arguments: [
        ("remote_access = yes", "line 1: bad value for 'remote_access'"),
        ("tunnel_hosts = ", "bad value for 'tunnel_hosts'"),
        ("tunnel_hosts = a/b", "bad value for 'tunnel_hosts'"),
        ("tunnel_hosts = [::1]", "bad value for 'tunnel_hosts'"),
        ("tunnel_hosts = a b c d e f g h i", "bad value for 'tunnel_hosts'"),
        ("tunnel_hosts = host:443", "bad value for 'tunnel_hosts'"),
        ("tunnel_service.WEB = 10.0.0.2:80", "bad value for 'tunnel_service.WEB': expected 127.0.0.1:PORT"),
        ("tunnel_service.WEB = 0.0.0.0:80", "bad value for 'tunnel_service.WEB'"),
        ("tunnel_service.WEB = 127.0.0.1:0", "bad value for 'tunnel_service.WEB'"),
        ("tunnel_service.WEB = 127.0.0.1:65536", "bad value for 'tunnel_service.WEB'"),
        ("tunnel_service.WEB = 127.0.0.1", "bad value for 'tunnel_service.WEB'"),
        ("tunnel_service.a/b = 127.0.0.1:80", "bad value for 'tunnel_service.a/b'"),
        ("tunnel_service. = 127.0.0.1:80", "bad value for 'tunnel_service.'"),
        ("tunnel_service.A = 127.0.0.1:1\ntunnel_service.A = 127.0.0.1:2", "line 2: 'tunnel_service.A' is already set on line 1"),
        ((1...9).map { "tunnel_service.S\($0) = 127.0.0.1:\($0)" }.joined(separator: "\n"), "line 9: more than 8 tunnel_service lines"),
        ("allow_reboot = yes", "line 1: bad value for 'allow_reboot'"),
        ("ota_public_key = keys/ota.pub", "bad value for 'ota_public_key'"),
        ("ota_public_key = /etc/wisp/../../tmp/k", "bad value for 'ota_public_key'"),
        ("ota_public_key = /a b", "bad value for 'ota_public_key'"),
        ("ota_confirm_seconds = 4", "bad value for 'ota_confirm_seconds'"),
        ("ota_module = a/b", "bad value for 'ota_module'"),
        ("ota_confirm_seconds = 99999999999999999999", "bad value for 'ota_confirm_seconds'"),
        ("allow_reboot = false\nallow_reboot = true", "line 2: 'allow_reboot' is already set on line 1"),
        ("device_secret = s3cr3t", "unknown key 'device_secret'"),
        ("just words", "line 1: expected `key = value`"),
    ])
    func refusedWithTheLineAndWhy(text: String, expected: String) {
        guard case .failure(let e) = BoardSettings.parse(text) else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(e.message.contains(expected), "\(e.message)")
        #expect(!e.message.contains("s3cr3t"))
    }
}

@Suite struct SecurityCounterTests {
    func find(_ text: String) -> Int64? { Array(text.utf8).withUnsafeBytes { SecurityCounter.find(in: $0) } }

    @Test func theMarkerWithTenDigitsIsFound() {
        #expect(find("\u{7f}ELF...wisp-version=0.1.0\0wisp-ota-counter=0000000042\0rest") == 42)
        #expect(find("wisp-ota-counter=2147483647") == 2_147_483_647)
    }

    /// The marker as a bare string (the scanner's own, in another binary) or with the wrong
    /// number of digits is not a counter.
    @Test func anythingElseIsNot() {
        #expect(find("wisp-ota-counter=\0\0\0\0\0\0\0\0\0\0\0") == nil)
        #expect(find("wisp-ota-counter=123456789") == nil)
        #expect(find("wisp-ota-counter=12345678901") == nil)
        #expect(find("wisp-ota-counter=00000x0001") == nil)
        #expect(find("") == nil)
        #expect(find("wisp-ota-counter=x wisp-ota-counter=0000000007") == 7)
    }
}
