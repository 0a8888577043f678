import CWispPlatform
import WispCore

/// A configured sensor, resolved to the files it reads. Resolution (finding the zone,
/// chip, device or line) happens at start-up and again, once an interval, while it
/// fails; reading afterwards touches one buffer sized at start-up and allocates nothing.
public struct Sensor {
    enum Reader {
        /// A number in a file: value × multiply + add.
        case number(path: CPath, multiply: Double, add: Double)
        /// IIO `_raw` with `_scale` and `_offset`: (raw + offset) × scale × multiply.
        case iioRaw(raw: CPath, scale: Double, offset: Double, multiply: Double)
        /// DS18B20 `w1_slave`: CRC line must say YES, then `t=` millidegrees.
        case w1Slave(path: CPath)
        case gpio(GPIOLine)
        case memAvailable(path: CPath)
        case diskFree(path: CPath)
        case wifi(path: CPath)
        case throttled(path: CPath)
    }

    public let spec: SensorSpec
    let board: Board
    var reader: Reader?
    /// Why the last resolution or read failed (logged once until it recovers).
    public private(set) var problem: String?
    var lastPosted: Double?
    var skipped = 0

    public init(_ spec: SensorSpec, board: Board) {
        self.spec = spec
        self.board = board
        resolve()
    }

    /// The value now, in the property's unit, or the reason it cannot be read.
    public mutating func read(scratch: inout ByteBuffer) -> Result<Double, SensorError> {
        if reader == nil {
            resolve()
            guard reader != nil else { return .failure(SensorError(problem ?? "not found")) }
        }
        switch reader! {
        case .number(let path, let multiply, let add):
            if case .failure(let e) = System.read(path, into: &scratch, kernelOnly: spec.confined) {
                return .failure(SensorError("cannot read " + path.text + ": " + e.message))
            }
            guard let v = DecimalScan.firstNumber(scratch.written, decimals: 6) else { return .failure(garbage(path)) }
            return .success(Double(v.value) / 1e6 * multiply + add)
        case .iioRaw(let path, let scale, let offset, let multiply):
            guard case .success = System.read(path, into: &scratch) else { return .failure(unreadable(path)) }
            guard let v = DecimalScan.firstNumber(scratch.written, decimals: 6) else { return .failure(garbage(path)) }
            return .success((Double(v.value) / 1e6 + offset) * scale * multiply)
        case .w1Slave(let path):
            guard case .success = System.read(path, into: &scratch) else { return .failure(unreadable(path)) }
            // "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
            guard let crc = DecimalScan.find("crc=", in: scratch) else { return .failure(garbage(path)) }
            guard DecimalScan.find("YES", in: scratch).map({ $0 > crc }) == true else {
                return .failure(SensorError("1-Wire CRC check failed (NO) in " + path.text))
            }
            guard let t = DecimalScan.find("t=", in: scratch), let v = DecimalScan.firstNumber(scratch.written, from: t, decimals: 0) else {
                return .failure(garbage(path))
            }
            return .success(Double(v.value) / 1000)
        case .gpio(let line):
            switch line.get(scratch: &scratch) {
            case .success(let v): return .success(Double(v))
            case .failure(let e): return .failure(SensorError("GPIO " + line.description + ": " + e.message))
            }
        case .memAvailable(let path):
            guard case .success = System.read(path, into: &scratch) else { return .failure(unreadable(path)) }
            guard let at = DecimalScan.find("MemAvailable:", in: scratch), let v = DecimalScan.firstNumber(scratch.written, from: at, decimals: 0) else {
                return .failure(garbage(path))
            }
            return .success(Double(v.value))
        case .diskFree(let path):
            let free = path.withCString { wisp_fs_free($0) }
            if free < 0 { return .failure(SensorError("statvfs " + path.text + ": " + SystemError(errno: Int32(-free)).message)) }
            return .success(Double(free / 1_048_576))
        case .wifi(let path):
            // Inter-| sta-|   Quality        |   Discarded packets ...
            //  face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
            //  wlan0: 0000   70.  -40.  -256        0      0      0      0     12        0
            guard case .success = System.read(path, into: &scratch) else { return .failure(unreadable(path)) }
            guard let colon = DecimalScan.find(": ", in: scratch),
                  let status = DecimalScan.firstNumber(scratch.written, from: colon, decimals: 0),
                  let link = DecimalScan.firstNumber(scratch.written, from: status.end, decimals: 0) else {
                return .failure(SensorError("no wireless interface in " + path.text))
            }
            return .success(Double(link.value))
        case .throttled(let path):
            // "0x50005" from the Raspberry Pi firmware.
            guard case .success = System.read(path, into: &scratch) else { return .failure(unreadable(path)) }
            var value: Int64 = 0
            var i = DecimalScan.find("0x", in: scratch) ?? 0
            let end = min(scratch.count, i + 8)  // a 32-bit word: more digits are not the firmware's
            while i < end, let d = Hex.nibble(scratch[i]) {
                value = value << 4 | Int64(d)
                i += 1
            }
            return .success(Double(value))
        }
    }

