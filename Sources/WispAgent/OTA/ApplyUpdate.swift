import CWispPlatform
import WispCore

/// `wisp apply-update`: the root step of an OTA upgrade (wisp-update.service, started by
/// wisp-update.path when the service stages a package). It trusts nothing the service user
/// wrote: `state_dir/ota` is read only as a cue, through a descriptor opened without
/// following links, and the staged package is copied into root's own directory
/// (`--update-dir`, default /var/lib/wisp-update, 0700) where the publisher's signature is checked on the copy. It parses
/// no secret: its settings are the board settings (board.conf), root's file.
///
/// 1. takes `staged` into update dir/package; verifies the signature with the board's
///    public key, the architecture, the security counter (not below the installed one) and,
///    for a .deb, that it is the `wisp` package for this architecture;
/// 2. keeps the installed binary as update dir/previous and writes the journal `trial`;
/// 3. installs the new binary over BINARY (temp file, fsync, rename), or lets dpkg install
///    the .deb on a board installed from the .deb;
/// 4. restarts wisp and waits `ota_confirm_seconds` for it to write `running` with the new
///    version (it does at CONNACK), or until systemd has restarted it three times;
/// 5. confirmed: records the version and counter as installed and clears its directory.
///    Not confirmed: writes the journal `rolling-back`, copies the previous binary back,
///    leaves `result` (progress -1 and why) for the old wisp to report, and restarts it.
///
/// The journal decides after a power cut: `trial` resumes the trial (BINARY is made the new
/// binary again and gets a fresh window), `rolling-back` finishes the rollback. It runs from
/// a binary OTA does not replace (the package's /usr/lib/wisp/wisp-update), so a new
/// version never judges its own trial as root.
public struct ApplyUpdate {
    let log: Log
    let settings: BoardSettings
    let stateDir: String
    /// Root's own directory (0700): the package it checks, the binary it may roll back to,
    /// its journal, the installed security counter.
    let updateDir: String
    /// The binary an upgrade replaces (wisp.service's).
    let binary: String
    let systemctl: String
    /// This installer's own path (before dpkg may replace it).
    let installer: String?

    public init(log: Log, settings: BoardSettings, stateDir: String, updateDir: String, binary: String, systemctl: String) {
        self.log = log
        self.settings = settings
        self.stateDir = stateDir
        self.updateDir = updateDir
        self.binary = binary
        self.systemctl = systemctl
        installer = OTAFiles.selfPath
    }

    /// The files in update dir.
    static let package = "package", newBinary = "new", newDeb = "new.deb", previous = "previous", journal = "journal", installed = "installed",
               installer = "installer", newInstaller = "new-installer"
    /// Everything a trial leaves in the update dir but the record of what is installed.
    static let trialFiles = [journal, package, newBinary, newDeb, previous, installer, newInstaller]

    /// Where the packaged unit keeps root's files (`--update-dir`).
    public static let defaultUpdateDir = "/var/lib/wisp-update"

    /// The largest package taken (the service's ota_max_bytes is at most this too).
    static let maxPackageBytes: Int64 = 1 << 30

    public func run() -> ExitCode {
        if let me = installer, me.equals(binary) {
            log.error("apply-update: runs from " + binary + ", the binary it replaces: run it from a copy OTA does not replace (the package's /usr/lib/wisp/wisp-update)")
            return .configuration
        }
        guard let update = rootDirectory() else { return .failure }
        defer { update.close() }
        let ota: OpenDirectory
        switch serviceDirectory() {
        case .success(let d?): ota = d
        case .success(nil):
            if update.record(ApplyUpdate.journal) == nil {
                log.info("apply-update: nothing staged (" + stateDir + "/ota does not exist)")
                return .ok
            }
            log.error("apply-update: a trial is recorded in " + updateDir + " but " + stateDir + "/ota is gone; rolling back")
            return rollBack(update, nil, version: update.record(ApplyUpdate.journal)?["version"] ?? "?", why: "the state directory disappeared during the trial")
        case .failure(let why):
            log.error("apply-update: " + why.message + "; nothing done")
            return .failure
        }
        defer { ota.close() }
        if let journal = update.record(ApplyUpdate.journal) {
            return resume(journal, update, ota)
        }
        if ota.exists(OTAFiles.rebootName) {
            ota.remove([OTAFiles.rebootName])
            return reboot()
        }
        guard ota.exists(OTAFiles.stagedName) else {
            if ota.exists(OTAFiles.readyName) {
                // A cue without a package: consumed, or the path unit would start this again and again.
                ota.remove([OTAFiles.readyName])
                log.warning("apply-update: " + ota.path + "/staged.ready without a package; removed")
            } else {
                log.info("apply-update: nothing staged in " + ota.path)
            }
            return .ok
        }
        return take(update, ota)
    }

