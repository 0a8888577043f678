import Testing
@testable import WispCore

@Suite("Key file")
struct KeyFileTests {
    static let full = """
        # wisp device key
        endpoint = wss://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:443
        product_key = a1B2c3D4e5F
        device_name = boiler-7
        device_secret = s3cr3t-DO-NOT-LEAK
        client_id = b8:27:eb:01:02:03
        sign_method = hmacsha1
        sign_timestamp = 2524608000000
        keepalive = 600
        ca_file = /etc/wisp/root.pem
        telemetry_interval = 30

        """

    @Test func parsesAFullPlatformFile() throws {
        let c = try KeyFile.parse(Self.full)
        #expect(c.endpoint == Endpoint(scheme: .wss, host: "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", port: 443, path: "/mqtt"))
        #expect(c.identity == .platform(productKey: "a1B2c3D4e5F", deviceName: "boiler-7", deviceSecret: "s3cr3t-DO-NOT-LEAK", signMethod: .hmacsha1, timestamp: .fixed("2524608000000")))
        #expect(c.clientId == "b8:27:eb:01:02:03")
        #expect(c.keepAlive == 600)
        #expect(c.caFile == "/etc/wisp/root.pem")
        #expect(c.telemetryInterval == 30)
        #expect(!c.describe(effectiveClientId: "x").contains("s3cr3t"))
    }

    @Test func defaults() throws {
        let c = try KeyFile.parse("endpoint = ws://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n")
        #expect(c.endpoint.port == 80 && c.endpoint.path == "/mqtt")
        #expect(c.identity == .platform(productKey: "p", deviceName: "d", deviceSecret: "s", signMethod: .hmacsha256, timestamp: .now))
        #expect(c.keepAlive == 300 && c.telemetryInterval == 60 && c.clientId == nil && !c.tlsInsecure)
    }

    @Test func otaModule() throws {
        let base = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
        #expect(try KeyFile.parse(base).otaModule == "wisp")
        #expect(try KeyFile.parse(base + "ota_module = default\n").otaModule == "default")
        #expect(try KeyFile.parse(base + "ota_module = default\n").describe(effectiveClientId: "x").contains("ota_module = default"))
        #expect(throws: KeyFileError.self) { try KeyFile.parse(base + "ota_module = two words\n") }
    }

    @Test func productSecretMeansDynamicRegistration() throws {
        let c = try KeyFile.parse("endpoint = wss://h\nproduct_key = p\ndevice_name = d\nproduct_secret = ps\n")
        #expect(c.identity == .unregistered(productKey: "p", deviceName: "d", productSecret: "ps", signMethod: .hmacsha256, timestamp: .now))
        #expect(c.productKey == "p" && c.deviceName == "d")
        let text = c.describe(effectiveClientId: "x")
        #expect(text.contains("product_secret = (set, redacted)") && !text.contains("= ps\n"))
        #expect(c.registered(deviceSecret: "ds").identity == .platform(productKey: "p", deviceName: "d", deviceSecret: "ds", signMethod: .hmacsha256, timestamp: .now))
        let fleet = try KeyFile.parse("endpoint = wss://h\nproduct_key = p\nproduct_secret = ps\nregister_mode = regnwl\n")
        #expect(fleet.deviceNameFromBoard && fleet.registerMode == .regnwl)
        #expect(fleet.named("pi-1").deviceName == "pi-1" && !fleet.named("pi-1").deviceNameFromBoard)
        for bad in ["endpoint = wss://h\nproduct_key = p\ndevice_name = d\nproduct_secret = ps\ndevice_secret = s\n",
                    "endpoint = wss://h\nproduct_key = p\ndevice_secret = s\n",
                    "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\nregister_mode = regnwl\n",
                    "endpoint = ws://h\nproduct_key = p\ndevice_name = d\nproduct_secret = ps\n"] {
            #expect(throws: KeyFileError.self) { try KeyFile.parse(bad) }
        }
    }

