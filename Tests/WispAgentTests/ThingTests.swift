import Foundation
import Testing
@testable import WispAgent
@testable import WispCore

/// A property set from the platform drives a GPIO output on a fake board tree: /dev/gpiochip0
/// is a plain file (the character-device request fails with ENOTTY), so the line goes
/// through /sys/class/gpio, whose files the test reads back.
@Suite("Property set → GPIO on a fake board tree")
struct ThingTests {
    let root: URL
    var value: URL { root.appendingPathComponent("sys/class/gpio/gpio529/value") }
    var direction: URL { root.appendingPathComponent("sys/class/gpio/gpio529/direction") }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("wisp-thing-\(UUID().uuidString)")
        let fm = FileManager.default
        for dir in ["dev", "sys/bus/gpio/devices/gpiochip0/gpio/gpiochip512", "sys/class/gpio/gpio529"] {
            try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        try Data().write(to: root.appendingPathComponent("dev/gpiochip0"))
        try Data().write(to: root.appendingPathComponent("sys/class/gpio/export"))
        try Data("0".utf8).write(to: value)
        try Data("in".utf8).write(to: direction)
    }

    func device(_ endpoint: String) -> DeviceConfig {
        var d = DeviceConfig(endpoint: Endpoint(parsing: endpoint)!, identity: .plain(username: nil, password: nil))
        d.sensors = [SensorSpec(identifier: "uptime", source: .system(.uptime))]
        d.outputs = [OutputSpec(identifier: "relay", chip: "gpiochip0", line: 17)]
        return d
    }

    /// Builds the thing on the fake tree, applies `payloads` in turn, and returns each
    /// reply and what the line's value file holds after it, and a sample taken after them
    /// (`Thing` is noncopyable: it stays here).
    func run(_ endpoint: String, _ payloads: [String]) -> (posted: [PropertyValue], replies: [String], values: [String], direction: String) {
        defer { try? FileManager.default.removeItem(at: root) }
        var thing = Thing(device(endpoint), board: Board(root: root.path), log: Log())
        var replies: [String] = [], values: [String] = []
        for p in payloads {
            var reply = JSONWriter(capacity: 512)
            let bytes = Array(p.utf8)
            _ = bytes.withUnsafeBytes { thing.applySet($0, reply: &reply) }
            replies.append(String(decoding: reply.buffer.written, as: UTF8.self))
            values.append((try? String(contentsOf: value, encoding: .utf8)) ?? "?")
        }
        var posted: [PropertyValue] = []
        thing.sample(into: &posted)
        return (posted, replies, values, (try? String(contentsOf: direction, encoding: .utf8)) ?? "?")
    }

    static func set(_ id: String, _ params: String) -> String {
        #"{"id":"\#(id)","version":"1.0","params":\#(params),"method":"thing.service.property.set"}"#
    }

    @Test func aSetOverWssDrivesTheLineAndIsAnswered() {
        let r = run("wss://iot.example:443/mqtt", [Self.set("7", #"{"relay":1}"#), Self.set("8", #"{"relay":0}"#)])
        #expect(r.direction == "low", "requested as an output starting low")
        #expect(r.values == ["1", "0"])
        #expect(r.replies[0].contains(#""id":"7""#) && r.replies[0].contains(#""code":200"#))
        #expect(r.replies[1].contains(#""id":"8""#) && r.replies[1].contains(#""code":200"#))
        #expect(r.posted.last.map { ($0.index, $0.scaled) } ?? (-1, -1) == (1, 0), "the output's state is posted after the sensors")
    }

    @Test func badOrUnknownPropertiesSetNothing() {
        let r = run("wss://iot.example:443/mqtt", [Self.set("1", #"{"relay":2}"#), Self.set("2", #"{"relay":1,"fan":1}"#), "not json"])
        #expect(r.values == ["0", "0", "0"])
        #expect(!r.replies[0].contains(#""code":200"#) && r.replies[0].contains(#""id":"1""#))
        #expect(!r.replies[1].contains(#""code":200"#) && r.replies[1].contains(#""id":"2""#))
        #expect(r.replies[2].contains(#""code":460"#))
    }

    @Test func anUnauthenticatedLinkCannotDriveOutputs() {
        let r = run("ws://broker.example/mqtt", [Self.set("3", #"{"relay":1}"#)])
        #expect(r.values == ["0"])
        #expect(r.replies[0].contains(#""code":403"#))
    }
}
