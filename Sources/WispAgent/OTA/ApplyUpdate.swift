import CWispPlatform
import WispCore

/// `wisp apply-update`: the root-owned step of an OTA upgrade (wisp-update.service, started
/// by wisp-update.path when the service stages a package). The service itself cannot write
/// /usr; this step can, and does only this:
///
/// 1. re-checks the staged binary (sha256 from staged.ready, an ELF for this machine);
/// 2. keeps the running binary as `BINARY.previous` and writes the journal `applying`;
/// 3. copies the new binary over `BINARY` (temp file, fsync, rename: never half a binary);
/// 4. restarts wisp and waits `ota_confirm_seconds` for it to write `running` with the new
///    version (it does at CONNACK), or until systemd has restarted it three times
///    (`NRestarts`: it keeps exiting);
/// 5. confirmed: removes the journal and the staged files. Not confirmed: copies the
///    previous binary back, leaves `result` (progress -1 and why) for the old wisp to report,
///    and restarts it.
///
/// The journal decides after a power cut: without it, BINARY is the old binary (or the
/// staged package was never taken) and a present staged.ready starts over; with it, a trial
/// was running, and the step resumes it: BINARY is made the new binary again and gets a
/// fresh confirmation window, then stays or is rolled back. Every write is a rename of a
/// synced file, so BINARY is always one whole binary, old or new.
public struct ApplyUpdate {
    let log: Log
    let board: Board

    public init(log: Log, board: Board) {
        self.log = log
        self.board = board
    }