    // MARK: the directories

    /// update dir, made if need be: root's, 0700, not a link.
    func rootDirectory() -> OpenDirectory? {
        _ = wisp_mkdir(updateDir, 0o700)
        switch OpenDirectory.open(updateDir) {
        case .failure(let e):
            log.error("apply-update: cannot open update dir " + updateDir + ": " + e.message)
            return nil
        case .success(let d):
            let me = TrustedFile.owners
            guard me.contains(d.owner), d.mode & 0o077 == 0 else {
                log.error("apply-update: update dir " + updateDir + " must belong to root with mode 0700 (it is uid \(d.owner), mode "
                          + KeyFileAccess.octal(d.mode) + ")")
                d.close()
                return nil
            }
            return d
        }
    }

    /// state_dir/ota, the service user's: opened without following a link, owned by
    /// state_dir's owner, writable by nobody else. nil when it does not exist.
    func serviceDirectory() -> Result<OpenDirectory?, OTARefusal> {
        guard case .success(let state) = OpenDirectory.open(stateDir) else { return .success(nil) }
        let owner = state.owner
        state.close()
        switch OpenDirectory.open(stateDir + "/ota") {
        case .failure(let e) where e.errno == 2: return .success(nil)
        case .failure(let e): return .failure(OTARefusal(0, "cannot open " + stateDir + "/ota without following links: " + e.message))
        case .success(let d):
            guard d.owner == owner, d.mode & 0o022 == 0 else {
                d.close()
                return .failure(OTARefusal(0, stateDir + "/ota belongs to uid \(d.owner) (state_dir to \(owner)) or is writable by others"))
            }
            return .success(d)
        }
    }

    // MARK: a new package

