import Testing
@testable import WispCore

@Suite("Sensor lines in the key file, and their numbers")
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

    @Test(arguments: [("-2.5", Optional(-2.5)), (".5", 0.5), ("0.000244140625", 0.000244140625), ("3", 3.0), ("", nil), ("-", nil), ("1.2.3", nil), ("1e3", nil)])
    func sensorNumbers(text: String, value: Double?) {
        #expect(SensorSyntax.parseNumber(text) == value)
    }
}
