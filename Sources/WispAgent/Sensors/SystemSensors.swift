import CWispPlatform
import WispCore

/// The board's own health until the sensors issue lands: CPU temperature from
/// /sys/class/thermal (when the board has a thermal zone), load average and available
/// memory from /proc. Reads go into one buffer sized at start-up: sampling allocates nothing.
public struct SystemSensors {
    var scratch = ByteBuffer(capacity: 8192)
    /// The thermal zone's temp file, found once at start-up.
    public let thermalPath: String?
    let loadPath = System.board("/proc/loadavg")
    let memPath = System.board("/proc/meminfo")

    public init() {
        thermalPath = SystemSensors.findThermalZone()
    }

    /// Prefers a zone whose type names the CPU/SoC, else the first zone with a temp.
    static func findThermalZone() -> String? {
        let base = System.board("/sys/class/thermal")
        var first: String?
        for name in System.listDirectory(base) where name.hasPrefix("thermal_zone") {
            let dir = base + "/" + name
            guard System.readText(dir + "/temp", limit: 64) != nil else { continue }
            if first == nil { first = dir + "/temp" }
            if let type = System.readText(dir + "/type", limit: 64),
               type.hasPrefix("cpu") || type.hasPrefix("soc") || type.hasPrefix("x86_pkg") {
                return dir + "/temp"
            }
        }
        return first
    }

    /// Appends the current readings; a sensor that cannot be read is left out.
    public mutating func sample(into values: inout [PropertyValue]) {
        if let thermalPath, read(thermalPath), let t = NumberScan.fixed(scratch, decimals: 0) {
            values.append(PropertyValue(identifier: "cpu_temp", scaled: t.value / 100, decimals: 1))  // millidegrees → 0.1 °C
        }
        if read(loadPath), let l = NumberScan.fixed(scratch, decimals: 2) {
            values.append(PropertyValue(identifier: "load_avg", scaled: l.value, decimals: 2))
        }
        if read(memPath), let at = NumberScan.find("MemAvailable:", in: scratch), let m = NumberScan.fixed(scratch, from: at, decimals: 0) {
            values.append(PropertyValue(identifier: "mem_available_kb", scaled: m.value, decimals: 0))
        }
    }

    mutating func read(_ path: String) -> Bool {
        scratch.removeAll()
        let n = scratch.appendInPlace(upTo: scratch.capacity) { raw in
            Int(wisp_read_file(path, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count))
        }
        return n > 0
    }
}
