import Foundation
import Testing
@testable import WispAgent
import WispCore

/// A real executable for this machine whose `--version` says `wisp 9.9.9 (unit test
/// build)`, built once with the C compiler (the toolchain's clang if there is no cc): the
/// package the fake server serves when an upgrade should pass verification.
let newWisp: [UInt8]? = {
    let dir = NSTemporaryDirectory() + "wisp-elf-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let source = dir + "/wisp.c"
    try? """
        #include <stdio.h>
        #include <string.h>
        int main(int argc, char **argv) {
            if (argc > 1 && strcmp(argv[1], "--version") == 0) { puts("wisp 9.9.9 (unit test build)"); return 0; }
            return 3;
        }
        """.write(toFile: source, atomically: true, encoding: .utf8)
    for compiler in ["cc", "clang"] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [compiler, "-O0", "-o", dir + "/wisp", source]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { continue }
        p.waitUntilExit()
        if p.terminationStatus == 0, let bytes = FileManager.default.contents(atPath: dir + "/wisp") { return Array(bytes) }
    }
    return nil
}()

/// The OTA upgrade on the service's side: offer → download over the fake HTTP server →
/// digest → the new binary checked → staged for the root step, with progress reports in
/// the outbox. Serialized: verification forks and runs the downloaded file, which must
/// not be held open for writing by another test's child (ETXTBSY).
@Suite("OTA updater", .serialized)
struct UpdaterTests {
    let state = TemporaryDirectory("ota")
    let clock = SimulatedClock()
    let progressTopic = "/ota/device/progress/a1PK/board-7"
    /// The publisher's key pair (and another), made once per test by openssl.
    let keys = TemporaryDirectory("keys")

