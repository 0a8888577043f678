import CWispPlatform
import WispCore

/// The device's side of remote config: takes the platform's push (or the reply to its
/// `thing.config.get` at connect), downloads the file with the `Downloader` (HTTPS, the
/// link's CA bundle, in the device's loop), checks its sha256, validates it as a fragment
/// over this key file (only `KeyFile.remotelySettable` keys), keeps it in
/// `state_dir/remote.conf` and hands the device the new settings to apply as SIGHUP would.
/// Anything wrong keeps the running settings and answers the push with the reason (the
/// answers wait in the outbox for the link).
final class RemoteConfig<T: Transport> {
    let loaded: LoadedConfig
    let downloader: Downloader<T>
    /// The file's transfer in the downloader.
    var download: Int?
    var file: ConfigFile?
    /// The push being answered ("" for a get reply, which needs no answer).
    var pushId = ""
    let log: Log

    init(_ loaded: LoadedConfig, downloader: Downloader<T>, log: Log) {
        self.loaded = loaded
        self.log = log
        self.downloader = downloader
    }

    var part: String { loaded.device.stateDir + "/remote.part" }

    /// At CONNACK: asks for the product's config (`thing.config.get`).
    func online(out: inout Outbox) {
        ConfigFile.writeGet(id: out.nextId(), into: &out.json)
        out.send(out.topics.configGet, qos: .atMostOnce)
    }

    /// A push (answered) or the reply to our get (not answered).
    func handle(_ payload: UnsafeRawBufferPointer, push: Bool, out: inout Outbox) {
        guard let json = try? JSONReader(payload) else {
            log.warning("remote config: a message that is not JSON ignored")
            return
        }
        offer(json, push: push, out: &out)
    }

    func reply(_ code: Int64, _ id: String, _ message: String, out: inout Outbox) {
        ConfigFile.writePushReply(code: code, id: id, message: message, into: &out.json)
        out.send(out.topics.configPushReply, qos: .atMostOnce, waits: true)
    }

    func offer(_ json: JSONReader, push: Bool, out: inout Outbox) {
        let id = push ? ConfigFile.requestId(json) : ""
        switch ConfigFile.parse(json) {
        case .nothing:
            log.debug("remote config: none for this product")
        case .refused(let why):
            log.warning("remote config refused: " + why)
            if push { reply(460, id, "request parameter error: " + why, out: &out) }
        case .file(let f):
            if let current = loaded.remoteConfigId, current.equals(f.configId) {
                log.debug("remote config " + f.configId + " is the one in force")
                if push { reply(200, id, "success", out: &out) }
                return
            }
            guard loaded.device.controlAllowed else {
                log.warning("remote config " + f.configId + " refused: it arrived over a link anyone on the path could write to (allow_plaintext_control)")
                if push { reply(403, id, "remote config refused over an unauthenticated link", out: &out) }
                return
            }
            guard let url = Endpoint(parsing: f.url, allowing: [.https, .http]), url.scheme == .https || loaded.device.tlsInsecure else {
                if push { reply(460, id, "request parameter error: the config URL is not https://", out: &out) }
                return
            }
            let made = wisp_mkdir(loaded.device.stateDir, 0o700)
            do throws(DownloadError) {
                if made < 0 { throw .cannotWrite("cannot create state_dir: " + SystemError(errno: -made).message) }
                let transfer = try downloader.start("remote config", url: url, path: part, size: f.size, method: .sha256, resumeFrom: 0)
                if let previous = download { downloader.cancel(previous) }  // the download this offer replaces
                download = transfer
            } catch {
                log.error("remote config " + f.configId + ": " + error.message)
                if push { reply(400, id, "request error: " + error.message, out: &out) }
                return
            }
            file = f
            pushId = id
            log.info("remote config " + f.configId + ": downloading \(f.size) bytes from " + (downloader.transfer(download!)?.shownURL ?? "?"))
        }
    }

    /// Advances the download; validates and keeps the file when it is complete. The new
    /// settings, once: the device reloads with them (after the push reply went out).
    func advance(out: inout Outbox) -> LoadedConfig? {
        guard let id = download, let f = file else { return nil }
        switch downloader.advance(id) {
        case .working:
            return nil
        case .failed(let error):
            download = nil
            end(400, "request error: download failed: " + error.message, out: &out)
        case .done(let digest):
            download = nil
            guard digest == f.sha256 else {
                end(460, "request parameter error: the file's sha256 is " + Hex.encode(digest) + ", the push said " + Hex.encode(f.sha256), out: &out)
                return nil
            }
            guard let text = System.readText(part, limit: Int(ConfigFile.maxBytes)) else {
                end(400, "request error: cannot read the downloaded file", out: &out)
                return nil
            }
            let candidate = text + (text.endsWith("\n") || text.isEmpty ? "" : "\n") + "# configId = " + f.configId + "\n"
            switch ConfigLoader.load(loaded.path, remote: candidate, log: log, board: loaded.board) {
            case .failure(.invalid(_, let e)):
                end(460, "request parameter error: " + e.message, out: &out)
            case .failure(let e):
                end(400, "request error: " + e.message, out: &out)
            case .success(let next):
                if let e = StateStore.write(Array(candidate.utf8), to: ConfigLoader.remotePath(loaded.device)) {
                    end(400, "request error: cannot keep the config: " + e.message, out: &out)
                    return nil
                }
                log.info("remote config " + f.configId + " applied; reconnecting with the new settings")
                end(200, "success", out: &out)
                return next
            }
        }
        return nil
    }

    func end(_ code: Int64, _ message: String, out: inout Outbox) {
        if code != 200 { log.error("remote config " + (file?.configId ?? "?") + ": " + message + "; keeping the running settings") }
        if !pushId.isEmpty { reply(code, pushId, message, out: &out) }
        _ = wisp_unlink(part)
        if let id = download { downloader.cancel(id) }
        download = nil
        file = nil
    }
}
