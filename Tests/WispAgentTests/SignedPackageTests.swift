import CWispPlatform
import Foundation
import Testing
@testable import WispAgent
import WispCore

/// Signed OTA packages made at test time by `openssl` and `scripts/ota-package`, verified
/// through mbedTLS (`SignedPackage`): what passes and each way one is refused.
@Suite("Signed OTA packages")
struct SignedPackageTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = repository + "/scripts/ota-package"

    /// Runs a program; its exit status and what it wrote (stdout and stderr).
    @discardableResult
    static func run(_ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try! p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A folder with a P-256 key pair, a second one, and a package of /bin/true signed by the first.
    final class Fixture {
        let dir = TemporaryDirectory("signed")
        let payload: [UInt8]

        init(counter: Int = 5) {
            for name in ["publisher", "other"] {
                SignedPackageTests.expectOK(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", dir.file(name + ".key")])
                SignedPackageTests.expectOK(["openssl", "ec", "-in", dir.file(name + ".key"), "-pubout", "-out", dir.file(name + ".pub")])
            }
            payload = Array(FileManager.default.contents(atPath: "/bin/true")!)
            FileManager.default.createFile(atPath: dir.file("true"), contents: Data(payload))
            SignedPackageTests.expectOK([SignedPackageTests.script, "--key", dir.file("publisher.key"), "--version", "1.4.0",
                                         "--counter", String(counter), dir.file("true"), dir.file("package")])
        }

        var publicKey: [UInt8] { dir.bytes("publisher.pub")! }
        var package: [UInt8] { dir.bytes("package")! }

        func write(_ name: String, _ bytes: [UInt8]) {
            FileManager.default.createFile(atPath: dir.file(name), contents: Data(bytes))
        }

        func verify(_ name: String = "package", key: [UInt8]? = nil) -> Result<PackageManifest, PackageRefusal> {
            let fd = wisp_open_read(dir.file(name))
            precondition(fd >= 0)
            defer { _ = wisp_close(fd) }
            return SignedPackage.verify(fd: fd, publicKeyPEM: key ?? publicKey)
        }

        func refusal(_ name: String = "package", key: [UInt8]? = nil) -> PackageRefusal? {
            if case .failure(let r) = verify(name, key: key) { return r }
            return nil
        }
    }

    static func expectOK(_ args: [String]) {
        let r = run(args)
        #expect(r.status == 0, "\(args.joined(separator: " ")): \(r.output)")
    }

    @Test func aPackageFromTheScriptVerifiesAndItsPayloadCopiesOut() throws {
        let f = Fixture()
        let m = try f.verify().get()
        #expect(m.module == "wisp" && m.version == "1.4.0" && m.kind == .elf && m.counter == 5)
        #expect(m.arch == PackageManifest.arch(of: f.payload.withUnsafeBytes { ELFIdentity(header: $0) }!))
        #expect(m.size == Int64(f.payload.count) && m.payloadOffset + f.payload.count == f.package.count)
        #expect(Array(f.package[m.payloadOffset...]) == f.payload)
        #expect(Array(m.signedHeader.utf8) == Array(f.package[0..<m.signedCount]))

        let fd = wisp_open_read(f.dir.file("package"))
        defer { _ = wisp_close(fd) }
        #expect(SignedPackage.copyPayload(fd: fd, manifest: m, to: f.dir.file("wisp.new"), mode: 0o755) == nil)
        #expect(f.dir.bytes("wisp.new") == f.payload && f.dir.mode("wisp.new") == 0o755 && !f.dir.exists("wisp.new.tmp"))
    }

    @Test func whereTheCallersOffsetStandsDoesNotMatterAndDoesNotMove() throws {
        let f = Fixture()
        let fd = wisp_open_read(f.dir.file("package"))
        defer { _ = wisp_close(fd) }
        var buf = [UInt8](repeating: 0, count: 10)
        #expect(wisp_read(fd, &buf, 10) == 10)
        _ = try SignedPackage.verify(fd: fd, publicKeyPEM: f.publicKey).get()
        #expect(wisp_read(fd, &buf, 10) == 10 && buf == Array(f.package[10..<20]))
    }

    @Test func aFlippedPayloadByteIsAMismatch() {
        let f = Fixture()
        var bytes = f.package
        bytes[bytes.count - 100] ^= 0x01
        f.write("flipped", bytes)
        let r = f.refusal("flipped")
        #expect(r?.kind == .mismatch && r?.message.contains("sha256") == true, "\(String(describing: r))")
    }

    @Test func aChangedHeaderFieldDoesNotVerify() {
        let f = Fixture()
        let text = String(decoding: f.package, as: UTF8.self)
        #expect(text.contains("counter = 5\n"))
        f.write("rolled", Array(f.package).replacing(Array("counter = 5\n".utf8), with: Array("counter = 9\n".utf8)))
        #expect(f.refusal("rolled")?.kind == .badSignature)
    }

    @Test func aPackageSignedByAnotherKeyIsABadSignature() {
        let f = Fixture()
        let r = f.refusal(key: f.dir.bytes("other.pub"))
        #expect(r?.kind == .badSignature && r?.message.contains("does not verify") == true)
    }

    @Test func aBareELFIsUnsigned() {
        let f = Fixture()
        #expect(f.refusal("true")?.kind == .unsigned)
        f.write("empty", [])
        #expect(f.refusal("empty")?.kind == .unsigned)
    }

    @Test func aTruncatedOrLongerFileIsRefused() {
        let f = Fixture()
        f.write("short", Array(f.package.dropLast()))
        #expect(f.refusal("short")?.kind == .mismatch)
        f.write("long", f.package + [0])
        let long = f.refusal("long")
        #expect(long?.kind == .mismatch && long?.message.contains("bytes; its header says") == true, "\(String(describing: long))")
        f.write("header-only", Array(f.package.prefix(200)))
        let cut = f.refusal("header-only")
        #expect(cut?.kind == .malformed && cut?.message.contains("ends inside the header") == true, "\(String(describing: cut))")
    }

    @Test(arguments: [
        ["openssl", "genpkey", "-algorithm", "ed25519"],
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    ])
    func aKeyThatIsNotP256IsABadKey(generate: [String]) {
        let f = Fixture()
        Self.expectOK(generate + ["-out", f.dir.file("odd.key")])
        Self.expectOK(["openssl", "pkey", "-in", f.dir.file("odd.key"), "-pubout", "-out", f.dir.file("odd.pub")])
        let r = f.refusal(key: f.dir.bytes("odd.pub"))
        #expect(r?.kind == .badKey, "\(String(describing: r))")
        guard case .failure(let k) = SignedPackage.readPublicKey(path: f.dir.file("odd.pub")) else { Issue.record("key taken"); return }
        #expect(k.kind == .badKey)
    }

    @Test func readingThePublicKey() throws {
        let f = Fixture()
        #expect(try SignedPackage.readPublicKey(path: f.dir.file("publisher.pub")).get() == f.publicKey)
        func refused(_ path: String) -> PackageRefusal? {
            if case .failure(let r) = SignedPackage.readPublicKey(path: path) { return r }
            return nil
        }
        #expect(refused(f.dir.file("missing.pub"))?.message.contains("cannot read") == true)
        #expect(refused(f.dir.file("publisher.key"))?.kind == .badKey, "a private key is not the public key")
        f.write("big.pub", f.publicKey + [UInt8](repeating: 0x0A, count: 1024))
        #expect(refused(f.dir.file("big.pub"))?.message.contains("larger than 1024 bytes") == true)
        f.write("garbage.pub", Array("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".utf8))
        #expect(refused(f.dir.file("garbage.pub"))?.kind == .badKey)
        f.write("nul.pub", [0] + f.publicKey)
        #expect(refused(f.dir.file("nul.pub"))?.kind == .badKey)
        #expect(f.refusal(key: [])?.kind == .badKey)
    }

    @Test func aCopyOfBytesThatChangedAfterVerifyIsNotKept() throws {
        let f = Fixture()
        let m = try f.verify().get()
        var bytes = f.package
        bytes[m.payloadOffset] ^= 0xFF
        f.write("package", bytes)  // changed after verify (as if rewritten meanwhile)
        let fd = wisp_open_read(f.dir.file("package"))
        defer { _ = wisp_close(fd) }
        #expect(SignedPackage.copyPayload(fd: fd, manifest: m, to: f.dir.file("wisp.new"), mode: 0o755)?.errno == 74)  // EBADMSG
        #expect(!f.dir.exists("wisp.new") && !f.dir.exists("wisp.new.tmp"))
        var shortManifest = m
        shortManifest.size += 1
        #expect(SignedPackage.copyPayload(fd: fd, manifest: shortManifest, to: f.dir.file("wisp.new"), mode: 0o755)?.errno == 5)  // EIO
    }

    @Test func theScriptRefusesWhatWispWouldRefuse() {
        let f = Fixture()
        for (args, why) in [
            (["--version", "1 0"], "version"), (["--version", "1", "--counter", "-1"], "counter"),
            (["--version", "1", "--counter", "2147483648"], "counter"), (["--version", "1", "--module", "a/b"], "module"),
        ] {
            let r = Self.run([Self.script, "--key", f.dir.file("publisher.key")] + args + [f.dir.file("true"), f.dir.file("x")])
            #expect(r.status != 0 && r.output.contains(why), "\(args): \(r.output)")
        }
        let notElf = Self.run([Self.script, "--key", f.dir.file("publisher.key"), "--version", "1", f.dir.file("publisher.pub"), f.dir.file("x")])
        #expect(notElf.status != 0 && notElf.output.contains("neither an ELF binary nor a .deb"))
        let help = Self.run([Self.script, "--help"])
        #expect(help.status == 0 && help.output.contains("--counter"))
        #expect(!f.dir.exists("x"))
        // Never the private key, even in what it prints on success.
        let ok = Self.run([Self.script, "--key", f.dir.file("publisher.key"), "--version", "2", f.dir.file("true"), f.dir.file("y")])
        #expect(ok.status == 0 && ok.output.contains("BEGIN PUBLIC KEY") && !ok.output.contains("PRIVATE"))
    }
}
