import WispCore

/// What the board offers, for `wisp sensors`: every source found under /sys and /proc,
/// spelled as a key file would name it, with a reading now.
public enum Discovery {
    public static func sources(on board: Board) -> [SensorSource] {
        var found: [SensorSource] = []
        let thermal = board.path("/sys/class/thermal")
        for name in System.listDirectory(thermal) where name.startsWith("thermal_zone") {
            let type = Sensor.trimmed(System.readText(thermal + "/" + name + "/type", limit: 128) ?? "")
            found.append(.thermal(zone: type.isEmpty ? name : type))
        }
        let hwmon = board.path("/sys/class/hwmon")
        for name in System.listDirectory(hwmon) {
            let dir = hwmon + "/" + name
            let chip = Sensor.trimmed(System.readText(dir + "/name", limit: 128) ?? name)
            for file in System.listDirectory(dir) where file.endsWith("_input") {
                let stem = String(file.utf8.dropLast(6))!
                let label = Sensor.trimmed(System.readText(dir + "/" + stem + "_label", limit: 128) ?? "")
                found.append(.hwmon(chip: chip, input: label.isEmpty || label.utf8.contains(UInt8(ascii: " ")) ? stem : label))
            }
        }
        let iio = board.path("/sys/bus/iio/devices")
        for name in System.listDirectory(iio) where name.startsWith("iio:device") {
            let dir = iio + "/" + name
            let device = Sensor.trimmed(System.readText(dir + "/name", limit: 128) ?? name)
            var channels: [String] = []
            for file in System.listDirectory(dir) where file.startsWith("in_") && (file.endsWith("_input") || file.endsWith("_raw")) {
                var bytes = Array(file.utf8.dropFirst(3))
                bytes.removeLast(file.endsWith("_raw") ? 4 : 6)
                let channel = String(decoding: bytes, as: UTF8.self)
                if !channels.containsToken(channel) { channels.append(channel) }
            }
            for c in channels { found.append(.iio(device: device, channel: c)) }
        }
        for name in System.listDirectory(board.path("/sys/bus/w1/devices")) where name.startsWith("28-") {
            found.append(.w1(id: name))
        }
        for metric in SystemMetric.allCases { found.append(.system(metric)) }
        return found
    }

    /// GPIO chips (/dev/gpiochipN) with their line counts when sysfs tells.
    public static func gpioChips(on board: Board) -> [String] {
        var chips: [String] = []
        for name in System.listDirectory(board.path("/dev")) where name.startsWith("gpiochip") { chips.append(name) }
        for name in System.listDirectory(board.path("/sys/bus/gpio/devices")) where name.startsWith("gpiochip") && !chips.containsToken(name) {
            chips.append(name)
        }
        return chips
    }

    /// A reading for the listing: the value, or why there is none.
    public static func reading(_ spec: SensorSpec, on board: Board, scratch: inout ByteBuffer) -> String {
        var sensor = Sensor(spec, board: board)
        switch sensor.read(scratch: &scratch) {
        case .success(let v) where !(v.magnitude < 9e15):
            return "out of range after scale and offset (±9e15)"
        case .success(let v):
            var json = JSONWriter(capacity: 64)
            json.fixed(Int64((v * 1000).rounded()), decimals: 3)
            return String(decoding: json.buffer.bytes, as: UTF8.self)
        case .failure(let e):
            return "unreadable: " + e.message
        }
    }
}
