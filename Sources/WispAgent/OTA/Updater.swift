import CWispPlatform
import WispCore

/// The service's side of an OTA upgrade: takes the platform's offer, downloads the package
/// (interleaved with telemetry in the device's loop), verifies it, and stages it for the
/// root-owned step (`wisp apply-update`, started by wisp-update.path). It never writes
/// outside `state_dir/ota`; the service keeps its hardening. Progress reports go through
/// the outbox (they wait there for the link).
final class Updater<T: Transport> {
    let device: DeviceConfig
    /// The board settings: where the publisher's public key is (and why they were refused).
    let board: Board
    let files: OTAFiles
    let downloader: Downloader<T>
    var package: OTAPackage?
    /// The package's transfer in the downloader.
    var download: Int?
    var lastStep = 0
    /// The last progress report, for the status file.
    private(set) var reported = OTAReport()
    let log: Log

    init(_ device: DeviceConfig, board: Board, downloader: Downloader<T>, log: Log) {
        self.device = device
        self.board = board
        self.log = log
        self.downloader = downloader
        files = OTAFiles(stateDir: device.stateDir)
    }

    var module: String { device.otaModule }

    // MARK: CONNACK

    /// At every CONNACK: the version report and `firmware.get` (the platform answers with a
    /// pending upgrade, if any), this version confirmed to a waiting root step, and its
    /// verdict on the last upgrade if it left one.
    func online(out: inout Outbox) {
        if let inform = out.topics.otaInform {
            OTAInform.write(id: out.nextId(), version: Agent.version, module: module, into: &out.json)
            out.send(inform, qos: .atMostOnce)  // as the platform's SDK does; takes no in-flight slot
        }
        if let get = out.topics.firmwareGet {
            FirmwareGet.write(id: out.nextId(), module: module, into: &out.json)
            out.send(get, qos: .atMostOnce)
        }
        guard files.exists else { return }
        var running = StateRecord()
        running["version"] = Agent.version
        if let e = StateStore.write(running, to: files.running, mode: 0o644) {
            log.warning("OTA: cannot write " + files.running + ": " + e.message + "; an upgrade to this version cannot be confirmed")
        }
        if let result = StateStore.read(files.result) {
            // The file is on disk: a step outside the platform's -4…100 is read as a failure.
            let recorded = result.integer("step") ?? Int64(OTAProgress.upgradeFailed)
            let step = recorded >= -4 && recorded <= 100 ? Int(recorded) : OTAProgress.upgradeFailed
            let desc = result["desc"] ?? "upgrade failed"
            if step < 0 {
                log.warning("OTA: the last upgrade (" + (result["version"] ?? "?") + ") failed: " + desc)
                if let v = result["version"] { remember(failed: v, desc) }
            }
            report(step, desc, out: &out)
            reported.version = result["version"] ?? ""
            _ = wisp_unlink(files.result)
        }
    }

    // MARK: offers

    /// An upgrade push or a firmware.get reply.
    func offer(_ payload: UnsafeRawBufferPointer, out: inout Outbox) {
        switch OTAOffer.parse(payload) {
        case .malformed(let why):
            log.warning("OTA: an upgrade message ignored: " + LogText.escape(Array(why.utf8)))
        case .nothing:
            log.debug("OTA: no upgrade pending")
        case .refused(let m, let why):
            guard let m, m.equals(module) else { return }
            log.error("OTA: upgrade refused: " + LogText.escape(Array(why.utf8)))
            report(OTAProgress.upgradeFailed, why, out: &out)
        case .package(let p):
            guard device.controlAllowed else {
                // Anyone on the path of a ws://, mqtt:// or tls_insecure link can write this
                // message: nothing it names is downloaded, let alone run.
                guard p.module.equals(module) else { return }
                let why = "upgrade refused over an unauthenticated link (ws://, mqtt:// or tls_insecure; allow_plaintext_control = false)"
                log.error("OTA: " + why)
                report(OTAProgress.upgradeFailed, why, out: &out)
                return
            }
            take(p, out: &out)
        }
    }

