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
}