    public func run(configPath: String, systemctl: String) -> ExitCode {
        guard let device = load(configPath) else { return .configuration }
        guard let binary = OTAFiles.selfPath else {
            log.error("apply-update: cannot find the running binary (/proc/self/exe)")
            return .failure
        }
        let files = OTAFiles(stateDir: device.stateDir)
        let previous = binary + ".previous"
        // A reboot the platform asked for (allow_reboot), unless an upgrade is on trial: the
        // request stays until the trial ends.
        if wisp_file_mode(files.reboot) >= 0 && wisp_file_mode(files.applying) < 0 {
            _ = wisp_unlink(files.reboot)
            guard device.allowReboot else {
                log.warning("apply-update: a reboot request, but the key file has allow_reboot = false; ignored")
                return .ok
            }
            log.warning("apply-update: rebooting the board, as the platform asked")
            let r = System.run(systemctl, ["--no-block", "reboot"], timeoutMillis: 30_000)
            return r.status == 0 ? .ok : .failure
        }
        var version: String
        var sha: [UInt8]
        var from: String
        var debSha: [UInt8]?
        var resuming = false
        if let journal = StateStore.read(files.applying), let v = journal["version"], let s = journal["sha256"].flatMap({ Hex.decode($0) }) {
            version = v
            sha = s
            from = journal["from"] ?? "the previous version"
            debSha = journal["deb_sha256"].flatMap { Hex.decode($0) }
            resuming = true
            log.info("apply-update: resuming the trial of version " + version + " (interrupted, e.g. by a power cut)")
        } else {
            guard let ready = StateStore.read(files.ready) else {
                log.info("apply-update: nothing staged in " + files.dir)
                return .ok
            }
            guard let v = ready["version"], OTAOffer.isVersion(v), let s = ready["sha256"].flatMap({ Hex.decode($0) }), s.count == 32 else {
                return refuse(files, version: ready["version"] ?? "?", step: OTAProgress.verificationFailed, "staged.ready is not a complete record")
            }
            version = v
            sha = s
            from = ready["from"] ?? "the previous version"
            debSha = ready["deb_sha256"].flatMap { Hex.decode($0) }
            if let why = check(files.staged, sha: sha) {
                return refuse(files, version: version, step: OTAProgress.verificationFailed, why)
            }
            if let e = StateStore.copy(binary, to: previous, mode: 0o755) {
                return refuse(files, version: version, step: OTAProgress.writingFailed, "cannot keep the running binary as " + previous + ": " + e.message)
            }
            var journal = StateRecord()
            journal["version"] = version
            journal["sha256"] = Hex.encode(sha)
            journal["from"] = from
            journal["previous"] = previous
            if let debSha { journal["deb_sha256"] = Hex.encode(debSha) }
            if let e = StateStore.write(journal, to: files.applying, mode: 0o644) {
                return refuse(files, version: version, step: OTAProgress.writingFailed, "cannot write the journal " + files.applying + ": " + e.message)
            }
        }
        // BINARY becomes the new binary (again, when resuming after a cut before the rename).
        if Crypto.digest(file: binary, .sha256) != sha {
            if let why = check(files.staged, sha: sha) {
                return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl, why: "the staged binary is gone or changed: " + why)
            }
            if let debSha, dpkgOwns(binary) {
                // Installed from the .deb: dpkg installs the new one (its own atomic renames).
                guard Crypto.digest(file: files.stagedDeb, .sha256) == debSha else {
                    return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl, why: "the staged .deb is gone or changed")
                }
                let r = System.run("/usr/bin/dpkg", ["-i", files.stagedDeb], timeoutMillis: 600_000)
                if r.status != 0 {
                    return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl, why: "dpkg -i failed with status \(r.status)")
                }
                log.info("apply-update: dpkg installed the package of version " + version)
            } else if let e = StateStore.copy(files.staged, to: binary, mode: 0o755) {
                return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl, why: "cannot install " + binary + ": " + e.message)
            }
        }
        log.info("apply-update: installed version " + version + " as " + binary + " (" + from + " kept as " + previous + ")")
        if resuming, StateStore.read(files.running)?["version"]?.equals(version) == true {
            return confirmed(files, version: version)
        }
        _ = wisp_unlink(files.running)
        restart(systemctl)
        let seconds = device.otaConfirmSeconds
        log.info("apply-update: waiting up to \(seconds) s for version " + version + " to reach the platform")
        let deadline = System.monotonicMillis + UInt64(seconds) * 1000
        var baseline = restarts(systemctl)
        var polls = 0
        while System.monotonicMillis < deadline {
            System.sleep(milliseconds: 250)
            if StateStore.read(files.running)?["version"]?.equals(version) == true {
                return confirmed(files, version: version)
            }
            polls += 1
            // A binary that keeps exiting is not waited for: systemd counts its restarts.
            if polls % 4 == 0, let now = restarts(systemctl) {
                if let b = baseline, now >= b {
                    if now - b >= ApplyUpdate.crashLimit {
                        return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl,
                                        why: "version " + version + " exited \(now - b) times without reaching the platform; rolled back to " + from)
                    }
                } else {
                    baseline = now
                }
            }
        }
        return rollBack(files, binary: binary, previous: previous, version: version, systemctl: systemctl,
                        why: "version " + version + " did not reach the platform within \(seconds) s (ota_confirm_seconds); rolled back to " + from)
    }

    /// The key file's settings (state_dir, ota_confirm_seconds, allow_reboot), or nil after
    /// saying why not.
    func load(_ path: String) -> DeviceConfig? {
        switch ConfigLoader.load(path, log: log, board: board) {
        case .success(let l): return l.device
        case .failure(let e):
            log.error(e.message)
            return nil
        }
    }

    /// Why the staged binary may not be installed, or nil.
    func check(_ path: String, sha: [UInt8]) -> String? {
        guard let digest = Crypto.digest(file: path, .sha256) else { return "cannot read " + path }
        guard digest == sha else { return "the staged binary's sha256 is " + Hex.encode(digest) + ", staged.ready says " + Hex.encode(sha) }
        guard let new = OTAFiles.elf(path) else { return "the staged file is not an ELF executable" }
        if let mine = OTAFiles.selfPath.flatMap({ OTAFiles.elf($0) }), mine != new {
            return "the staged binary is " + new.description + ", this board runs " + mine.description
        }
        return nil
    }

    /// Whether `binary` is a file of an installed Debian package (the .deb from scripts/package).
    func dpkgOwns(_ binary: String) -> Bool {
        guard wisp_file_mode("/usr/bin/dpkg-query") >= 0 else { return false }
        return System.run("/usr/bin/dpkg-query", ["-S", binary], timeoutMillis: 30_000).status == 0
    }

    func confirmed(_ files: OTAFiles, version: String) -> ExitCode {
        log.info("apply-update: version " + version + " reached the platform; upgrade complete")
        finish(files)
        return .ok
    }

    /// The package is refused before anything was replaced.
    func refuse(_ files: OTAFiles, version: String, step: Int, _ why: String) -> ExitCode {
        log.error("apply-update: " + why + "; nothing installed")
        leaveResult(files, version: version, step: step, why)
        finish(files)
        return .failure
    }

    func rollBack(_ files: OTAFiles, binary: String, previous: String, version: String, systemctl: String, why: String) -> ExitCode {
        log.error("apply-update: " + why)
        if let e = StateStore.copy(previous, to: binary, mode: 0o755) {
            // BINARY is still whole (the new one); keep the journal so the next start retries.
            log.error("apply-update: cannot restore " + previous + ": " + e.message + "; the journal stays for the next attempt")
            return .failure
        }
        leaveResult(files, version: version, step: OTAProgress.upgradeFailed, why)
        finish(files)
        restart(systemctl)
        return .failure
    }

    func leaveResult(_ files: OTAFiles, version: String, step: Int, _ why: String) {
        var result = StateRecord()
        result["version"] = version
        result["step"] = "\(step)"
        result["desc"] = why
        if let e = StateStore.write(result, to: files.result, mode: 0o644) {
            log.warning("apply-update: cannot leave the result for the platform: " + e.message)
        }
    }

    /// The journal goes first: without it a repeated step starts from staged.ready, or finds nothing.
    func finish(_ files: OTAFiles) {
        _ = wisp_unlink(files.applying)
        _ = wisp_sync_dir(files.dir)
        _ = wisp_unlink(files.ready)
        _ = wisp_unlink(files.staged)
        _ = wisp_unlink(files.stagedDeb)
    }

    /// Restarts of the new binary that mean it will not come up.
    static let crashLimit = 3

    /// How often systemd restarted wisp after it exited (`NRestarts`), or nil.
    func restarts(_ systemctl: String) -> Int? {
        let r = System.run(systemctl, ["show", "--property=NRestarts", "wisp.service"], timeoutMillis: 10_000)
        guard r.status == 0, r.output.startsWith("NRestarts=") else { return nil }
        let value = r.output.utf8.dropFirst(10).prefix { $0 != UInt8(ascii: "\n") }
        return DecimalScan.whole(DecimalScan.trimmed(Array(value))).flatMap { Int(exactly: $0) }
    }

    func restart(_ systemctl: String) {
        let r = System.run(systemctl, ["--no-block", "restart", "wisp.service"], timeoutMillis: 30_000)
        if r.status != 0 { log.warning("apply-update: " + systemctl + " restart wisp.service: status \(r.status)") }
    }

    /// `wisp ota status`: what the OTA files say, for a person at the board.
    public func status(configPath: String) -> ExitCode {
        guard let device = load(configPath) else { return .configuration }
        let files = OTAFiles(stateDir: device.stateDir)
        System.out("version: " + Agent.version + " (module " + device.otaModule + ")")
        System.out("state: " + files.dir + (files.exists ? "" : " (none yet)"))
        if let want = StateStore.read(files.want) {
            let have = max(0, wisp_file_size(files.part))
            System.out("downloading: version " + (want["version"] ?? "?") + ", \(have) of " + (want["size"] ?? "?") + " bytes")
        }
        if let ready = StateStore.read(files.ready) {
            System.out("staged: version " + (ready["version"] ?? "?") + " (sha256 " + (ready["sha256"] ?? "?") + "), waiting for wisp-update.service")
        }
        if let journal = StateStore.read(files.applying) {
            System.out("installing: version " + (journal["version"] ?? "?") + " on trial; previous binary " + (journal["previous"] ?? "?"))
        }
        if let running = StateStore.read(files.running) {
            System.out("last connected: version " + (running["version"] ?? "?"))
        }
        if let result = StateStore.read(files.result) {
            System.out("last result: version " + (result["version"] ?? "?") + " step " + (result["step"] ?? "?") + ": " + (result["desc"] ?? ""))
        } else if wisp_file_mode(files.applying) < 0 && wisp_file_mode(files.ready) < 0 {
            System.out("last result: none pending")
        }
        return .ok
    }
}