    func take(_ p: OTAPackage, out: inout Outbox) {
        guard p.module.equals(module) else {
            log.info("OTA: an upgrade for module " + LogText.escape(Array(p.module.utf8)) + " ignored (wisp is module " + module + ")")
            return
        }
        let version = LogText.escape(Array(p.version.utf8))
        if p.version.equals(Agent.version) {
            log.info("OTA: already running version " + version)
            return
        }
        if let current = package, current.version.equals(p.version), current.digest == p.digest {
            if let url = Endpoint(parsing: p.url, allowing: [.https, .http]), let id = download, let t = downloader.transfer(id) {
                t.url = url  // a fresh signed URL for the next resume
            }
            log.debug("OTA: upgrade to " + version + " already in progress")
            return
        }
        if let failed = StateStore.read(files.failed), failed["version"]?.equals(p.version) == true {
            // The platform offers a pending upgrade again at every connect: a version that
            // already failed here (verification, rollback) would fail again, in a loop.
            let why = "version " + p.version + " already failed on this board (" + (failed["desc"] ?? "") + "); not retried: upload a new version"
            log.warning("OTA: " + why)
            report(OTAProgress.upgradeFailed, why, out: &out)
            return
        }
        if let staged = StateStore.read(files.ready), staged["version"]?.equals(p.version) == true {
            log.info("OTA: version " + version + " is already verified and waiting for the installer")
            return
        }
        if !module.equals(board.settings.otaModule) {
            fail(OTAProgress.upgradeFailed, "the key file's ota_module is " + module + ", the board settings' " + board.settings.otaModule
                 + ": the root step installs only that module's packages (set ota_module in board.conf)", out: &out)
            return
        }
        if case .failure(let why) = publicKey() {
            // Nothing is downloaded that could not be verified.
            fail(OTAProgress.upgradeFailed, why.message, out: &out)
            return
        }
        guard p.size <= device.otaMaxBytes else {
            fail(OTAProgress.upgradeFailed, "the package has \(p.size) bytes, more than ota_max_bytes (\(device.otaMaxBytes))", out: &out)
            return
        }
        guard let url = Endpoint(parsing: p.url, allowing: [.https, .http]) else {
            fail(OTAProgress.downloadFailed, "the package URL is not https://host/path", out: &out)
            return
        }
        if url.scheme == .http && !device.tlsInsecure {
            fail(OTAProgress.downloadFailed, "the package URL is plain http://; wisp downloads over https:// (http only with tls_insecure = true)", out: &out)
            return
        }
        if let e = files.create() {
            fail(OTAProgress.writingFailed, "cannot create " + files.dir + ": " + e.message + " (state_dir)", out: &out)
            return
        }
        // A partial file of the same package (same version and digest) is continued.
        var want = StateRecord()
        want["version"] = p.version
        want["size"] = "\(p.size)"
        want["method"] = p.method.name
        want["digest"] = p.digestHex
        var resume: Int64 = 0
        if let old = StateStore.read(files.want), old == want {
            resume = max(0, wisp_file_size(files.part))
        } else {
            _ = wisp_unlink(files.part)
            if let e = StateStore.write(want, to: files.want) {
                fail(OTAProgress.writingFailed, "cannot write " + files.want + ": " + e.message, out: &out)
                return
            }
        }
        package = p
        lastStep = 0
        let id: Int
        do {
            id = try downloader.start("OTA", url: url, path: files.part, size: p.size, method: p.method, resumeFrom: resume)
        } catch {
            fail(error, out: &out)
            return
        }
        if let previous = download { downloader.cancel(previous) }  // another package's download: replaced
        download = id
        let from = resume > 0 ? ", resuming at byte \(resume)" : ""
        log.info("OTA: upgrade " + Agent.version + " → " + version + ": downloading \(p.size) bytes from "
                 + (downloader.transfer(id)?.shownURL ?? "?") + from)
        report(1, "downloading", out: &out)
    }

    // MARK: the download

    /// Advances the download; verifies and stages the file when it is complete.
    func advance(out: inout Outbox) {
        guard let id = download else { return }
        let percent = downloader.transfer(id)?.percent ?? 0
        switch downloader.advance(id) {
        case .working:
            let step = downloader.transfer(id)?.percent ?? percent
            if step >= lastStep + 10 && step < 100 {
                lastStep = step - step % 10
                report(lastStep, "downloading", out: &out)
            }
        case .failed(let error):
            download = nil
            fail(error, out: &out)
        case .done(let digest):
            download = nil
            verify(digest, out: &out)
        }
    }

