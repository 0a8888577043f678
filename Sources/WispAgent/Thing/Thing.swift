import WispCore

/// The thing model of this device: the sensors posted each interval and the GPIO
/// outputs the platform may set (`/sys/{pk}/{dn}/thing/service/property/set`).
public struct Thing {
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
    var scratch = ByteBuffer(capacity: 8192)
    var failing: [Bool] = []
    /// False over a link anyone on the path can write to (DeviceConfig.controlAllowed).
    let controlAllowed: Bool

    /// The board's health when the key file names no sensor.
    public static let defaults: [SensorSpec] = [
        SensorSpec(identifier: "cpu_temp", source: .thermal(zone: "")),
        SensorSpec(identifier: "load_avg", source: .system(.load)),
        SensorSpec(identifier: "mem_available_kb", source: .system(.mem_available)),
    ]

    public init(_ device: DeviceConfig) {
        controlAllowed = device.controlAllowed
        if device.sensors.isEmpty {
            for spec in Thing.defaults {
                let s = Sensor(spec)
                if let problem = s.problem { Log.info("default sensor " + spec.identifier + " left out: " + problem) } else { sensors.append(s) }
            }
        } else {
            for spec in device.sensors {
                let s = Sensor(spec)
                if let problem = s.problem { Log.warning("sensor " + spec.identifier + ": " + problem + " (retrying each interval)") }
                sensors.append(s)
            }
        }
        failing = sensors.map { $0.problem != nil }
        names = sensors.map { $0.spec.identifier } + device.outputs.map { $0.identifier }
        for spec in device.outputs {
            var output = Output(spec: spec)
            switch GPIOLine.open(chip: spec.chip, line: spec.line, output: true) {
            case .success(let line):
                output.line = line
                Log.info("output " + spec.identifier + ": " + line.description)
            case .failure(let e):
                output.problem = e.message
                Log.warning("output " + spec.identifier + ": cannot request " + spec.chip + " line \(spec.line): " + e.message)
            }
            outputs.append(output)
        }
    }

    /// Appends this interval's values: every sensor that reads (a failing one is left
    /// out and logged once until it recovers), and every output's state.
    public mutating func sample(into values: inout [PropertyValue]) {
        for i in sensors.indices {
            switch sensors[i].read(scratch: &scratch) {
            case .success(let value):
                if failing[i] {
                    failing[i] = false
                    Log.info("sensor " + sensors[i].spec.identifier + " recovered")
                }
                if sensors[i].shouldPost(value) {
                    values.append(PropertyValue(index: i, scaled: Int64((value * 1000).rounded()), decimals: 3))
                }
            case .failure(let e):
                if !failing[i] {
                    failing[i] = true
                    Log.warning("sensor " + sensors[i].spec.identifier + ": " + e.message + "; left out of posts until it reads again")
                }
            }
        }
        for (j, o) in outputs.enumerated() where o.line != nil {
            values.append(PropertyValue(index: sensors.count + j, scaled: Int64(o.state), decimals: 0))
        }
    }

    /// Applies a property set (`{"id":"1","params":{"relay":1},...}`) and writes the reply
    /// into `reply`. All or nothing: an unknown property or a bad value sets nothing.
    /// Returns true when an output changed.
    public mutating func applySet(_ payload: UnsafeRawBufferPointer, reply: inout JSONWriter) -> Bool {
        let json: JSONReader
        do { json = try JSONReader(payload) } catch {
            writeReply(&reply, code: 460, id: nil, json: nil, message: "request parameter error: " + error.message)
            return false
        }
        var id: Range<Int>?
        if case .string(let r)? = json.member("id") { id = r }
        guard case .object(let params)? = json.member("params") else {
            writeReply(&reply, code: 460, id: id, json: json, message: "request parameter error: no params object")
            return false
        }
        // Validate every member first.
        for (key, value) in json.members(of: params) {
            guard let index = outputIndex(json, key) else {
                writeReply(&reply, code: 460, id: id, json: json, message: "property not settable: " + text(json, key))
                return false
            }
            guard level(value) != nil else {
                writeReply(&reply, code: 460, id: id, json: json, message: "value of " + outputs[index].spec.identifier + " must be 0 or 1")
                return false
            }
            if outputs[index].line == nil {
                writeReply(&reply, code: 500, id: id, json: json, message: outputs[index].spec.identifier + " is unavailable: " + (outputs[index].problem ?? ""))
                return false
            }
        }
        if !controlAllowed && json.members(of: params).contains(where: { _ in true }) {
            Log.warning("property set refused: the link is not authenticated TLS (set allow_plaintext_control = true to allow it)")
            writeReply(&reply, code: 403, id: id, json: json,
                       message: "outputs are not set over an unauthenticated link (ws://, mqtt:// or tls_insecure); use wss:// or allow_plaintext_control")
            return false
        }
        var changed = false
        for (key, value) in json.members(of: params) {
            let index = outputIndex(json, key)!
            let v = level(value)!
            if let e = outputs[index].line!.set(v) {
                writeReply(&reply, code: 500, id: id, json: json, message: "cannot set " + outputs[index].spec.identifier + ": " + e.message)
                return changed
            }
            if outputs[index].state != v { changed = true }
            outputs[index].state = v
            Log.info("property set: " + outputs[index].spec.identifier + " = \(v)")
        }
        writeReply(&reply, code: 200, id: id, json: json, message: "success")
        return changed
    }

    func outputIndex(_ json: JSONReader, _ key: Range<Int>) -> Int? {
        outputs.firstIndex { json.equals(key, $0.spec.identifier) }
    }

    func level(_ value: JSONReader.Value) -> Int? {
        switch value {
        case .bool(let b): return b ? 1 : 0
        case .number(let scaled, let decimals):
            var one: Int64 = 1
            for _ in 0..<decimals { one *= 10 }
            if scaled == 0 { return 0 }
            if scaled == one { return 1 }
            return nil
        default: return nil
        }
    }

    func text(_ json: JSONReader, _ range: Range<Int>) -> String {
        var bytes: [UInt8] = []
        for i in range where bytes.count < 64 { bytes.append(json[i]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The platform's reply: `{"code":200,"data":{},"id":"1","message":"success","version":"1.0"}`.
    func writeReply(_ reply: inout JSONWriter, code: Int64, id: Range<Int>?, json: JSONReader?, message: String) {
        reply.reset()
        reply.raw("{\"code\":")
        reply.integer(code)
        reply.raw(",\"data\":{},\"id\":\"")
        if let id, let json { for i in id { reply.byte(json[i]) } }
        reply.raw("\",\"message\":")
        reply.string(message)
        reply.raw(",\"version\":\"1.0\"}")
    }
}
