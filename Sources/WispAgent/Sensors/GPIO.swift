import CWispPlatform
import WispCore

/// One GPIO line, through the character device (uAPI v2) or, when the kernel lacks it,
/// the deprecated /sys/class/gpio interface.
public final class GPIOLine {
    enum Backend {
        case chardev(fd: Int32)
        case sysfs(valuePath: CPath)
    }

    let backend: Backend
    public let description: String

    /// Requests `line` of `chip` (gpiochipN) as an input, or an output starting at 0.
    public static func open(chip: String, line: Int, output: Bool, board: Board) -> Result<GPIOLine, SystemError> {
        let device = board.path("/dev/" + chip)
        let fd = wisp_gpio_request(device, UInt32(line), output ? 1 : 0, 0)
        if fd >= 0 { return .success(GPIOLine(.chardev(fd: fd), device + " line \(line)")) }
        // ENOENT (no such device node), ENOTTY/EINVAL (no uAPI v2): try sysfs.
        guard fd == -2 || fd == -25 || fd == -22 else { return .failure(SystemError(errno: -fd)) }
        return openSysfs(chip: chip, line: line, output: output, chardevError: -fd, board: board)
    }

    /// sysfs numbering: the chip's base (from /sys/bus/gpio/devices/gpiochipN/gpio/gpiochipBASE)
    /// plus the line offset; exported on demand.
    static func openSysfs(chip: String, line: Int, output: Bool, chardevError: Int32, board: Board) -> Result<GPIOLine, SystemError> {
        let dir = board.path("/sys/bus/gpio/devices/" + chip + "/gpio")
        guard let entry = System.listDirectory(dir).first(where: { $0.startsWith("gpiochip") }),
              let base = KeyFile.parseInt(String(decoding: entry.utf8.dropFirst(8), as: UTF8.self), in: 0...1_000_000) else {
            return .failure(SystemError(errno: chardevError))
        }
        let number = base + line
        let gpio = board.path("/sys/class/gpio/gpio\(number)")
        if System.fileMode(gpio + "/value").isFailure {
            _ = writeText(board.path("/sys/class/gpio/export"), "\(number)")
        }
        let direction = output ? "low" : "in"  // "low": output, initially 0
        let r = writeText(gpio + "/direction", direction)
        if r < 0 { return .failure(SystemError(errno: -r)) }
        return .success(GPIOLine(.sysfs(valuePath: CPath(gpio + "/value")), gpio + " (sysfs)"))
    }

    init(_ backend: Backend, _ description: String) {
        self.backend = backend
        self.description = description
    }

    deinit {
        if case .chardev(let fd) = backend { _ = wisp_close(fd) }
    }

    /// 0 or 1.
    public func get(scratch: inout ByteBuffer) -> Result<Int, SystemError> {
        switch backend {
        case .chardev(let fd):
            let v = wisp_gpio_get(fd)
            return v < 0 ? .failure(SystemError(errno: -v)) : .success(Int(v))
        case .sysfs(let path):
            switch System.read(path, into: &scratch) {
            case .failure(let e): return .failure(e)
            case .success: return .success(scratch.count > 0 && scratch[0] == UInt8(ascii: "1") ? 1 : 0)
            }
        }
    }

    public func set(_ value: Int) -> SystemError? {
        switch backend {
        case .chardev(let fd):
            let r = wisp_gpio_set(fd, value != 0 ? 1 : 0)
            return r < 0 ? SystemError(errno: -r) : nil
        case .sysfs(let path):
            var byte: UInt8 = value != 0 ? 0x31 : 0x30
            let r = path.withCString { wisp_write_file($0, &byte, 1) }
            return r < 0 ? SystemError(errno: -r) : nil
        }
    }

    static func writeText(_ path: String, _ text: String) -> Int32 {
        var t = text
        return t.withUTF8 { wisp_write_file(path, $0.baseAddress, $0.count) }
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