    init() {
        for name in ["publisher", "other"] {
            SignedPackageTests.expectOK(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keys.file(name + ".key")])
            SignedPackageTests.expectOK(["openssl", "ec", "-in", keys.file(name + ".key"), "-pubout", "-out", keys.file(name + ".pub")])
        }
    }

    /// `payload` as a package signed by `key` (scripts/ota-package).
    func signed(_ payload: [UInt8], version: String = "9.9.9", key: String = "publisher", module: String = "wisp") -> [UInt8] {
        FileManager.default.createFile(atPath: keys.file("payload"), contents: Data(payload))
        SignedPackageTests.expectOK([SignedPackageTests.script, "--key", keys.file(key + ".key"), "--version", version, "--counter", "2",
                                     "--module", module, keys.file("payload"), keys.file("package")])
        return keys.bytes("package")!
    }

    func updater(_ server: FakeHTTPServer, endpoint: String = "wss://a1PK.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt",
                 _ extra: [(String, String)] = [], publicKey: String? = nil) -> (Updater<FakeHTTPConnection>, Downloader<FakeHTTPConnection>) {
        let d = Downloader<FakeHTTPConnection>(clock: clock.clock, log: Log(), seed: 7) { server.connect($0) }
        var board = Board()
        board.settings.otaPublicKey = publicKey ?? keys.file("publisher.pub")
        return (Updater(Platform.device(endpoint: endpoint, stateDir: state.path, extra), board: board, downloader: d, log: Log()), d)
    }

    /// The platform's upgrade push for `file`.
    static func offer(_ file: [UInt8], version: String = "9.9.9", module: String = "wisp", sha256: [UInt8]? = nil,
                      size: Int? = nil) -> String {
        """
        {"code":"1000","message":"success","id":2,"data":{"size":\(size ?? file.count),"version":"\(version)",\
        "url":"https://ota.example.com/ota/a1PK/wisp?Expires=1&Signature=x%3D","sign":"\(hex(sha256 ?? digestOf(file)))",\
        "signMethod":"SHA256","md5":"\(hex(digestOf(file, .md5)))","module":"\(module)","isDiff":0}}
        """
    }

    /// Offers `offer`, then runs the download to its end; the progress reports.
    func upgrade(_ u: Updater<FakeHTTPConnection>, _ d: Downloader<FakeHTTPConnection>, _ server: FakeHTTPServer, _ offer: String,
                 out: inout Outbox) -> [(step: Int, desc: String)] {
        Array(offer.utf8).withUnsafeBytes { u.offer($0, out: &out) }
        pump(server, clock: clock, downloader: d) {
            u.advance(out: &out)
            return u.download == nil
        }
        #expect(out.messages.allSatisfy { $0.topic == progressTopic && $0.waits && $0.qos == .atMostOnce },
                "progress reports wait for the link, QoS 0")
        let o = out
        return out.messages.map { progress(o, $0) }
    }

    func nothingStaged() {
        for name in ["staged", "staged.ready", "package.part", "package.want"] {
            #expect(!state.exists("ota/" + name), "ota/\(name) left behind")
        }
    }

    @Test func anUpgradeIsDownloadedVerifiedAndStaged() throws {
        let binary = signed(try #require(newWisp, "no C compiler to build the test's new wisp"))
        let server = FakeHTTPServer(file: binary, clock: clock)
        server.bytesPerTurn = binary.count / 12 + 1
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(binary), out: &out)

        #expect(steps.first?.step == 1 && steps.first?.desc == "downloading")
        #expect(steps.last?.step == 100 && steps.last?.desc == "verified; installing")
        let downloading = steps.dropFirst().dropLast().map(\.step)
        #expect(downloading.count >= 5, "progress while downloading: \(steps)")
        #expect(downloading.allSatisfy { $0 % 10 == 0 && $0 > 1 && $0 < 100 }, "\(steps)")
        #expect(zip(downloading.dropFirst(), downloading).allSatisfy { $0 - $1 >= 10 }, "at most every 10 %: \(steps)")

        #expect(state.bytes("ota/staged") == binary, "the signed package is staged as it came")
        let ready = try #require(state.record("ota/staged.ready"))
        #expect(ready["version"] == "9.9.9" && ready["counter"] == "2" && ready["from"] == Agent.version)
        for name in ["package.part", "package.want", "candidate", "candidate.deb"] {
            #expect(!state.exists("ota/" + name), "ota/\(name) left behind")
        }
        #expect(!state.exists("ota/failed"))
    }

    /// The link drops a third of the way: the rest comes with Range as a 206, and the
    /// staged binary is whole.
    @Test func aCutDownloadResumesAndIsStaged() throws {
        let binary = signed(try #require(newWisp, "no C compiler to build the test's new wisp"))
        let cut = binary.count / 3
        let server = FakeHTTPServer(file: binary, script: [.cut(after: cut), .serve], clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(binary), out: &out)
        #expect(server.rangeStarts == [0, Int64(cut)])
        #expect(steps.last?.step == 100, "\(steps)")
        #expect(state.bytes("ota/staged") == binary)
    }

    @Test func aRefusedDownloadIsReportedAndNotRemembered() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, script: [.status(403)], clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.downloadFailed])
        #expect(steps.last?.desc.contains("HTTP 403") == true, "\(steps)")
        #expect(!steps.contains { $0.desc.contains("Signature") }, "the signed query stays out of the reports")
        nothingStaged()
        #expect(!state.exists("ota/failed"), "a download failure may be offered again (a fresh URL)")
    }

    /// An unsigned package (here a shell script that would print the right version) fails
    /// verification before anything of it runs, and is remembered.
    @Test func anUnsignedPackageFailsVerification() throws {
        let marker = state.file("ran")
        let script = Array("#!/bin/sh\ntouch \(marker)\necho 'wisp 9.9.9 (a script)'\n".utf8)
        let server = FakeHTTPServer(file: script, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(script), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.verificationFailed])
        #expect(steps.last?.desc.contains("unsigned") == true, "\(steps)")
        nothingStaged()
        #expect(!FileManager.default.fileExists(atPath: marker), "the package ran")
        #expect(state.record("ota/failed")?["version"] == "9.9.9")
    }

    /// Signed by someone else's key: refused before it runs; the same package passes with
    /// that key installed (the check is the key, not the file).
    @Test func aPackageSignedByAnotherKeyFailsVerification() throws {
        let binary = try #require(newWisp, "no C compiler to build the test's new wisp")
        let package = signed(binary, key: "other")
        let server = FakeHTTPServer(file: package, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(package), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.verificationFailed])
        #expect(steps.last?.desc.contains("signature") == true, "\(steps)")
        nothingStaged()
        try FileManager.default.removeItem(atPath: state.file("ota/failed"))
        let server2 = FakeHTTPServer(file: package, clock: clock)
        let (u2, d2) = updater(server2, publicKey: keys.file("other.pub"))
        var out2 = Outbox(topics: Platform.topics, log: Log())
        #expect(upgrade(u2, d2, server2, Self.offer(package), out: &out2).last?.step == 100)
    }

    /// The signed manifest must name what the platform offered: module and version.
    @Test(arguments: [("9.9.8", "wisp", "signed as version 9.9.8"), ("9.9.9", "modem", "signed for module modem")])
    func aSignedPackageForSomethingElseFailsVerification(version: String, module: String, words: String) throws {
        let binary = try #require(newWisp, "no C compiler to build the test's new wisp")
        let package = signed(binary, version: version, module: module)
        let server = FakeHTTPServer(file: package, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(package), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.verificationFailed])
        #expect(steps.last?.desc.contains(words) == true, "\(steps)")
        nothingStaged()
    }

    /// No publisher key on the board: nothing could be verified, so nothing is fetched,
    /// and the report names the fix.
    @Test func withoutAPublisherKeyNothingIsDownloaded() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server, publicKey: state.file("missing.pub"))
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file), out: &out)
        #expect(steps.map(\.step) == [OTAProgress.upgradeFailed])
        #expect(steps.last?.desc.contains("no publisher key at " + state.file("missing.pub")) == true, "\(steps)")
        #expect(steps.last?.desc.contains("ota_public_key") == true)
        #expect(server.opened == 0)
    }

    @Test func aBinaryThatNamesAnotherVersionFailsVerification() throws {
        let binary = signed(try #require(newWisp, "no C compiler to build the test's new wisp"), version: "9.9.10")
        let server = FakeHTTPServer(file: binary, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(binary, version: "9.9.10"), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.verificationFailed])
        #expect(steps.last?.desc.contains("says wisp 9.9.9") == true, "\(steps)")
        nothingStaged()
        #expect(state.record("ota/failed")?["version"] == "9.9.10")
    }

    @Test func aDigestMismatchFailsAndTheVersionIsRemembered() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file, sha256: digestOf(pattern(4096, seed: 9))), out: &out)
        #expect(steps.map(\.step) == [1, OTAProgress.verificationFailed])
        #expect(steps.last?.desc.contains("sha256 is " + hex(digestOf(file))) == true, "\(steps)")
        nothingStaged()
        let failed = try #require(state.record("ota/failed"))
        #expect(failed["version"] == "9.9.9" && failed["desc"]?.contains("sha256") == true)
    }

    /// The platform offers a pending upgrade again at every connect: one that failed here
    /// is refused at once, nothing downloaded.
    @Test func aVersionThatFailedBeforeIsRefusedAtOnce() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server)
        try FileManager.default.createDirectory(atPath: state.file("ota"), withIntermediateDirectories: true)
        state.write("ota/failed", "version = 9.9.9\ndesc = the new binary did not reach the platform\n")
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file), out: &out)
        #expect(steps.map(\.step) == [OTAProgress.upgradeFailed])
        #expect(steps.last?.desc.contains("already failed") == true, "\(steps)")
        #expect(server.opened == 0, "nothing downloaded")
    }

    /// Anyone on the path of a ws:// link could write the offer: refused, nothing fetched.
    @Test func anOfferOverAnUnauthenticatedLinkIsRefused() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server, endpoint: "ws://broker.example:80/mqtt")
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file), out: &out)
        #expect(steps.map(\.step) == [OTAProgress.upgradeFailed])
        #expect(steps.last?.desc.contains("allow_plaintext_control") == true, "\(steps)")
        #expect(server.opened == 0 && u.download == nil)
        #expect(!state.exists("ota"), "nothing written")
    }

    @Test func anOfferForAnotherModuleIsIgnored() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file, module: "modem-firmware"), out: &out)
        #expect(steps.isEmpty, "not ours: no report")
        #expect(server.opened == 0)
    }

    @Test func aPackageOverOtaMaxBytesIsRefused() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server, [("ota_max_bytes", "2048")])
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file), out: &out)
        #expect(steps.map(\.step) == [OTAProgress.upgradeFailed])
        #expect(steps.last?.desc.contains("ota_max_bytes (2048)") == true, "\(steps)")
        #expect(server.opened == 0)
    }

    @Test func theRunningVersionIsNotDownloadedAgain() throws {
        let file = pattern(4096)
        let server = FakeHTTPServer(file: file, clock: clock)
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        let steps = upgrade(u, d, server, Self.offer(file, version: Agent.version), out: &out)
        #expect(steps.isEmpty)
        #expect(server.opened == 0)
    }

    /// A new version is offered while another downloads: the new one is fetched and
    /// staged, and the first leaves nothing in the downloader (no slot held, no past
    /// deadline to wake the device's loop).
    @Test func aNewOfferDuringADownloadReplacesIt() throws {
        let binary = signed(try #require(newWisp, "no C compiler to build the test's new wisp"))
        let older = pattern(binary.count)
        let server = FakeHTTPServer(file: older, clock: clock)
        server.bytesPerTurn = binary.count / 10
        let (u, d) = updater(server)
        var out = Outbox(topics: Platform.topics, log: Log())
        Array(Self.offer(older, version: "9.9.8").utf8).withUnsafeBytes { u.offer($0, out: &out) }
        for _ in 0..<3 {
            server.tick()
            u.advance(out: &out)
            clock.advance(1)
        }
        server.file = binary
        let steps = upgrade(u, d, server, Self.offer(binary), out: &out)
        #expect(steps.last?.step == 100, "\(steps)")
        #expect(state.record("ota/staged.ready")?["version"] == "9.9.9")
        #expect(d.isIdle, "the first download was left in the downloader")
        #expect(d.deadline == UInt64.max)
    }

    // MARK: CONNACK

    /// At every CONNACK: this version reported and the pending upgrade asked for, both
    /// replies (sent now or not at all).
    @Test func eachConnectReportsTheVersionAndAsksForAnUpgrade() throws {
        let (u, _) = updater(FakeHTTPServer(file: [], clock: clock))
        var out = Outbox(topics: Platform.topics, log: Log())
        u.online(out: &out)
        #expect(out.messages.map(\.topic) == ["/ota/device/inform/a1PK/board-7", try #require(Platform.topics.firmwareGet)])
        #expect(out.messages.allSatisfy { !$0.waits && $0.qos == .atMostOnce })
        let inform = decoded(out, out.messages[0])["params"] as? [String: Any]
        #expect(inform?["version"] as? String == Agent.version && inform?["module"] as? String == "wisp")
        #expect(decoded(out, out.messages[1])["method"] as? String == "thing.ota.firmware.get")
        #expect(!state.exists("ota"), "no upgrade ever: nothing written")
    }

    /// The root step left its verdict: a rollback is reported once (-1), the version
    /// remembered as failed, and this version confirmed in `running`.
    @Test func theRootStepsVerdictIsReportedOnceAndAFailureRemembered() throws {
        let (u, _) = updater(FakeHTTPServer(file: [], clock: clock))
        try FileManager.default.createDirectory(atPath: state.file("ota"), withIntermediateDirectories: true)
        state.write("ota/result", "version = 9.9.9\nstep = -1\ndesc = rolled back: the new binary did not reach the platform\n")
        var out = Outbox(topics: Platform.topics, log: Log())
        u.online(out: &out)
        let reports = out.messages.filter { $0.topic == progressTopic }
        #expect(reports.count == 1 && reports.allSatisfy(\.waits))
        let o = out
        #expect(reports.map { progress(o, $0).step } == [-1])
        #expect(reports.first.map { progress(o, $0).desc } == "rolled back: the new binary did not reach the platform")
        #expect(state.record("ota/failed")?["version"] == "9.9.9")
        #expect(state.record("ota/running")?["version"] == Agent.version)
        #expect(!state.exists("ota/result"), "reported once")

        var again = Outbox(topics: Platform.topics, log: Log())
        u.online(out: &again)
        #expect(!again.messages.contains { $0.topic == progressTopic }, "not reported at the next connect")
    }

    @Test func aSuccessfulUpgradeIsReportedAs100() throws {
        let (u, _) = updater(FakeHTTPServer(file: [], clock: clock))
        try FileManager.default.createDirectory(atPath: state.file("ota"), withIntermediateDirectories: true)
        state.write("ota/result", "version = \(Agent.version)\nstep = 100\ndesc = upgraded\n")
        var out = Outbox(topics: Platform.topics, log: Log())
        u.online(out: &out)
        let o = out
        #expect(out.messages.filter { $0.topic == progressTopic }.map { progress(o, $0).step } == [100])
        #expect(!state.exists("ota/failed") && !state.exists("ota/result"))
    }
}