    func take(_ update: OpenDirectory, _ ota: OpenDirectory) -> ExitCode {
        let cue = ota.record(OTAFiles.readyName)
        let offered = cue?["version"].flatMap { OTAOffer.isVersion($0) ? $0 : nil } ?? "?"
        // The staged file becomes root's copy; the service's names are consumed either way.
        let copied: SystemError?
        switch ota.open(OTAFiles.stagedName) {
        case .failure(let e): copied = e
        case .success(let f):
            // The service user's own file, and only one name for it: a hard link to a file
            // of root's is not read (its words could reach `result`).
            copied = f.isRegular && f.links == 1 && f.owner == ota.owner
                ? update.copy(from: f.fd, to: ApplyUpdate.package, mode: 0o600, limit: ApplyUpdate.maxPackageBytes)
                : SystemError(errno: 22)
            _ = wisp_close(f.fd)
        }
        ota.remove([OTAFiles.stagedName, OTAFiles.readyName])
        if let copied {
            return refuse(update, ota, version: offered, step: OTAProgress.verificationFailed,
                          "cannot take the staged package (" + copied.message + "; it must be the service's own regular file, one link, at most 1 GiB)")
        }
        guard case .success(let f) = update.open(ApplyUpdate.package) else {
            return refuse(update, ota, version: offered, step: OTAProgress.writingFailed, "cannot read back " + updateDir + "/package")
        }
        defer { _ = wisp_close(f.fd) }
        let manifest: PackageManifest
        switch verified(f.fd) {
        case .failure(let why):
            return refuse(update, ota, version: offered, step: why.step, why.message)
        case .success(let m): manifest = m
        }
        let version = manifest.version
        if let why = refusal(manifest, update, package: f.fd) {
            return refuse(update, ota, version: version, step: OTAProgress.verificationFailed, why)
        }
        let payload = manifest.kind == .deb ? ApplyUpdate.newDeb : ApplyUpdate.newBinary
        if let e = SignedPackage.copyPayload(fd: f.fd, manifest: manifest, to: updateDir + "/" + payload, mode: 0o700) {
            return refuse(update, ota, version: version, step: OTAProgress.writingFailed, "cannot unpack the package: " + e.message)
        }
        var kind = manifest.kind
        if kind == .deb {
            if let why = debRefusal(updateDir + "/" + ApplyUpdate.newDeb) {
                return refuse(update, ota, version: version, step: OTAProgress.verificationFailed, why)
            }
            // A board installed without dpkg (scripts/install) takes the binary inside.
            if !dpkgOwns(binary) {
                if let why = unpackDeb() { return refuse(update, ota, version: version, step: OTAProgress.verificationFailed, why) }
                kind = .elf
            }
        }
        if kind == .elf, let why = sameMachine(updateDir + "/" + ApplyUpdate.newBinary) {
            return refuse(update, ota, version: version, step: OTAProgress.verificationFailed, why)
        }
        if let e = StateStore.copy(binary, to: updateDir + "/" + ApplyUpdate.previous, mode: 0o700) {
            return refuse(update, ota, version: version, step: OTAProgress.writingFailed, "cannot keep the installed binary: " + e.message)
        }
        var journal = StateRecord()
        journal["state"] = "trial"
        journal["version"] = version
        journal["counter"] = "\(manifest.counter)"
        journal["kind"] = kind == .deb ? "deb" : "elf"
        journal["from"] = cue?["from"].flatMap { OTAOffer.isVersion($0) ? $0 : nil } ?? "the previous version"
        if let e = update.write(journal, to: ApplyUpdate.journal) {
            return refuse(update, ota, version: version, step: OTAProgress.writingFailed, "cannot write the journal: " + e.message)
        }
        log.info("apply-update: version " + version + " (counter \(manifest.counter)) is signed by the publisher; installing")
        return trial(journal, update, ota, resuming: false)
    }

    /// The package on `fd` verified with the board's public key.
    func verified(_ fd: Int32) -> Result<PackageManifest, OTARefusal> {
        let pem: [UInt8]
        switch TrustedFile.read(settings.otaPublicKey, limit: 1024) {
        case .success(let k): pem = k
        case .failure(.missing):
            return .failure(OTARefusal(OTAProgress.upgradeFailed, "no publisher key at " + settings.otaPublicKey + " (ota_public_key in the board settings)"))
        case .failure(.refused(let why)):
            return .failure(OTARefusal(OTAProgress.upgradeFailed, "the publisher key is not trusted: " + why))
        }
        switch SignedPackage.verify(fd: fd, publicKeyPEM: pem) {
        case .success(let m): return .success(m)
        case .failure(let r): return .failure(OTARefusal((r.kind == .badKey) ? OTAProgress.upgradeFailed : OTAProgress.verificationFailed, r.message))
        }
    }

    /// Why a package signed by the publisher is still not installed here, or nil.
    func refusal(_ m: PackageManifest, _ update: OpenDirectory, package fd: Int32) -> String? {
        guard let installed = OTAFiles.elf(binary), let arch = PackageManifest.arch(of: installed) else {
            return "cannot read the installed binary " + binary
        }
        if !m.arch.equals(arch) { return "the package is built for " + m.arch + ", this board is " + arch }
        if !m.module.equals(settings.otaModule) { return "the package is signed for module " + m.module + ", the board installs " + settings.otaModule }
        // The floor: what root recorded at its last confirmed upgrade, or what the installed
        // binary carries (a board flashed or installed from the .deb has no record).
        let counter = max(update.record(ApplyUpdate.installed)?.integer("counter") ?? 0, OTAFiles.securityCounter(of: binary) ?? 0)
        if m.counter < counter { return "the package's security counter \(m.counter) is below the installed \(counter) (anti-rollback)" }
        return nil
    }

