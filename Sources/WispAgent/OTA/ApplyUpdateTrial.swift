import CWispPlatform
import WispCore

/// The root step's second half: installing the verified package, waiting for the new version
/// to confirm itself, rolling back when it does not, and the board (reboot, restarts).
extension ApplyUpdate {
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