    @Test func aRemoteConfigSetsWhatItNamesOverTheKeyFile() throws {
        let file = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\ntelemetry_interval = 60\nsensor.a = system:uptime\nsensor.b = system:load\n"
        let c = try KeyFile.parse(file, remote: "# configId = x\ntelemetry_interval = 5\nsensor.b = system:mem_available\nsensor.c = system:disk_free\n")
        #expect(c.telemetryInterval == 5)
        #expect(c.sensors.map(\.identifier) == ["a", "b", "c"])
        #expect(c.sensors[1].describe == "system:mem_available")
        #expect(c.identity == .platform(productKey: "p", deviceName: "d", deviceSecret: "s", signMethod: .hmacsha256, timestamp: .now))
        expectRefused(file, [
            ("device_secret = stolen\n", "remote config line 1: 'device_secret' may only be set in the key file"),
            ("endpoint = wss://evil\n", "remote config line 1: 'endpoint' may only be set in the key file"),
            ("telemetry_interval = 5\ntelemetry_interval = 6\n", "remote config line 2: 'telemetry_interval' is already set on line 1"),
            ("# c\nsensor.x = nonsense:\n", "remote config line 2: bad value for 'sensor.x'"),
            ("telemetry_interval = 0\n", "remote config line 1: bad value for 'telemetry_interval'"),
        ])
    }

    @Test func aRemoteConfigReachesNoFurtherThanTheKeyFile() throws {
        let file = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
            + "sensor.home = file:/home/pi/level:2\nsensor.button = gpio:gpiochip0:18\noutput.relay = gpio:gpiochip0:17\n"
        // Retuning what the key file declares, and board kinds and kernel files added, is allowed.
        let ok = try KeyFile.parse(file, remote: "sensor.home = file:/home/pi/level:2 every=5\nsensor.button = gpio:gpiochip0:18 every=2\n"
                                   + "output.relay = gpio:gpiochip0:17\nsensor.t = thermal:cpu-thermal\nsensor.h = hwmon:lm75:temp1\n"
                                   + "sensor.u = file:/proc/uptime\nsensor.z = file:/sys/class/thermal/thermal_zone0/temp:0.001\n")
        #expect(ok.sensors.first { $0.identifier == "home" }?.every == 5)
        #expect(ok.sensors.first { $0.identifier == "home" }?.confined == false, "the key file's own file: sensor")
        #expect(ok.sensors.first { $0.identifier == "u" }?.confined == true && ok.sensors.first { $0.identifier == "z" }?.confined == true)
        #expect(ok.outputs.count == 1)
        expectRefused(file, [
            ("sensor.x = file:/etc/shadow\n", "remote config line 1: 'sensor.x = file:/etc/shadow (a file outside /sys and /proc)' may only be set in the key file"),
            ("# a\nsensor.x = file:/sys/../etc/shadow\n", "remote config line 2: 'sensor.x = file:/sys/../etc/shadow (a path with"),
            ("sensor.x = file:/proc//self\n", "remote config line 1: 'sensor.x"),
            ("sensor.home = file:/home/pi/other\n", "remote config line 1: 'sensor.home = file:/home/pi/other (a file outside"),
            ("output.reset = gpio:gpiochip0:4\n", "remote config line 1: 'output.reset (an output the key file does not declare"),
            ("output.relay = gpio:gpiochip0:27\n", "remote config line 1: 'output.relay (an output"),
            ("sensor.b2 = gpio:gpiochip0:27\n", "remote config line 1: 'sensor.b2 = gpio:gpiochip0:27 (a GPIO line the key file does not declare)'"),
            ("sensor.h = hwmon:lm75:../../../../home/pi/x\n", "remote config line 1: 'sensor.h = hwmon:lm75:../../../../home/pi/x (names, not paths)'"),
            ("sensor.t = thermal:..\n", "remote config line 1: 'sensor.t"),
            ("sensor.relay = system:load\n", "remote config line 1: 'sensor.relay (the key file declares relay as an output)'"),
        ])
    }

    /// Each fragment over `file` is refused with an error that starts with its words.
    func expectRefused(_ file: String, _ cases: [(fragment: String, words: String)]) {
        for (fragment, words) in cases {
            do {
                _ = try KeyFile.parse(file, remote: fragment)
                Issue.record("accepted \(fragment)")
            } catch {
                #expect(error.message.hasPrefix(words), "\(error.message)")
            }
        }
    }

    /// A sample holds every value and counts them in a byte: 256 sensors from a fragment
    /// trapped at the first sample, in a crash loop (the fragment is kept and applied again).
    @Test func sensorsAndOutputsAreBounded() throws {
        let file = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
        let many = (0..<KeyFile.maxThings).map { "sensor.a\($0) = system:load\n" }.joined()
        #expect(try KeyFile.parse(file + many).sensors.count == KeyFile.maxThings)
        do {
            _ = try KeyFile.parse(file, remote: many + "sensor.b = system:uptime\n")
            Issue.record("accepted \(KeyFile.maxThings + 1) sensors")
        } catch {
            #expect(error.message == "remote config line \(KeyFile.maxThings + 1): bad value for 'sensor.b': expected at most \(KeyFile.maxThings) sensor. and output. lines in all")
        }
        #expect(throws: KeyFileError.self) { try KeyFile.parse(file + many + "output.o = gpio:gpiochip0:1\n") }
    }