    func sameMachine(_ path: String) -> String? {
        guard let new = OTAFiles.elf(path) else { return "the payload is not an ELF executable" }
        if let mine = OTAFiles.elf(binary), mine != new { return "the payload is " + new.description + ", this board runs " + mine.description }
        return nil
    }

    /// A .deb is installed only as the `wisp` package built for this architecture.
    func debRefusal(_ path: String) -> String? {
        let name = System.run("/usr/bin/dpkg-deb", ["-f", path, "Package"], timeoutMillis: 30_000)
        let arch = System.run("/usr/bin/dpkg-deb", ["-f", path, "Architecture"], timeoutMillis: 30_000)
        let mine = System.run("/usr/bin/dpkg", ["--print-architecture"], timeoutMillis: 30_000)
        guard name.status == 0, arch.status == 0, mine.status == 0 else { return "dpkg-deb cannot read the .deb's control fields" }
        if !firstLine(name.output).equals("wisp") { return "the .deb is package " + LogText.escape(Array(firstLine(name.output).utf8.prefix(40))) + ", not wisp" }
        if !firstLine(arch.output).equals(firstLine(mine.output)) {
            return "the .deb is built for " + LogText.escape(Array(firstLine(arch.output).utf8.prefix(40))) + ", this board is " + firstLine(mine.output)
        }
        return nil
    }

    /// The .deb's usr/bin/wisp as update dir/new (the .deb was verified and is root's).
    func unpackDeb() -> String? {
        let tree = updateDir + "/deb"
        defer { _ = System.run("/bin/rm", ["-rf", tree], timeoutMillis: 30_000) }
        let r = System.run("/usr/bin/dpkg-deb", ["-x", updateDir + "/" + ApplyUpdate.newDeb, tree], timeoutMillis: 60_000)
        guard r.status == 0 else { return "dpkg-deb cannot unpack the .deb (status \(r.status))" }
        guard case .success(let dir) = OpenDirectory.open(tree + "/usr/bin") else { return "the .deb holds no usr/bin/wisp" }
        defer { dir.close() }
        guard case .success(let f) = dir.open("wisp") else { return "the .deb holds no usr/bin/wisp" }
        defer { _ = wisp_close(f.fd) }
        guard f.isRegular, case .success(let update) = OpenDirectory.open(updateDir) else { return "the .deb's usr/bin/wisp is not a file" }
        defer { update.close() }
        if let e = update.copy(from: f.fd, to: ApplyUpdate.newBinary, mode: 0o700, limit: ApplyUpdate.maxPackageBytes) {
            return "cannot take usr/bin/wisp from the .deb: " + e.message
        }
        return nil
    }

    func firstLine(_ s: String) -> String { String(decoding: s.utf8.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self) }

    // MARK: the trial

    /// Installs the journal's version (again, when resuming) and waits for its confirmation.
    func trial(_ journal: StateRecord, _ update: OpenDirectory, _ ota: OpenDirectory, resuming: Bool) -> ExitCode {
        let version = journal["version"] ?? "?"
        let from = journal["from"] ?? "the previous version"
        if journal["kind"]?.equals("deb") == true {
            if let why = installDeb(update) { return rollBack(update, ota, version: version, why: why) }
            log.info("apply-update: dpkg installed the package of version " + version)
        } else {
            let new = updateDir + "/" + ApplyUpdate.newBinary
            if Crypto.digest(file: binary, .sha256) != Crypto.digest(file: new, .sha256) {
                if let e = StateStore.copy(new, to: binary, mode: 0o755) {
                    return rollBack(update, ota, version: version, why: "cannot install " + binary + ": " + e.message)
                }
            }
            log.info("apply-update: installed version " + version + " as " + binary + " (" + from + " kept in " + updateDir + ")")
        }
        if resuming, ota.record(OTAFiles.runningName)?["version"]?.equals(version) == true {
            return confirmed(journal, update, ota)
        }
        ota.remove([OTAFiles.runningName])
        restart()
        let seconds = settings.otaConfirmSeconds
        log.info("apply-update: waiting up to \(seconds) s for version " + version + " to reach the platform")
        let deadline = System.monotonicMillis + UInt64(seconds) * 1000
        var baseline = restarts()
        var polls = 0
        while System.monotonicMillis < deadline {
            System.sleep(milliseconds: 250)
            if ota.record(OTAFiles.runningName)?["version"]?.equals(version) == true {
                return confirmed(journal, update, ota)
            }
            polls += 1
            // A binary that keeps exiting is not waited for: systemd counts its restarts.
            if polls % 4 == 0, let now = restarts() {
                if let b = baseline, now >= b {
                    if now - b >= ApplyUpdate.crashLimit {
                        return rollBack(update, ota, version: version, why: "version " + version + " exited \(now - b) times without reaching the platform; rolled back to " + from)
                    }
                } else {
                    baseline = now
                }
            }
        }
        return rollBack(update, ota, version: version,
                        why: "version " + version + " did not reach the platform within \(seconds) s (ota_confirm_seconds); rolled back to " + from)
    }

