import WispCore

/// The thing model of this device: the sensors posted each interval and the GPIO
/// outputs the platform may set (`/sys/{pk}/{dn}/thing/service/property/set`).
public struct Thing: ~Copyable {
    struct Output {
        let spec: OutputSpec
        var line: GPIOLine?
        var state = 0
        var problem: String?
    }

    public private(set) var sensors: [Sensor] = []
    /// Property identifiers: the sensors', then the outputs'. A value's `index` points here.
    public private(set) var names: [String] = []
    var outputs: [Output] = []
    /// The outputs' property identifiers, in `outputs` order.
    let outputNames: [String]
    /// The first KiB of a sensor's file: a sysfs number is a few bytes, the procfs lines
    /// wisp reads (MemAvailable, /proc/net/wireless' link quality) are within the first few
    /// hundred, and a `file:` sensor reads the first number in the file.
    var scratch = ByteBuffer(capacity: 1024)
    var failing: [Bool] = []
    /// Sensors that stopped (false) or started (true) reading in the last `sample`, by
    /// index: the `sensor_lost` / `sensor_back` events. Sized at start-up.
    public private(set) var transitions: [(index: Int, reading: Bool)] = []
    /// False over a link anyone on the path can write to (DeviceConfig.controlAllowed).
    let controlAllowed: Bool
    let log: Log

    /// The board's health when the key file names no sensor.
    public static let defaults: [SensorSpec] = [
        SensorSpec(identifier: "cpu_temp", source: .thermal(zone: "")),
        SensorSpec(identifier: "load_avg", source: .system(.load)),
        SensorSpec(identifier: "mem_available_kb", source: .system(.mem_available)),
    ]

    public init(_ device: DeviceConfig, board: Board, log: Log) {
        self.log = log
        controlAllowed = device.controlAllowed
        if device.sensors.isEmpty {
            for spec in Thing.defaults {
                let s = Sensor(spec, board: board)
                if let problem = s.problem { log.info("default sensor " + spec.identifier + " left out: " + problem) } else { sensors.append(s) }
            }
        } else {
            for spec in device.sensors {
                let s = Sensor(spec, board: board)
                if let problem = s.problem { log.warning("sensor " + spec.identifier + ": " + problem + " (retrying each interval)") }
                sensors.append(s)
            }
        }
        failing = sensors.map { $0.problem != nil }
        outputNames = device.outputs.map { $0.identifier }
        names = sensors.map { $0.spec.identifier } + outputNames
        for spec in device.outputs {
            var output = Output(spec: spec)
            switch GPIOLine.open(chip: spec.chip, line: spec.line, output: true, board: board) {
            case .success(let line):
                output.line = line
                log.info("output " + spec.identifier + ": " + line.description)
            case .failure(let e):
                output.problem = e.message
                log.warning("output " + spec.identifier + ": cannot request " + spec.chip + " line \(spec.line): " + e.message)
            }
            outputs.append(output)
        }
    }

    /// Appends this interval's values: every sensor that reads (a failing one is left
    /// out and logged once until it recovers), and every output's state.
    public mutating func sample(into values: inout [PropertyValue]) {
        if transitions.capacity < sensors.count { transitions.reserveCapacity(sensors.count) }
        transitions.removeAll(keepingCapacity: true)
        for i in sensors.indices {
            var reading = sensors[i].read(scratch: &scratch)
            // Posted with 3 decimals as an Int64: a scale or offset may push a file's number
            // beyond what that holds (or to infinity).
            if case .success(let v) = reading, !(v.magnitude < 9e15) {
                reading = .failure(SensorError("the value after scale and offset is out of range (±9e15)"))
            }
            switch reading {
            case .success(let value):
                if failing[i] {
                    failing[i] = false
                    transitions.append((i, true))
                    log.info("sensor " + sensors[i].spec.identifier + " recovered")
                }
                if sensors[i].shouldPost(value) {
                    values.append(PropertyValue(index: i, scaled: Int64((value * 1000).rounded()), decimals: 3))
                }
            case .failure(let e):
                if !failing[i] {
                    failing[i] = true
                    transitions.append((i, false))
                    log.warning("sensor " + sensors[i].spec.identifier + ": " + e.message + "; left out of posts until it reads again")
                }
            }
        }
        for (j, o) in outputs.enumerated() where o.line != nil {
            values.append(PropertyValue(index: sensors.count + j, scaled: Int64(o.state), decimals: 0))
        }
    }

    /// Applies a property set (PropertySet in WispCore parses and validates it) and
    /// writes the reply into `reply`. All or nothing: an unknown property or a bad value
    /// sets nothing. Returns true when an output changed.
    public mutating func applySet(_ payload: UnsafeRawBufferPointer, reply: inout JSONWriter) -> Bool {
        let json: JSONReader
        do { json = try JSONReader(payload) } catch {
            PropertySet.writeReply(code: 460, id: nil, json: nil, message: "request parameter error: " + error.message, into: &reply)
            return false
        }
        var id: Range<Int>?
        var changed = false
        let (code, message) = apply(json, id: &id, changed: &changed)
        PropertySet.writeReply(code: code, id: id, json: json, message: message, into: &reply)
        return changed
    }

    /// The set's reply code and message (`applySet` writes the reply in one place); `id`
    /// and `changed` as they come.
    mutating func apply(_ json: JSONReader, id: inout Range<Int>?, changed: inout Bool) -> (Int64, String) {
        let request: PropertySet.Request
        switch PropertySet.parse(json, settable: outputNames) {
        case .failure(let r):
            id = r.id
            return (r.code, r.message)
        case .success(let parsed): request = parsed
        }
        id = request.id
        for change in request.changes where outputs[change.index].line == nil {
            let o = outputs[change.index]
            return (500, o.spec.identifier + " is unavailable: " + (o.problem ?? ""))
        }
        if !controlAllowed && !request.changes.isEmpty {
            log.warning("property set refused: the link is not authenticated TLS (set allow_plaintext_control = true to allow it)")
            return (403, "outputs are not set over an unauthenticated link (ws://, mqtt:// or tls_insecure); use wss:// or allow_plaintext_control")
        }
        for change in request.changes {
            let index = change.index, v = change.level
            if let e = outputs[index].line!.set(v) {
                return (500, "cannot set " + outputs[index].spec.identifier + ": " + e.message)
            }
            if outputs[index].state != v { changed = true }
            outputs[index].state = v
            log.info("property set: " + outputs[index].spec.identifier + " = \(v)")
        }
        return (200, "success")
    }
}