    func unreadable(_ path: CPath) -> SensorError { SensorError("cannot read " + path.text) }
    func garbage(_ path: CPath) -> SensorError { SensorError("no number in " + path.text) }

    /// Whether this reading goes into the post (change-based reporting).
    mutating func shouldPost(_ value: Double) -> Bool {
        guard let band = spec.deadband, let last = lastPosted else {
            lastPosted = value
            skipped = 0
            return true
        }
        skipped += 1
        if abs(value - last) > band || skipped >= spec.every {
            lastPosted = value
            skipped = 0
            return true
        }
        return false
    }

    // MARK: resolution

    mutating func resolve() {
        switch Sensor.resolve(spec.source, board: board) {
        case .success(let r):
            reader = r
            problem = nil
        case .failure(let e):
            reader = nil
            problem = e.message
        }
    }

    static func resolve(_ source: SensorSource, board: Board) -> Result<Reader, SensorError> {
        switch source {
        case .thermal(let zone):
            let base = board.path("/sys/class/thermal")
            var fallback: String?
            for name in System.listDirectory(base) where name.startsWith("thermal_zone") {
                let dir = base + "/" + name
                let type = trimmed(System.readText(dir + "/type", limit: 128) ?? "")
                if zone.isEmpty {  // automatic: the CPU/SoC zone, else the first
                    if fallback == nil { fallback = dir }
                    if type.startsWith("cpu") || type.startsWith("soc") || type.startsWith("x86_pkg") { return .success(.number(path: CPath(dir + "/temp"), multiply: 0.001, add: 0)) }
                } else if name.equals(zone) || type.equals(zone) {
                    return .success(.number(path: CPath(dir + "/temp"), multiply: 0.001, add: 0))
                }
            }
            if zone.isEmpty, let dir = fallback { return .success(.number(path: CPath(dir + "/temp"), multiply: 0.001, add: 0)) }
            return .failure(SensorError("no thermal zone " + (zone.isEmpty ? "on this board" : "named " + zone) + " in " + base))
        case .hwmon(let chip, let input):
            let base = board.path("/sys/class/hwmon")
            for name in System.listDirectory(base) {
                let dir = base + "/" + name
                guard trimmed(System.readText(dir + "/name", limit: 128) ?? "").equals(chip) else { continue }
                var stem: String?
                if System.fileMode(dir + "/" + input + "_input").isSuccess { stem = input }
                for file in System.listDirectory(dir) where stem == nil && file.endsWith("_label") {
                    if trimmed(System.readText(dir + "/" + file, limit: 128) ?? "").equals(input) {
                        stem = String(file.utf8.dropLast(6))!
                    }
                }
                guard let stem else { return .failure(SensorError("hwmon chip " + chip + " has no input or label " + input)) }
                // Units (Documentation/hwmon/sysfs-interface): m°C, mV, RPM, µW, mA.
                let multiply = stem.startsWith("power") ? 0.000001 : stem.startsWith("fan") ? 1 : 0.001
                return .success(.number(path: CPath(dir + "/" + stem + "_input"), multiply: multiply, add: 0))
            }
            return .failure(SensorError("no hwmon chip named " + chip + " in " + base))
        case .iio(let device, let channel):
            let base = board.path("/sys/bus/iio/devices")
            for name in System.listDirectory(base) where name.startsWith("iio:device") {
                let dir = base + "/" + name
                guard trimmed(System.readText(dir + "/name", limit: 128) ?? "").equals(device) else { continue }
                // IIO ABI units: temp m°C, humidityrelative m%, voltage mV, pressure kPa, illuminance lux.
                let multiply = channel.startsWith("temp") || channel.startsWith("humidityrelative") || channel.startsWith("voltage") ? 0.001 : 1
                let input = dir + "/in_" + channel + "_input"
                if System.fileMode(input).isSuccess { return .success(.number(path: CPath(input), multiply: multiply, add: 0)) }
                let raw = dir + "/in_" + channel + "_raw"
                guard System.fileMode(raw).isSuccess else { return .failure(SensorError("IIO device " + device + " has no channel " + channel)) }
                let type = channelType(channel)
                let scale = number(dir + "/in_" + channel + "_scale") ?? number(dir + "/in_" + type + "_scale") ?? 1
                let offset = number(dir + "/in_" + channel + "_offset") ?? number(dir + "/in_" + type + "_offset") ?? 0
                return .success(.iioRaw(raw: CPath(raw), scale: scale, offset: offset, multiply: multiply))
            }
            return .failure(SensorError("no IIO device named " + device + " in " + base))
        case .w1(let id):
            let dir = board.path("/sys/bus/w1/devices/" + id)
            if System.fileMode(dir + "/temperature").isSuccess { return .success(.number(path: CPath(dir + "/temperature"), multiply: 0.001, add: 0)) }
            if System.fileMode(dir + "/w1_slave").isSuccess { return .success(.w1Slave(path: CPath(dir + "/w1_slave"))) }
            return .failure(SensorError("no 1-Wire device " + dir))
        case .gpio(let chip, let line):
            switch GPIOLine.open(chip: chip, line: line, output: false, board: board) {
            case .success(let l): return .success(.gpio(l))
            case .failure(let e): return .failure(SensorError("GPIO " + chip + " line \(line): " + e.message))
            }
        case .system(let metric):
            switch metric {
            case .load: return .success(.number(path: CPath(board.path("/proc/loadavg")), multiply: 1, add: 0))
            case .uptime: return .success(.number(path: CPath(board.path("/proc/uptime")), multiply: 1, add: 0))
            case .mem_available: return .success(.memAvailable(path: CPath(board.path("/proc/meminfo"))))
            case .disk_free: return .success(.diskFree(path: CPath(board.root.isEmpty ? "/" : board.root)))
            case .wifi_quality: return .success(.wifi(path: CPath(board.path("/proc/net/wireless"))))
            case .throttled:
                let path = board.path("/sys/devices/platform/soc/soc:firmware/get_throttled")
                if System.fileMode(path).isSuccess { return .success(.throttled(path: CPath(path))) }
                return .failure(SensorError("the firmware does not expose throttling flags (" + path + ")"))
            }
        case .file(let path, let scale, let offset):
            let p = path.startsWith("/sys/") || path.startsWith("/proc/") || path.startsWith("/dev/") ? board.path(path) : path
            return .success(.number(path: CPath(p), multiply: scale, add: offset))
        }
    }

    /// `voltage0` → `voltage`, `temp` → `temp`.
    static func channelType(_ channel: String) -> String {
        var bytes = Array(channel.utf8)
        while let last = bytes.last, last >= 0x30 && last <= 0x39 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func number(_ path: String) -> Double? {
        guard let text = System.readText(path, limit: 128) else { return nil }
        return SensorSyntax.parseNumber(trimmed(text))
    }

    static func trimmed(_ s: String) -> String {
        var bytes = Array(s.utf8)
        while let last = bytes.last, last == 0x0A || last == 0x20 || last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public struct SensorError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

extension Result {
    var isSuccess: Bool { !isFailure }
}
