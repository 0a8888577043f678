import Testing
@testable import WispCore

/// The signed OTA package's header (README, "Signed OTA packages"): every field read, and
/// every strictness rule refused with a reason.
@Suite("Signed OTA package header")
struct PackageManifestTests {
    static let sha = String(repeating: "0123456789abcdef", count: 4)
    static let sig = "3045022100" + String(repeating: "ab", count: 32) + "0220" + String(repeating: "cd", count: 32)

    static let lines: [(String, String)] = [
        ("module", "default"), ("version", "1.4.0"), ("arch", "arm64"), ("kind", "elf"), ("size", "583112"),
        ("sha256", sha), ("counter", "7"), ("signature", sig),
    ]

    static func header(_ lines: [(String, String)] = lines, first: String = "wisp-ota 1") -> String {
        first + "\n" + lines.map { $0.0 + " = " + $0.1 + "\n" }.joined()
    }

    /// The header with one field's value replaced.
    static func with(_ key: String, _ value: String) -> String {
        header(lines.map { $0.0 == key ? ($0.0, value) : $0 })
    }

    func parse(_ text: String, payload: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]) -> PackageManifestParse {
        let file = Array(text.utf8) + payload
        return Array(file.prefix(PackageManifest.maxHeaderBytes)).withUnsafeBytes { PackageManifest.parse($0) }
    }

    func reason(_ text: String) -> String? {
        if case .invalid(let why) = parse(text) { return why }
        return nil
    }

    @Test func aValidHeaderGivesEveryField() throws {
        let text = Self.header()
        guard case .manifest(let m) = parse(text) else { Issue.record("not parsed: \(parse(text))"); return }
        #expect(m.module == "default" && m.version == "1.4.0" && m.arch == "arm64" && m.kind == .elf)
        #expect(m.size == 583_112 && m.counter == 7)
        #expect(m.sha256 == hex(Self.sha) && m.sha256.count == 32)
        #expect(m.signature == hex(Self.sig) && m.signature.count == 71)
        let signatureLine = "signature = " + Self.sig + "\n"
        #expect(m.payloadOffset == text.utf8.count)
        #expect(m.signedCount == text.utf8.count - signatureLine.utf8.count)
        #expect(Array(m.signedHeader.utf8) == Array(text.utf8.prefix(m.signedCount)))
    }

    @Test func aDebHeaderAndTheBounds() {
        let text = Self.header([("module", "wisp_agent-2.x"), ("version", "0.2.0~rc1+git.1"), ("arch", "armhf"), ("kind", "deb"),
                                ("size", "2147483647"), ("sha256", Self.sha), ("counter", "0"), ("signature", "00112233aabbccdd")])
        guard case .manifest(let m) = parse(text) else { Issue.record("not parsed: \(parse(text))"); return }
        #expect(m.kind == .deb && m.arch == "armhf" && m.size == 2_147_483_647 && m.counter == 0 && m.signature.count == 8)
        #expect(m.module == "wisp_agent-2.x" && m.version == "0.2.0~rc1+git.1")
        #expect(Array(m.signedHeader.utf8) == Array(text.utf8.prefix(m.signedCount)))
    }

    @Test(arguments: [
        [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] as [UInt8],   // an ELF
        Array("!<arch>\ndebian-binary   ".utf8),               // a .deb
        Array("wisp-ota".utf8),                                // too short to be one
        Array("WISP-OTA 1\n".utf8),
        [],
    ])
    func filesThatAreNoPackageAreUnsigned(bytes: [UInt8]) {
        #expect(bytes.withUnsafeBytes { PackageManifest.parse($0) } == .unsigned)
    }

    @Test(arguments: [
        ("wisp-ota 2", "unsupported package format 'wisp-ota 2'"),
        ("wisp-ota 1 ", "unsupported package format"),
        ("wisp-ota 1\r", "unsupported package format 'wisp-ota 1\\x0d'"),
        ("wisp-ota 10", "unsupported"),
    ])
    func anotherFirstLineIsAnotherFormat(first: String, why: String) {
        let r = reason(Self.header(first: first))
        #expect(r?.contains(why) == true, "\(String(describing: r))")
    }

    @Test(arguments: [
        // keys, order, separators, line ends
        (header(lines.filter { $0.0 != "arch" }), "line 4 must be 'arch = …', not 'kind = elf'"),
        (header([lines[1], lines[0]] + lines.dropFirst(2)), "line 2 must be 'module = …'"),
        (header(lines.map { $0.0 == "kind" ? ("Kind", $0.1) : $0 }), "must be 'kind = …'"),
        (header().replacing("arch = arm64", with: "arch=arm64"), "must be 'arch = …', not 'arch=arm64'"),
        (header().replacing("arch = arm64", with: "arch  = arm64"), "must be 'arch = …'"),
        (header().replacing("arch = arm64", with: "arch =  arm64"), "arch ' arm64' is not arm64"),
        (header().replacing("arch = arm64", with: "arch = arm64 "), "arch 'arm64 ' is not"),
        (header().replacing("size = 583112\n", with: "size = 583112\r\n"), "line 6 (size) has a CR"),
        (header().replacing("kind = elf\n", with: "kind = elf\n\n"), "line 6 must be 'size = …', not ''"),
        (header().replacing("kind = elf\n", with: "# note\nkind = elf\n"), "line 5 must be 'kind = …', not '# note'"),
        // values
        (with("module", ""), "module '' is not 1 to 32"),
        (with("module", String(repeating: "m", count: 33)), "is not 1 to 32"),
        (with("module", "a/b"), "module 'a/b'"),
        (with("version", "1.0 beta"), "version '1.0 beta' is not"),
        (with("version", "1.\"0"), "version"),
        (with("version", String(repeating: "1", count: 65)), "version"),
        (with("version", "1.0\u{1}"), "version '1.0\\x01'"),
        (with("arch", "aarch64"), "arch 'aarch64' is not arm64, armhf or amd64"),
        (with("arch", "ARM64"), "is not arm64"),
        (with("kind", "ELF"), "kind 'ELF' is not elf or deb"),
        (with("kind", "tar"), "is not elf or deb"),
        (with("size", "0"), "size '0' is not a decimal number from 1"),
        (with("size", "0583112"), "size '0583112'"),
        (with("size", "+583112"), "size '+583112'"),
        (with("size", "-1"), "size '-1'"),
        (with("size", "5e5"), "size '5e5'"),
        (with("size", ""), "size ''"),
        (with("size", "2147483648"), "size '2147483648'"),
        (with("size", "4294967297"), "size"),
        (with("size", "99999999999999999999999999999999"), "size"),
        (with("counter", "-1"), "counter '-1' is not a decimal number from 0"),
        (with("counter", "00"), "counter '00'"),
        (with("counter", "2147483648"), "counter"),
        (with("counter", "18446744073709551617"), "counter"),
        (with("sha256", String(sha.dropLast())), "sha256"),
        (with("sha256", sha.uppercased()), "is not 64 lowercase hex digits"),
        (with("sha256", sha + "00"), "sha256"),
        (with("sha256", String(sha.dropLast()) + "g"), "sha256"),
        (with("signature", "00112233aabbcc"), "signature '00112233aabbcc' is not 8 to 144 bytes of lowercase hex"),
        (with("signature", String(repeating: "ab", count: 145)), "signature"),
        (with("signature", sig + "0"), "signature"),
        (with("signature", sig.uppercased()), "signature"),
    ])
    func everyRuleIsRefusedWithAReason(text: String, why: String) {
        let r = reason(text)
        #expect(r?.contains(why) == true, "\(String(describing: r))")
    }

    @Test func everyFieldAtItsBoundFitsWellWithin1024Bytes() {
        let text = Self.header([("module", String(repeating: "m", count: 32)), ("version", String(repeating: "v", count: 64)),
                                ("arch", "amd64"), ("kind", "deb"), ("size", "2147483647"), ("sha256", Self.sha),
                                ("counter", "2147483647"), ("signature", String(repeating: "ab", count: 144))])
        #expect(text.utf8.count < PackageManifest.maxHeaderBytes)
        guard case .manifest(let m) = parse(text) else { Issue.record("not parsed: \(parse(text))"); return }
        #expect(m.signature.count == 144 && m.payloadOffset == text.utf8.count && m.module.utf8.count == 32)
    }

    @Test func aHeaderPastTheBoundIsRefused() {
        // A signature line that runs past byte 1024 (what a reader hands the parser is cut there).
        let long = Self.with("signature", String(repeating: "ab", count: 600))
        #expect(long.utf8.count > PackageManifest.maxHeaderBytes)
        #expect(reason(long)?.contains("longer than 1024 bytes") == true, "\(String(describing: reason(long)))")
        // Given more than 1024 bytes, the parser still looks only at the first 1024.
        let whole = Array(long.utf8)
        let r = whole.withUnsafeBytes { PackageManifest.parse($0) }
        guard case .invalid(let why) = r else { Issue.record("not refused: \(r)"); return }
        #expect(why.contains("longer than 1024 bytes"))
    }

    @Test func aTruncatedHeaderIsRefused() {
        let text = Array(Self.header().utf8)
        for cut in [10, 11, 30, text.count - 40, text.count - 1] {
            let r = Array(text.prefix(cut)).withUnsafeBytes { PackageManifest.parse($0) }
            guard case .invalid(let why) = r else { Issue.record("cut at \(cut) not refused: \(r)"); continue }
            #expect(why.contains("the file ends inside the header"), "\(why)")
        }
    }

    @Test func rawBytesInAReasonAreEscaped() {
        let r = reason(Self.with("module", "a\u{1B}[31mb")) ?? ""
        #expect(r.contains("a\\x1b[31mb") && !r.utf8.contains(0x1B))
        let junk = reason(Self.header().replacing("kind = elf", with: "kind\u{7F} = \u{0}elf")) ?? ""
        #expect(junk.contains("\\x7f") && junk.contains("\\x00") && !junk.utf8.contains(0) && !junk.utf8.contains(0x7F))
    }

    @Test func numbersStayInt64UntilRangeChecked() {
        // Values past Int32 (armv7's Int) and past Int64 are refused, never trapped on.
        for v in ["2147483648", "4294967296", "9223372036854775807", "9223372036854775808", "99999999999"] {
            #expect(reason(Self.with("size", v)) != nil, "\(v)")
            #expect(reason(Self.with("counter", v)) != nil, "\(v)")
        }
        guard case .manifest(let m) = parse(Self.with("counter", "2147483647")) else { Issue.record("not parsed"); return }
        #expect(m.counter == 2_147_483_647 && Int32(exactly: m.counter) != nil && Int32(exactly: m.size) != nil)
    }

    @Test func theArchitectureOfAnELF() {
        func arch(_ bits: UInt8, _ order: UInt8, _ machine: UInt16) -> String? {
            var header = [UInt8](repeating: 0, count: 20)
            header[0...3] = [0x7F, 0x45, 0x4C, 0x46]
            header[4] = bits == 64 ? 2 : 1
            header[5] = order
            if order == 1 { header[18] = UInt8(machine & 0xFF); header[19] = UInt8(machine >> 8) } else {
                header[18] = UInt8(machine >> 8); header[19] = UInt8(machine & 0xFF)
            }
            return header.withUnsafeBytes { ELFIdentity(header: $0) }.flatMap { PackageManifest.arch(of: $0) }
        }
        #expect(arch(64, 1, 183) == "arm64")
        #expect(arch(32, 1, 40) == "armhf")
        #expect(arch(64, 1, 62) == "amd64")
        #expect(arch(32, 1, 183) == nil && arch(64, 1, 40) == nil && arch(32, 1, 62) == nil)
        #expect(arch(64, 2, 183) == nil && arch(32, 2, 40) == nil, "big-endian")
        #expect(arch(32, 1, 3) == nil, "i386")
    }
}
