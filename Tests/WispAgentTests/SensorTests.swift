import Foundation
import Testing
@testable import WispAgent
import WispCore

@Suite("Sensor number scan")
struct SensorScanTests {
    func read(_ text: String, source: String = "") -> Result<Double, SensorError> {
        let path = scratchDirectory("sensor") + "/value"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        let spec = SensorSyntax.parseSensor(identifier: "x", "file:" + path + source)!
        var sensor = Sensor(spec, board: Board())
        var scratch = ByteBuffer(capacity: 256)
        return sensor.read(scratch: &scratch)
    }

    @Test(arguments: [
        ("23.5\n", "", 23.5), ("temp=-12.25 C", "", -12.25), ("45123\n", ":0.001", 45.123), ("20", ":2:1", 41.0),
    ])
    func reads(text: String, source: String, expected: Double) throws {
        let v = try read(text, source: source).get()
        #expect(abs(v - expected) < 1e-9)
    }

    @Test(arguments: ["", "no number here", "99999999999999999999999"])
    func garbageIsAFailureNotACrash(text: String) {
        guard case .failure = read(text) else {
            Issue.record(Comment(rawValue: "read a number from '" + text + "'"))
            return
        }
    }
}