    /// dpkg -i of root's verified copy. dpkg writes all over the system, which this hardened
    /// unit cannot: systemd runs it in a unit of its own. The package replaces this
    /// installer too: the old one is put back until the trial is confirmed (a new version
    /// never judges its own trial), the new one kept for then. nil, or why it failed.
    func installDeb(_ update: OpenDirectory) -> String? {
        guard let me = installer else { return "cannot find the installer's own binary" }
        if let e = StateStore.copy(me, to: updateDir + "/" + ApplyUpdate.installer, mode: 0o700) {
            return "cannot keep the installer: " + e.message
        }
        let run = StateStore.directory(of: systemctl) + "/systemd-run"
        let r = System.run(run, ["--wait", "--collect", "--quiet", "--unit=wisp-update-dpkg", "/usr/bin/dpkg", "-i", updateDir + "/" + ApplyUpdate.newDeb],
                           timeoutMillis: 1_800_000)
        if r.status == -110 {
            // ETIMEDOUT: the client is gone, dpkg may not be: stopped before anything is rolled back.
            _ = System.run(systemctl, ["stop", "wisp-update-dpkg.service"], timeoutMillis: 120_000)
            return "dpkg -i did not finish within 30 minutes; stopped"
        }
        if r.status != 0 { return "dpkg -i failed with status \(r.status)" }
        if Crypto.digest(file: me, .sha256) != Crypto.digest(file: updateDir + "/" + ApplyUpdate.installer, .sha256) {
            if let e = StateStore.copy(me, to: updateDir + "/" + ApplyUpdate.newInstaller, mode: 0o700) {
                return "cannot keep the package's installer: " + e.message
            }
            if let e = StateStore.copy(updateDir + "/" + ApplyUpdate.installer, to: me, mode: 0o755) {
                return "cannot put the installer back for the trial: " + e.message
            }
        }
        return nil
    }

    /// After a power cut: a trial starts over with a fresh window; a rollback is finished.
    func resume(_ journal: StateRecord, _ update: OpenDirectory, _ ota: OpenDirectory) -> ExitCode {
        let version = journal["version"] ?? "?"
        if journal["state"]?.equals("rolling-back") == true {
            log.warning("apply-update: finishing the rollback of version " + version + " (interrupted, e.g. by a power cut)")
            return rollBack(update, ota, version: version, why: journal["why"] ?? "rolled back")
        }
        log.info("apply-update: resuming the trial of version " + version + " (interrupted, e.g. by a power cut)")
        return trial(journal, update, ota, resuming: true)
    }

    func confirmed(_ journal: StateRecord, _ update: OpenDirectory, _ ota: OpenDirectory) -> ExitCode {
        let version = journal["version"] ?? "?"
        var installed = StateRecord()
        installed["version"] = version
        installed["counter"] = journal["counter"] ?? "0"
        if let e = update.write(installed, to: ApplyUpdate.installed) {
            log.warning("apply-update: cannot record the installed counter: " + e.message)
        }
        _ = ota.write(installed, to: OTAFiles.installedName, mode: 0o644)
        // A .deb's own installer takes over once its version is confirmed.
        if let me = installer, wisp_file_mode(updateDir + "/" + ApplyUpdate.newInstaller) >= 0,
           let e = StateStore.copy(updateDir + "/" + ApplyUpdate.newInstaller, to: me, mode: 0o755) {
            log.warning("apply-update: cannot install the package's installer: " + e.message)
        }
        log.info("apply-update: version " + version + " reached the platform; upgrade complete")
        update.remove(ApplyUpdate.trialFiles)
        return .ok
    }

