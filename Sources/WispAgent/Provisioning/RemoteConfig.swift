import CWispPlatform
import WispCore

/// The device's side of remote config: takes the platform's push (or the reply to its
/// `thing.config.get` at connect), downloads the file with the OTA `Download` (HTTPS, the
/// link's CA bundle, in the device's loop), checks its sha256, validates it as a fragment
/// over this key file (only `KeyFile.remotelySettable` keys), keeps it in
/// `state_dir/remote.conf` and hands the device the new settings to apply as SIGHUP would.
/// Anything wrong keeps the running settings and answers the push with the reason.
final class RemoteConfig {
    let loaded: LoadedConfig
    var download: Download?
    var file: ConfigFile?
    /// The push being answered ("" for a get reply, which needs no answer).
    var pushId = ""
    var replies: [(code: Int64, id: String, message: String)] = []
    /// Validated and kept: the device reloads with it.
    var ready: LoadedConfig?

    init(_ loaded: LoadedConfig) { self.loaded = loaded }

    var part: String { loaded.device.stateDir + "/remote.part" }

    var poll: (fd: Int32, events: Int32) {
        guard let download else { return (-1, 0) }
        return (download.descriptor, download.events)
    }

    var deadline: UInt64 { download?.deadline ?? UInt64.max }

    func offer(_ json: JSONReader, push: Bool) {
        let id = push ? ConfigFile.requestId(json) : ""
        switch ConfigFile.parse(json) {
        case .nothing:
            Log.debug("remote config: none for this product")
        case .refused(let why):
            Log.warning("remote config refused: " + why)
            if push { replies.append((460, id, "request parameter error: " + why)) }
        case .file(let f):
            if let current = loaded.remoteConfigId, current.equals(f.configId) {
                Log.debug("remote config " + f.configId + " is the one in force")
                if push { replies.append((200, id, "success")) }
                return
            }
            guard loaded.device.controlAllowed else {
                Log.warning("remote config " + f.configId + " refused: it arrived over a link anyone on the path could write to (allow_plaintext_control)")
                if push { replies.append((403, id, "remote config refused over an unauthenticated link")) }
                return
            }
            guard let url = Endpoint(parsing: f.url, allowing: [.https, .http]), url.scheme == .https || loaded.device.tlsInsecure else {
                if push { replies.append((460, id, "request parameter error: the config URL is not https://")) }
                return
            }
            let made = wisp_mkdir(loaded.device.stateDir, 0o700)
            do throws(DownloadError) {
                if made < 0 { throw DownloadError(step: 0, why: "cannot create state_dir: " + SystemError(errno: -made).message) }
                download = try Download(url: url, device: loaded.device, path: part, size: f.size, method: .sha256, resumeFrom: 0)
            } catch {
                Log.error("remote config " + f.configId + ": " + error.why)
                if push { replies.append((400, id, "request error: " + error.why)) }
                return
            }
            file = f
            pushId = id
            Log.info("remote config " + f.configId + ": downloading \(f.size) bytes from " + download!.shownURL)
        }
    }

    func advance(now: UInt64) {
        guard let d = download, let f = file else { return }
        switch d.advance(now: now) {
        case .working:
            return
        case .failed(_, let why):
            end(400, "request error: download failed: " + why)
        case .done(let digest):
            download = nil
            guard digest == f.sha256 else {
                end(460, "request parameter error: the file's sha256 is " + Hex.encode(digest) + ", the push said " + Hex.encode(f.sha256))
                return
            }
            guard let text = System.readText(part, limit: Int(ConfigFile.maxBytes)) else {
                end(400, "request error: cannot read the downloaded file")
                return
            }
            let candidate = text + (text.endsWith("\n") || text.isEmpty ? "" : "\n") + "# configId = " + f.configId + "\n"
            switch ConfigLoader.load(loaded.path, remote: candidate) {
            case .failure(.invalid(_, let e)):
                end(460, "request parameter error: " + e.message)
            case .failure(let e):
                end(400, "request error: " + e.message)
            case .success(let next):
                if let e = UpdateFiles.write(Array(candidate.utf8), to: ConfigLoader.remotePath(loaded.device)) {
                    end(400, "request error: cannot keep the config: " + e.message)
                    return
                }
                Log.info("remote config " + f.configId + " applied; reconnecting with the new settings")
                ready = next
                end(200, "success")
            }
        }
    }

    func end(_ code: Int64, _ message: String) {
        if code != 200 { Log.error("remote config " + (file?.configId ?? "?") + ": " + message + "; keeping the running settings") }
        if !pushId.isEmpty { replies.append((code, pushId, message)) }
        _ = wisp_unlink(part)
        download = nil
        file = nil
    }
}
