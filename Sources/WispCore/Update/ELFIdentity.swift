/// What an ELF file runs on: its class, byte order and machine (the first 20 bytes of the
/// ELF header). An OTA package must match the running binary's, so a board is never handed
/// a binary it cannot execute.
public struct ELFIdentity: Equatable, Sendable {
    /// 1: 32-bit, 2: 64-bit.
    public var bits: UInt8
    /// 1: little-endian, 2: big-endian.
    public var order: UInt8
    /// e_machine: 62 x86-64, 183 AArch64, 40 ARM.
    public var machine: UInt16

    public static let headerBytes = 20

    /// nil unless `header` starts with an ELF header of a known class and byte order.
    public init?(header: UnsafeRawBufferPointer) {
        guard header.count >= ELFIdentity.headerBytes, header[0] == 0x7F, header[1] == UInt8(ascii: "E"),
              header[2] == UInt8(ascii: "L"), header[3] == UInt8(ascii: "F"),
              header[4] == 1 || header[4] == 2, header[5] == 1 || header[5] == 2 else { return nil }
        bits = header[4] == 1 ? 32 : 64
        order = header[5]
        machine = order == 1 ? UInt16(header[18]) | UInt16(header[19]) << 8 : UInt16(header[18]) << 8 | UInt16(header[19])
    }

    public var description: String {
        let arch: String
        switch machine {
        case 62: arch = "x86-64"
        case 183: arch = "aarch64"
        case 40: arch = "arm"
        case 3: arch = "i386"
        default: arch = "machine \(machine)"
        }
        return "ELF \(bits)-bit " + (order == 1 ? "LSB " : "MSB ") + arch
    }
}