    @Test func numbersStayInt64UntilRangeChecked() {
        #expect(KeyFile.parseDecimal("1700000000000") == 1_700_000_000_000)
        #expect(KeyFile.parseInt("1700000000000", in: 1...86_400) == nil)
        #expect(KeyFile.parseInt("4294967313", in: 0...1023) == nil, "2^32 + 17 must not wrap to line 17")
        #expect(KeyFile.parseInt("86400", in: 1...86_400) == 86_400)
        #expect(SensorSyntax.parseSensor(identifier: "b", "gpio:gpiochip0:4294967313") == nil)
        #expect(SensorSyntax.parseSensor(identifier: "b", "system:load every=99999999999") == nil)
    }

    /// Settings that act as root moved to board.conf: a key file that still has them keeps
    /// working (they are ignored and named), whatever their value.
    @Test func rootSettingsInTheKeyFileAreIgnoredAndNamed() throws {
        let base = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
        let d = try KeyFile.parse(base + "allow_reboot = true\nota_confirm_seconds = 5\n")
        #expect(d.movedToBoard == ["allow_reboot", "ota_confirm_seconds"])
        #expect(d.describe(effectiveClientId: "c").contains("allow_reboot = (ignored here: it moved to the board settings, board.conf)"))
        #expect(throws: KeyFileError.self) { try KeyFile.parse(base, remote: "allow_reboot = true\n") }
    }

    @Test func otaLimitsAndStateDir() throws {
        let base = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
        let d = try KeyFile.parse(base)
        #expect(d.stateDir == "/var/lib/wisp" && d.otaMaxBytes == 16 << 20 && d.movedToBoard.isEmpty)
        let c = try KeyFile.parse(base + "state_dir = /data/wisp\nota_max_bytes = 2048\n")
        #expect(c.stateDir == "/data/wisp" && c.otaMaxBytes == 2048)
        for bad in ["state_dir = relative/dir", "ota_max_bytes = 1023", "ota_max_bytes = 2000000000"] {
            #expect(throws: KeyFileError.self) { try KeyFile.parse(base + bad + "\n") }
        }
    }

    @Test func plainBrokerWithWillAndProxy() throws {
        let c = try KeyFile.parse("endpoint = mqtt://[::1]:1884\nusername = u\npassword = p\nwill_topic = dev/status\nproxy = http://10.0.0.1:3128\n")
        #expect(c.endpoint == Endpoint(scheme: .mqtt, host: "::1", port: 1884))
        #expect(c.identity == .plain(username: "u", password: "p"))
        #expect(c.will == Will(topic: "dev/status", payload: "offline"))
        #expect(c.proxy?.host == "10.0.0.1" && c.proxy?.port == 3128)
    }

    static let errors: [(String, String, String)] = [
        ("unknown key", "endpoint = ws://h\nkeep_alive = 60\n", "line 2: unknown key 'keep_alive'"),
        ("duplicate", "endpoint = ws://h\nendpoint = ws://i\n", "line 2: 'endpoint' is already set on line 1"),
        ("keep-alive too short", "endpoint = ws://h\nkeepalive = 29\n", "line 2: bad value for 'keepalive': expected seconds, 30 to 1200"),
        ("keep-alive too long", "endpoint = ws://h\nkeepalive = 1201\n", "line 2: bad value for 'keepalive'"),
        ("not a number", "endpoint = ws://h\nkeepalive = soon\n", "line 2: bad value for 'keepalive'"),
        ("bad scheme", "endpoint = https://h\n", "line 1: bad value for 'endpoint': expected ws://, wss://, mqtt:// or mqtts://"),
        ("bad port", "endpoint = ws://h:0\n", "line 1: bad value for 'endpoint'"),
        ("sign method", "endpoint = ws://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\nsign_method = sha1\n", "line 5: bad value for 'sign_method': expected hmacmd5, hmacsha1 or hmacsha256"),
        ("partial triplet", "endpoint = ws://h\nproduct_key = p\ndevice_secret = s\n", "'device_name' is missing"),
        ("no endpoint", "client_id = x\n", "'endpoint' is missing"),
        ("not key = value", "endpoint = ws://h\njust words\n", "line 2: expected `key = value`"),
        ("long client id", "endpoint = ws://h\nclient_id = " + String(repeating: "a", count: 65) + "\n", "line 2: bad value for 'client_id'"),
        ("client id with a bar", "endpoint = ws://h\nclient_id = a|b\n", "line 2: bad value for 'client_id'"),
        ("tls_insecure", "endpoint = wss://h\ntls_insecure = yes\n", "line 2: bad value for 'tls_insecure'"),
    ]

