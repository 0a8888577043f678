/// The header of a signed OTA package (README, "Signed OTA packages"): one file, a text
/// header, then the payload (a wisp ELF binary or a `.deb`):
///
/// ```
/// wisp-ota 1
/// module = default
/// version = 1.4.0
/// arch = arm64
/// kind = elf
/// size = 583112
/// sha256 = <64 lowercase hex: the payload's>
/// counter = 7
/// signature = <lowercase hex of the DER ECDSA P-256 signature (SHA-256) over every byte before this line>
/// <payload: exactly `size` bytes, to the end of the file>
/// ```
///
/// Strict: `\n` line ends, exactly `key = value`, these keys in this order, the whole header
/// within `maxHeaderBytes`. Anything else is refused with a reason, so a later format
/// changes the first line. The parser only reads the header: the signature, the file's
/// length and the payload's digest are checked by the agent (`SignedPackage`).
public struct PackageManifest: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A wisp executable.
        case elf
        /// A Debian package of wisp.
        case deb

        /// As the header spells it.
        public var name: String { self == .elf ? "elf" : "deb" }
    }

    public var module: String
    public var version: String
    /// Debian's name: `arm64`, `armhf` or `amd64`.
    public var arch: String
    public var kind: Kind
    /// The payload's length: 1 … 2^31-1.
    public var size: Int64
    /// 32 bytes: the payload's SHA-256.
    public var sha256: [UInt8]
    /// The anti-rollback counter: 0 … 2^31-1.
    public var counter: Int64
    /// Bytes `0..<signedCount` of the file are what the signature covers (everything before
    /// the `signature = ` line).
    public var signedCount: Int
    /// Where the payload starts: just after the signature line's `\n`.
    public var payloadOffset: Int
    /// The DER ECDSA signature, 8 … 144 bytes.
    public var signature: [UInt8]

    public init(module: String, version: String, arch: String, kind: Kind, size: Int64, sha256: [UInt8], counter: Int64,
                signedCount: Int, payloadOffset: Int, signature: [UInt8]) {
        self.module = module
        self.version = version
        self.arch = arch
        self.kind = kind
        self.size = size
        self.sha256 = sha256
        self.counter = counter
        self.signedCount = signedCount
        self.payloadOffset = payloadOffset
        self.signature = signature
    }

    /// Compared by bytes (`String.equals`): see Tokens.swift.
    public static func == (a: PackageManifest, b: PackageManifest) -> Bool {
        a.module.equals(b.module) && a.version.equals(b.version) && a.arch.equals(b.arch) && a.kind == b.kind
            && a.size == b.size && a.sha256 == b.sha256 && a.counter == b.counter && a.signedCount == b.signedCount
            && a.payloadOffset == b.payloadOffset && a.signature == b.signature
    }

    /// The longest header, through the signature line's `\n`.
    public static let maxHeaderBytes = 1024
    /// The largest `size` and `counter` (they stay below 2^31 so a 32-bit board holds them).
    public static let maxNumber: Int64 = 2_147_483_647
    public static let minSignatureBytes = 8
    /// A DER P-256 signature is at most 72 bytes; this leaves room for larger curves later.
    public static let maxSignatureBytes = 144
    /// The first line of this format, without its `\n`.
    public static let magic = "wisp-ota 1"

    /// The keys after the first line, in their order.
    static let keys: [String] = ["module", "version", "arch", "kind", "size", "sha256", "counter", "signature"]

    /// The signed part of the header as it must read: the first line and every line but the
    /// signature's. For a parsed manifest this is exactly bytes `0..<signedCount` of the file.
    public var signedHeader: String {
        PackageManifest.magic + "\nmodule = " + module + "\nversion = " + version + "\narch = " + arch + "\nkind = " + kind.name
            + "\nsize = \(size)\nsha256 = " + Hex.encode(sha256) + "\ncounter = \(counter)\n"
    }

    /// The Debian architecture of an ELF binary: aarch64 64-bit LSB → arm64, ARM 32-bit LSB
    /// → armhf, x86-64 64-bit LSB → amd64; nil for anything else.
    public static func arch(of elf: ELFIdentity) -> String? {
        guard elf.order == 1 else { return nil }
        switch (elf.machine, elf.bits) {
        case (183, 64): return "arm64"
        case (40, 32): return "armhf"
        case (62, 64): return "amd64"
        default: return nil
        }
    }

    /// Reads the header at the start of `head`: the first min(`maxHeaderBytes`, file length)
    /// bytes of the file (bytes past `maxHeaderBytes` are not looked at). `.unsigned` when
    /// the file does not start with `wisp-ota ` (a bare ELF or `.deb`).
    public static func parse(_ head: UnsafeRawBufferPointer) -> PackageManifestParse {
        let end = min(head.count, maxHeaderBytes)
        let prefix: StaticString = "wisp-ota "
        let prefixCount = prefix.utf8CodeUnitCount
        guard end >= prefixCount else { return .unsigned }
        var isPackage = true
        prefix.withUTF8Buffer { p in
            for i in 0..<prefixCount where head[i] != p[i] { isPackage = false }
        }
        guard isPackage else { return .unsigned }

        // Lines, each found within the first `end` bytes.
        var pos = 0
        func nextLine() -> Range<Int>? {
            var i = pos
            while i < end {
                if head[i] == 0x0A {
                    let line = pos..<i
                    pos = i + 1
                    return line
                }
                i += 1
            }
            return nil
        }
        func missing(_ what: String) -> PackageManifestParse {
            if head.count >= maxHeaderBytes {
                return .invalid("the header is longer than \(maxHeaderBytes) bytes (no complete " + what + " line within them)")
            }
            return .invalid("the file ends inside the header (no complete " + what + " line)")
        }

        guard let first = nextLine() else { return missing("first") }
        guard matches(head, first, magic) else {
            return .invalid("unsupported package format '" + LogText.escape(Array(head[first]), limit: 40) + "' (this wisp reads '" + magic + "')")
        }

        var values: [Range<Int>] = []
        var signedCount = 0
        for (n, key) in keys.enumerated() {
            let start = pos
            guard let line = nextLine() else { return missing(key) }
            let lineNumber = n + 2
            if head[line].contains(0x0D) { return .invalid("line \(lineNumber) (" + key + ") has a CR: lines end in \\n only") }
            let k = key.utf8.count
            let sep = line.lowerBound + k
            guard line.count >= k + 3, head[line.lowerBound..<sep].elementsEqual(key.utf8),
                  head[sep] == 0x20, head[sep + 1] == UInt8(ascii: "="), head[sep + 2] == 0x20 else {
                return .invalid("line \(lineNumber) must be '" + key + " = …', not '" + LogText.escape(Array(head[line]), limit: 80) + "'")
            }
            if n == keys.count - 1 { signedCount = start }
            values.append((sep + 3)..<line.upperBound)
        }
        let payloadOffset = pos

        func refuse(_ index: Int, _ why: String) -> PackageManifestParse {
            .invalid(keys[index] + " '" + LogText.escape(Array(head[values[index]]), limit: 80) + "' " + why)
        }
        let module = text(head, values[0])
        guard OTAInform.isModuleName(module) else { return refuse(0, "is not 1 to 32 of A-Z a-z 0-9 _ - .") }
        let version = text(head, values[1])
        guard version.utf8.count <= OTAOffer.maxVersionBytes, OTAOffer.isVersion(version) else {
            return refuse(1, "is not 1 to \(OTAOffer.maxVersionBytes) printable characters without spaces, quotes or backslashes")
        }
        let arch = text(head, values[2])
        guard arch.equals("arm64") || arch.equals("armhf") || arch.equals("amd64") else { return refuse(2, "is not arm64, armhf or amd64") }
        let kindText = text(head, values[3])
        let kind: Kind
        if kindText.equals("elf") { kind = .elf } else if kindText.equals("deb") { kind = .deb } else { return refuse(3, "is not elf or deb") }
        guard let size = number(head, values[4]), size >= 1 else {
            return refuse(4, "is not a decimal number from 1 to \(maxNumber) (no sign, no leading zero)")
        }
        guard values[5].count == 64, let sha256 = lowerHex(head, values[5]) else { return refuse(5, "is not 64 lowercase hex digits") }
        guard let counter = number(head, values[6]) else {
            return refuse(6, "is not a decimal number from 0 to \(maxNumber) (no sign, no leading zero)")
        }
        let sig = values[7]
        guard sig.count >= 2 * minSignatureBytes, sig.count <= 2 * maxSignatureBytes, let signature = lowerHex(head, sig) else {
            return refuse(7, "is not \(minSignatureBytes) to \(maxSignatureBytes) bytes of lowercase hex")
        }
        return .manifest(PackageManifest(module: module, version: version, arch: arch, kind: kind, size: size, sha256: sha256,
                                         counter: counter, signedCount: signedCount, payloadOffset: payloadOffset,
                                         signature: signature))
    }

    static func text(_ head: UnsafeRawBufferPointer, _ r: Range<Int>) -> String { String(decoding: head[r], as: UTF8.self) }

    static func matches(_ head: UnsafeRawBufferPointer, _ r: Range<Int>, _ s: String) -> Bool { head[r].elementsEqual(s.utf8) }

    /// Decimal 0 … `maxNumber`, at most 10 digits, no sign, no leading zero.
    static func number(_ head: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int64? {
        guard !r.isEmpty, r.count == 1 || head[r.lowerBound] != UInt8(ascii: "0"),
              let v = DecimalScan.whole(head[r], maxDigits: 10), v <= maxNumber else { return nil }
        return v
    }

    /// Lowercase hex digits (an even count) to bytes; nil for anything else.
    static func lowerHex(_ head: UnsafeRawBufferPointer, _ r: Range<Int>) -> [UInt8]? {
        guard r.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(r.count / 2)
        var i = r.lowerBound
        while i < r.upperBound {
            let a = head[i], b = head[i + 1]
            guard isLowerHex(a), isLowerHex(b), let hi = Hex.nibble(a), let lo = Hex.nibble(b) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func isLowerHex(_ b: UInt8) -> Bool { DecimalScan.isDigit(b) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f")) }
}

/// What `PackageManifest.parse` found at the start of a file.
public enum PackageManifestParse: Equatable, Sendable {
    case manifest(PackageManifest)
    /// Not a signed package at all (no `wisp-ota ` first line): a bare ELF or `.deb`.
    case unsigned
    /// A package header wisp refuses, and why (one sentence; raw bytes escaped).
    case invalid(String)

    public static func == (a: PackageManifestParse, b: PackageManifestParse) -> Bool {
        switch (a, b) {
        case (.manifest(let x), .manifest(let y)): return x == y
        case (.unsigned, .unsigned): return true
        case (.invalid(let x), .invalid(let y)): return x.equals(y)
        default: return false
        }
    }
}