    /// A download error as the platform's progress code: -4 when the board could not write
    /// it, -2 when the server or the link failed.
    func fail(_ error: DownloadError, out: inout Outbox) {
        if case .cannotWrite = error { fail(OTAProgress.writingFailed, error.message, out: &out) } else {
            fail(OTAProgress.downloadFailed, error.message, out: &out)
        }
    }

    /// The publisher's public key (board settings' ota_public_key), or why OTA is refused:
    /// without a key nothing can be verified, so nothing is taken.
    func publicKey() -> Result<[UInt8], OTARefusal> {
        if let why = board.settingsRefused { return .failure(OTARefusal(OTAProgress.upgradeFailed, "OTA refused: " + why)) }
        let path = board.settings.otaPublicKey
        switch TrustedFile.read(path, limit: 1024) {
        case .success(let pem): return .success(pem)
        case .failure(.missing):
            return .failure(OTARefusal(OTAProgress.upgradeFailed, "OTA refused: no publisher key at " + path
                + ": install the public key packages are signed with there (root-owned), or name it with ota_public_key in the board settings (README: Signed OTA packages)"))
        case .failure(.refused(let why)): return .failure(OTARefusal(OTAProgress.upgradeFailed, "OTA refused: the publisher key is not trusted: " + why))
        }
    }

    /// The platform's digest, then the publisher's signature, then the binary itself; on
    /// success the signed package is staged for the root step, which checks it all again.
    func verify(_ digest: [UInt8], out: inout Outbox) {
        guard let p = package else { return }
        guard digest == p.digest else {
            fail(OTAProgress.verificationFailed, "the package's " + p.method.name + " is " + Hex.encode(digest) + ", the platform announced " + p.digestHex, out: &out)
            return
        }
        let pem: [UInt8]
        switch publicKey() {
        case .success(let k): pem = k
        case .failure(let why):
            fail(why.step, why.message, out: &out)
            return
        }
        let fd = wisp_open_read(files.part)
        guard fd >= 0 else {
            fail(OTAProgress.writingFailed, "cannot read the download again: " + SystemError(errno: -fd).message, out: &out)
            return
        }
        defer { _ = wisp_close(fd) }
        // The signature first: nothing of the package runs before it is known to be the publisher's.
        let manifest: PackageManifest
        switch SignedPackage.verify(fd: fd, publicKeyPEM: pem) {
        case .success(let m): manifest = m
        case .failure(let refusal):
            fail((refusal.kind == .badKey) ? OTAProgress.upgradeFailed : OTAProgress.verificationFailed, refusal.message, out: &out)
            return
        }
        if let why = Updater.refusal(of: manifest, offered: p.version, module: module, installed: installedCounter) {
            fail(OTAProgress.verificationFailed, why, out: &out)
            return
        }
        var candidate = files.candidate
        if let e = SignedPackage.copyPayload(fd: fd, manifest: manifest, to: manifest.kind == .deb ? files.candidateDeb : candidate, mode: 0o700) {
            fail(OTAProgress.writingFailed, "cannot unpack the package: " + e.message, out: &out)
            return
        }
        if manifest.kind == .deb {
            let r = System.run("/usr/bin/dpkg-deb", ["-x", files.candidateDeb, files.debDir], timeoutMillis: 60_000)
            if r.status != 0 {
                fail(OTAProgress.verificationFailed, "dpkg-deb cannot unpack the .deb (status \(r.status))", out: &out)
                return
            }
            candidate = files.debDir + "/usr/bin/wisp"
        }
        if let why = Updater.check(candidate, version: p.version) {
            fail(OTAProgress.verificationFailed, why, out: &out)
            return
        }
        // The signed package as it came is what the root step takes (and verifies again).
        let r = wisp_rename(files.part, files.staged)
        if r < 0 {
            fail(OTAProgress.writingFailed, "cannot stage the package: " + SystemError(errno: -r).message, out: &out)
            return
        }
        var ready = StateRecord()
        ready["version"] = p.version
        ready["counter"] = "\(manifest.counter)"
        ready["from"] = Agent.version
        if let e = StateStore.write(ready, to: files.ready, mode: 0o644) {
            fail(OTAProgress.writingFailed, "cannot write " + files.ready + ": " + e.message, out: &out)
            return
        }
        cleanUp(keepStaged: true)
        package = nil
        log.info("OTA: version " + p.version + " downloaded and its signature verified (counter \(manifest.counter)); the installer (wisp-update.path) takes it from here")
        report(100, "verified; installing", out: &out)
    }

