import Testing
@testable import WispCore

@Suite("JSON reader and writer (fixed buffers)")
struct JSONTests {
    func read<R>(_ text: String, _ body: (JSONReader) throws -> R) throws -> R {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw in try body(try JSONReader(raw)) }
    }

    @Test func propertySetFromThePlatform() throws {
        let doc = #"{"method":"thing.service.property.set","id":"1234","params":{"relay":1,"target":-22.5,"on":true},"version":"1.0"}"#
        try read(doc) { json in
            guard case .string(let id)? = json.member("id") else { Issue.record("id"); return }
            #expect(json.equals(id, "1234"))
            guard case .object(let params)? = json.member("params") else { Issue.record("params"); return }
            let members = Array(json.members(of: params))
            #expect(members.count == 3)
            #expect(json.equals(members[0].key, "relay") && members[0].value == .number(scaled: 1, decimals: 0))
            #expect(members[1].value == .number(scaled: -225, decimals: 1))
            #expect(members[2].value == .bool(true))
            #expect(json.member("missing") == nil)
        }
    }

    static let malformed: [String] = [
        "", "{", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "[1,2,]", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\u{01}\"}", "{\"a\":tru}", "{\"a\":1} x", "{\"a\":1e5}", "\"\\u12\"",
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "{\"a\":99999999999999999999}",
        "{\"a\":\"\u{FFFD}\"", "{'a':1}",
    ]

    @Test(arguments: malformed)
    func refusesMalformed(_ text: String) {
        #expect(throws: JSONError.self) { try read(text) { _ in 0 } }
    }

    @Test func invalidUTF8InAStringIsRefused() {
        let bytes: [UInt8] = Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        #expect(throws: JSONError.self) { try bytes.withUnsafeBytes { _ = try JSONReader($0) } }
    }

    @Test(arguments: [(2345, 2, "23.45"), (2350, 2, "23.5"), (2300, 2, "23"), (-5, 3, "-0.005"), (0, 3, "0"), (1, 0, "1"), (-123_456, 3, "-123.456")])
    func fixedPointIsWrittenWithoutFloats(scaled: Int64, decimals: Int, text: String) {
        var w = JSONWriter(capacity: 32)
        w.fixed(scaled, decimals: decimals)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == text)
    }

    @Test func stringsAreEscaped() {
        var w = JSONWriter(capacity: 64)
        w.string("a\"b\\c\n")
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #""a\"b\\c\u000a""#)
    }

    @Test func propertyPostWithSampleTimes() {
        var w = JSONWriter(capacity: 256)
        let ok = PropertyPost.write(id: 7, values: [PropertyValue(index: 0, scaled: 2350, decimals: 2)], names: ["temp"], time: 1_700_000_000_000, into: &w)
        #expect(ok)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self)
            == #"{"id":"7","version":"1.0","params":{"temp":{"value":23.5,"time":1700000000000}},"method":"thing.event.property.post"}"#)
    }

    @Test func postThatDoesNotFitIsReportedNotTruncatedSilently() {
        var w = JSONWriter(capacity: 40)
        #expect(!PropertyPost.write(id: 1, values: [PropertyValue(index: 0, scaled: 1, decimals: 0)], names: ["temp"], into: &w))
    }
}

@Suite("Sensor lines in the key file")
struct SensorSyntaxTests {
    static let good: [(String, SensorSource)] = [
        ("w1:28-0316a2795aff", .w1(id: "28-0316a2795aff")),
        ("thermal:cpu-thermal", .thermal(zone: "cpu-thermal")),
        ("iio:bme280:humidityrelative", .iio(device: "bme280", channel: "humidityrelative")),
        ("hwmon:lm75:temp1", .hwmon(chip: "lm75", input: "temp1")),
        ("gpio:gpiochip0:17", .gpio(chip: "gpiochip0", line: 17)),
        ("system:wifi_quality", .system(.wifi_quality)),
        ("file:/sys/x/y:0.5:-3", .file(path: "/sys/x/y", scale: 0.5, offset: -3)),
    ]

    @Test(arguments: good)
    func parses(text: String, source: SensorSource) {
        #expect(SensorSyntax.parseSensor(identifier: "t", text)?.source == source)
    }

    @Test(arguments: ["w1:29-x", "thermal:", "gpio:chip0:1", "gpio:gpiochip0:x", "system:cpu", "file:relative", "iio:bme280", "nope:x", "w1:28-a every=0"])
    func refuses(_ text: String) {
        #expect(SensorSyntax.parseSensor(identifier: "t", text) == nil)
    }

    @Test func keyFileCollectsSensorsAndOutputsWithDeadband() throws {
        let c = try KeyFile.parse("endpoint = ws://h\nsensor.temperature = w1:28-0316a2795aff deadband=0.5 every=10\nsensor.cpu_temp = thermal:cpu-thermal\noutput.relay = gpio:gpiochip0:17\n")
        #expect(c.sensors.count == 2)
        #expect(c.sensors[0].deadband == 0.5 && c.sensors[0].every == 10)
        #expect(c.outputs == [OutputSpec(identifier: "relay", chip: "gpiochip0", line: 17)])
    }

    @Test func keyFileSensorErrorsNameTheLine() {
        #expect(throws: KeyFileError.self) { try KeyFile.parse("endpoint = ws://h\nsensor.1x = w1:28-a\n") }
        do { _ = try KeyFile.parse("endpoint = ws://h\nsensor.t = w1:29-a\n") } catch {
            #expect(error.message.hasPrefix("line 2: bad value for 'sensor.t'"))
        }
        do { _ = try KeyFile.parse("endpoint = ws://h\nsensor.t = w1:28-a\noutput.t = gpio:gpiochip0:1\n") } catch {
            #expect(error.message.hasPrefix("line 3: 't' is already set on line 2"))
        }
    }
}
