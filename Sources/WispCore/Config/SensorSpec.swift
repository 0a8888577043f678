/// Where a sensor's value comes from, as the key file spells it after `sensor.NAME =`.
public enum SensorSource: Sendable, Equatable {
    /// `thermal:ZONE` — a thermal zone by its type (`cpu-thermal`) or name (`thermal_zone0`).
    case thermal(zone: String)
    /// `hwmon:CHIP:INPUT` — a hwmon chip by its `name`, an input by file stem (`temp1`)
    /// or by its `*_label`.
    case hwmon(chip: String, input: String)
    /// `iio:DEVICE:CHANNEL` — an IIO device by `name`, a channel such as `temp`,
    /// `humidityrelative`, `pressure`, `voltage0`, `illuminance`.
    case iio(device: String, channel: String)
    /// `w1:28-…` — a DS18B20 on the 1-Wire bus.
    case w1(id: String)
    /// `gpio:CHIP:LINE` — a GPIO input line (`gpiochip0:17`).
    case gpio(chip: String, line: Int)
    /// `system:METRIC` — load, mem_available, uptime, disk_free, wifi_quality, throttled.
    case system(SystemMetric)
    /// `file:PATH[:SCALE[:OFFSET]]` — a number in any sysfs/procfs file, × scale + offset.
    case file(path: String, scale: Double, offset: Double)
}

public enum SystemMetric: String, Sendable, CaseIterable {
    case load, mem_available, uptime, disk_free, wifi_quality, throttled
}

/// One configured sensor: the Alink property identifier and its source.
public struct SensorSpec: Sendable, Equatable {
    public var identifier: String
    public var source: SensorSource
    /// Change-based reporting: post only when the value moved by more than this since
    /// the last post (or every `every` intervals). nil: every interval.
    public var deadband: Double?
    public var every: Int
    /// A `file:` sensor a remote config added: read only from sysfs or procfs, wherever
    /// its path leads (a key file's own `file:` sensors may read any regular file).
    public var confined = false

    /// The source as the key file spells it.
    public var describe: String {
        switch source {
        case .thermal(let z): "thermal:" + z
        case .hwmon(let c, let i): "hwmon:" + c + ":" + i
        case .iio(let d, let c): "iio:" + d + ":" + c
        case .w1(let id): "w1:" + id
        case .gpio(let c, let l): "gpio:" + c + ":\(l)"
        case .system(let m): "system:" + m.rawValue
        case .file(let p, _, _): "file:" + p
        }
    }

    public init(identifier: String, source: SensorSource, deadband: Double? = nil, every: Int = 1) {
        self.identifier = identifier
        self.source = source
        self.deadband = deadband
        self.every = every
    }
}

/// A GPIO output the platform may set through a property set.
public struct OutputSpec: Sendable, Equatable {
    public var identifier: String
    public var chip: String
    public var line: Int
}

public enum SensorSyntax {
    public static let help = """
        thermal:ZONE | hwmon:CHIP:INPUT | iio:DEVICE:CHANNEL | w1:28-ID | gpio:gpiochipN:LINE | \
        system:load|mem_available|uptime|disk_free|wifi_quality|throttled | file:PATH[:SCALE[:OFFSET]], \
        then optionally ` deadband=X every=N`
        """

    /// An Alink identifier: a letter, then letters, digits or `_`, at most 50.
    public static func isIdentifier(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard let first = bytes.first, bytes.count <= 50, isLetter(first) else { return false }
        for b in bytes where !(isLetter(b) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "_")) { return false }
        return true
    }

    static func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }

    /// Parses the value of a `sensor.NAME` line; nil when it is not of the syntax above.
    public static func parseSensor(identifier: String, _ text: String) -> SensorSpec? {
        var words = text.pieces(" ", omittingEmpty: true)
        guard !words.isEmpty else { return nil }
        let main = words.removeFirst()
        var spec = SensorSpec(identifier: identifier, source: .system(.load))
        for word in words {
            let kv = word.pieces("=", maxSplits: 1)
            guard kv.count == 2 else { return nil }
            if kv[0].equals("deadband"), let d = parseNumber(kv[1]), d >= 0 { spec.deadband = d }
            else if kv[0].equals("every"), let n = KeyFile.parseInt(kv[1], in: 1...10_000) { spec.every = n }
            else { return nil }
        }
        let parts = main.pieces(":", maxSplits: 1)
        guard parts.count == 2, !parts[1].isEmpty else { return nil }
        let args = parts[1].pieces(":")
        switch parts[0] {
        case "thermal" where args.count == 1: spec.source = .thermal(zone: args[0])
        case "hwmon" where args.count == 2 && !args[0].isEmpty && !args[1].isEmpty: spec.source = .hwmon(chip: args[0], input: args[1])
        case "iio" where args.count == 2 && !args[0].isEmpty && !args[1].isEmpty: spec.source = .iio(device: args[0], channel: args[1])
        case "w1" where args.count == 1 && args[0].startsWith("28-"): spec.source = .w1(id: args[0])
        case "gpio":
            guard args.count == 2, args[0].startsWith("gpiochip"), let line = KeyFile.parseInt(args[1], in: 0...1023) else { return nil }
            spec.source = .gpio(chip: args[0], line: line)
        case "system":
            guard args.count == 1, let metric = SystemMetric.allCases.first(where: { $0.rawValue.equals(args[0]) }) else { return nil }
            spec.source = .system(metric)
        case "file":
            guard args[0].startsWith("/"), args.count <= 3 else { return nil }
            var scale = 1.0, offset = 0.0
            if args.count >= 2 { guard let s = parseNumber(args[1]) else { return nil }; scale = s }
            if args.count == 3 { guard let o = parseNumber(args[2]) else { return nil }; offset = o }
            spec.source = .file(path: args[0], scale: scale, offset: offset)
        default:
            return nil
        }
        return spec
    }

    /// Parses `gpio:gpiochipN:LINE` for an `output.NAME` line.
    public static func parseOutput(identifier: String, _ text: String) -> OutputSpec? {
        guard case .gpio(let chip, let line)? = parseSensor(identifier: identifier, text)?.source else { return nil }
        return OutputSpec(identifier: identifier, chip: chip, line: line)
    }

    /// A decimal such as `-2.5`, `0.000244140625` or `.5` (no exponent): the whole string,
    /// through DecimalScan (at most 18 digits before and after the point).
    public static func parseNumber(_ s: String) -> Double? {
        let b = Array(s.utf8)
        var i = 0
        let negative = b.first == UInt8(ascii: "-")
        if negative { i = 1 }
        var value = 0.0
        var any = false
        if let (whole, end) = DecimalScan.digits(b, from: i) {
            value = Double(whole)
            i = end
            any = true
        }
        if i < b.count {
            guard b[i] == UInt8(ascii: "."), let (fraction, end) = DecimalScan.digits(b, from: i + 1), end == b.count else { return nil }
            var scale = 1.0
            for _ in (i + 1)..<end { scale *= 10 }
            value += Double(fraction) / scale
            any = true
        }
        return any ? (negative ? -value : value) : nil
    }
}