    /// The lowest security counter a package may have: this build's, or the one the root
    /// step recorded for the version it installed last, whichever is higher.
    var installedCounter: Int64 { max(Agent.securityCounter, StateStore.read(files.installed)?.integer("counter") ?? 0) }

    /// Why a package signed by the publisher is still not for this board, or nil.
    static func refusal(of m: PackageManifest, offered version: String, module: String, installed: Int64) -> String? {
        if !m.module.equals(module) { return "the package is signed for module " + m.module + ", not " + module }
        if !m.version.equals(version) { return "the package is signed as version " + m.version + ", the platform offered " + version }
        if let mine = OTAFiles.selfPath.flatMap({ OTAFiles.elf($0) }).flatMap({ PackageManifest.arch(of: $0) }), !m.arch.equals(mine) {
            return "the package is built for " + m.arch + ", this board is " + mine
        }
        if m.counter < installed { return "the package's security counter \(m.counter) is below the installed \(installed) (anti-rollback)" }
        return nil
    }

    /// Why `path` is not a wisp that can replace this one, or nil: an ELF for this machine
    /// whose `--version` runs and names `version`.
    static func check(_ path: String, version: String) -> String? {
        guard let new = OTAFiles.elf(path) else { return "the package is neither an ELF executable nor a .deb holding one" }
        if let mine = OTAFiles.selfPath.flatMap({ OTAFiles.elf($0) }), mine != new {
            return "the package is an " + new.description + " binary; this board runs " + mine.description
        }
        if wisp_chmod(path, 0o700) != 0 { return "cannot make the package executable" }
        let r = System.run(path, ["--version"], timeoutMillis: 10_000)
        guard r.status == 0 else {
            if r.status < 0 { return "the new binary did not run: " + SystemError(errno: -r.status).message }
            if r.status == 127 { return "the new binary could not be executed (exit 127)" }
            return "the new binary's --version exited with status \(r.status)"
        }
        guard r.output.startsWith("wisp " + version + " ") || r.output.startsWith("wisp " + version + "\n") else {
            return "the new binary says " + LogText.escape(Array(r.output.utf8.prefix(80))) + ", not version " + version
        }
        return nil
    }

    func fail(_ step: Int, _ why: String, out: inout Outbox) {
        log.error("OTA: upgrade failed: " + why)
        if step == OTAProgress.verificationFailed, let p = package { remember(failed: p.version, why) }
        report(step, why, out: &out)
        if let id = download { downloader.cancel(id) }
        download = nil
        package = nil
        cleanUp(keepStaged: false)
    }

    func cleanUp(keepStaged: Bool) {
        _ = wisp_unlink(files.part)
        _ = wisp_unlink(files.want)
        _ = wisp_unlink(files.candidate)
        _ = wisp_unlink(files.candidateDeb)
        if !keepStaged {
            // The cue goes with the package: the path unit would start the root step for nothing.
            _ = wisp_unlink(files.ready)
            _ = wisp_unlink(files.staged)
        }
        if wisp_file_mode(files.debDir) >= 0 { _ = System.run("/bin/rm", ["-rf", files.debDir], timeoutMillis: 30_000) }
    }

    /// Keeps the version that failed, so the platform's next offer of it is refused at once.
    func remember(failed version: String, _ why: String) {
        var r = StateRecord()
        r["version"] = version
        r["desc"] = String(decoding: why.utf8.prefix(200).map { $0 < 0x20 ? 0x20 : $0 }, as: UTF8.self)
        _ = StateStore.write(r, to: files.failed)
    }

    /// A progress report: waits in the outbox for the link (QoS 0, as the SDK does).
    func report(_ step: Int, _ desc: String, out: inout Outbox) {
        reported = OTAReport(count: reported.count + 1, step: step, version: package?.version ?? "", desc: desc)
        guard let topic = out.topics.otaProgress else { return }
        OTAProgress.write(id: out.nextId(), step: step, desc: desc, module: module, into: &out.json)
        out.send(topic, qos: .atMostOnce, waits: true)
    }
}