    /// The package is refused before anything was replaced.
    func refuse(_ update: OpenDirectory, _ ota: OpenDirectory, version: String, step: Int, _ why: String) -> ExitCode {
        log.error("apply-update: " + why + "; nothing installed")
        leaveResult(ota, version: version, step: step, why)
        update.remove([ApplyUpdate.package, ApplyUpdate.newBinary, ApplyUpdate.newDeb])
        return .failure
    }

    func rollBack(_ update: OpenDirectory, _ ota: OpenDirectory?, version: String, why: String) -> ExitCode {
        log.error("apply-update: " + why)
        var journal = update.record(ApplyUpdate.journal) ?? StateRecord()
        if journal["state"]?.equals("rolling-back") != true {
            journal["state"] = "rolling-back"
            journal["why"] = String(decoding: why.utf8.prefix(300).map { $0 < 0x20 ? 0x20 : $0 }, as: UTF8.self)
            if let e = update.write(journal, to: ApplyUpdate.journal) {
                log.warning("apply-update: cannot mark the journal rolling-back: " + e.message)
            }
        }
        if let e = StateStore.copy(updateDir + "/" + ApplyUpdate.previous, to: binary, mode: 0o755) {
            // BINARY is still whole (the new one); the journal stays for the next attempt.
            log.error("apply-update: cannot restore the previous binary: " + e.message + "; the journal stays for the next attempt")
            return .failure
        }
        if let ota { leaveResult(ota, version: version, step: OTAProgress.upgradeFailed, why) }
        update.remove(ApplyUpdate.trialFiles)
        restart()
        return .failure
    }

    func leaveResult(_ ota: OpenDirectory, version: String, step: Int, _ why: String) {
        var result = StateRecord()
        result["version"] = version
        result["step"] = "\(step)"
        result["desc"] = String(decoding: why.utf8.prefix(300).map { $0 < 0x20 ? 0x20 : $0 }, as: UTF8.self)
        if let e = ota.write(result, to: OTAFiles.resultName, mode: 0o644) {
            log.warning("apply-update: cannot leave the result for the platform: " + e.message)
        }
    }

    // MARK: the board

    /// A reboot the platform asked for, if the board settings allow it.
    func reboot() -> ExitCode {
        guard settings.allowReboot else {
            log.warning("apply-update: a reboot request, but the board settings do not allow it (allow_reboot = false in board.conf); ignored")
            return .ok
        }
        log.warning("apply-update: rebooting the board, as the platform asked")
        let r = System.run(systemctl, ["--no-block", "reboot"], timeoutMillis: 30_000)
        return r.status == 0 ? .ok : .failure
    }

    /// Whether `binary` is a file of an installed Debian package (the .deb from scripts/package).
    func dpkgOwns(_ binary: String) -> Bool {
        guard wisp_file_mode("/usr/bin/dpkg-query") >= 0 else { return false }
        return System.run("/usr/bin/dpkg-query", ["-S", binary], timeoutMillis: 30_000).status == 0
    }

    /// Restarts of the new binary that mean it will not come up.
    static let crashLimit = 3

    /// How often systemd restarted wisp after it exited (`NRestarts`), or nil.
    func restarts() -> Int? {
        let r = System.run(systemctl, ["show", "--property=NRestarts", "wisp.service"], timeoutMillis: 10_000)
        guard r.status == 0, r.output.startsWith("NRestarts=") else { return nil }
        let value = r.output.utf8.dropFirst(10).prefix { $0 != UInt8(ascii: "\n") }
        return DecimalScan.whole(DecimalScan.trimmed(Array(value))).flatMap { Int(exactly: $0) }
    }

    func restart() {
        let r = System.run(systemctl, ["--no-block", "restart", "wisp.service"], timeoutMillis: 30_000)
        if r.status != 0 { log.warning("apply-update: " + systemctl + " restart wisp.service: status \(r.status)") }
    }
}