    @Test(arguments: errors)
    func errorsNameTheLineAndTheAllowedValues(name: String, text: String, message: String) {
        do {
            _ = try KeyFile.parse(text)
            Issue.record("\(name): parsed")
        } catch {
            #expect(error.message.contains(message), "\(name): \(error.message)")
        }
    }

    /// A mangled secret line must not come back in the error.
    @Test(arguments: [
        "endpoint = ws://h\ndevice_secret s3cr3t-DO-NOT-LEAK\n",
        "endpoint = ws://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s3cr3t-DO-NOT-LEAK\ndevice_secret = s3cr3t-DO-NOT-LEAK\n",
        "endpoint = ws://h\ndevice_secret = s3cr3t-DO-NOT-LEAK\n",
        "endpoint = ws://h\nusername = u\npassword = s3cr3t-DO-NOT-LEAK\nsign_method = x\n",
    ])
    func errorsNeverEchoTheSecret(text: String) {
        do {
            _ = try KeyFile.parse(text)
            Issue.record("parsed")
        } catch {
            #expect(!error.message.contains("s3cr3t"))
        }
    }

    @Test func endpointForms() {
        #expect(Endpoint(parsing: "wss://host")?.port == 443)
        #expect(Endpoint(parsing: "ws://host:443/custom/path")?.path == "/custom/path")
        #expect(Endpoint(parsing: "mqtts://host")?.port == 8883)
        #expect(Endpoint(parsing: "wss://[2001:db8::1]:8443")?.hostHeader == "[2001:db8::1]:8443")
        #expect(Endpoint(parsing: "wss://host:443")?.hostHeader == "host")
        #expect(Endpoint(parsing: "mqtt://host/path") == nil)
        #expect(Endpoint(parsing: "ws://") == nil)
        #expect(Endpoint(parsing: "ws://host:99999") == nil)
        #expect(Endpoint(parsing: "host:443") == nil)
    }

    /// The platform serves ws:// on 443, not 80: a ws:// endpoint on one of its host names
    /// without a port goes to 443 (and says so: Host header, `wisp check`); other hosts,
    /// other schemes and a port given stay as written.
    @Test(arguments: [
        ("ws://a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com", 443, "a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com:443",
         "ws://a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt"),
        ("ws://iot-06z00abc.mqtt.iothub.aliyuncs.com/mqtt", 443, "iot-06z00abc.mqtt.iothub.aliyuncs.com:443",
         "ws://iot-06z00abc.mqtt.iothub.aliyuncs.com:443/mqtt"),
        ("WS://PK.IOT-AS-MQTT.CN-SHANGHAI.ALIYUNCS.COM.", 443, "PK.IOT-AS-MQTT.CN-SHANGHAI.ALIYUNCS.COM.:443",
         "ws://PK.IOT-AS-MQTT.CN-SHANGHAI.ALIYUNCS.COM.:443/mqtt"),
        ("ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:80", 80, "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
         "ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:80/mqtt"),
        ("ws://broker.example.com", 80, "broker.example.com", "ws://broker.example.com:80/mqtt"),
        ("ws://aliyuncs.com", 80, "aliyuncs.com", "ws://aliyuncs.com:80/mqtt"),
        ("ws://pk.aliyuncs.com.example.com", 80, "pk.aliyuncs.com.example.com", "ws://pk.aliyuncs.com.example.com:80/mqtt"),
        ("ws://evil-aliyuncs.com", 80, "evil-aliyuncs.com", "ws://evil-aliyuncs.com:80/mqtt"),
        ("mqtt://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
         "mqtt://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:1883"),
    ])
    func wsOnThePlatformsHostsDefaultsTo443(text: String, port: Int, hostHeader: String, shown: String) throws {
        let e = try #require(Endpoint(parsing: text))
        #expect(Int(e.port) == port && e.hostHeader == hostHeader && e.description == shown)
    }

    @Test func keyFileWithAPlatformWsEndpointConnectsTo443() throws {
        let c = try KeyFile.parse("endpoint = ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com\nproduct_key = pk\ndevice_name = d\ndevice_secret = s\n")
        #expect(c.endpoint == Endpoint(scheme: .ws, host: "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", port: 443))
        #expect(c.describe(effectiveClientId: "c").contains("endpoint = ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt"))
    }
}
