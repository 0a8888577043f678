import CWispPlatform
import WispCore

/// Why a package (or the public key that checks it) is refused: the kind, for the caller's
/// progress code, and one sentence for the log and the progress `desc` (raw bytes escaped).
public struct PackageRefusal: Error, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// No `wisp-ota 1` header: a bare ELF or `.deb` (or any other file).
        case unsigned
        /// The header is signed, but not by the configured key (or the signature is no
        /// DER ECDSA signature).
        case badSignature
        /// The configured public key is unusable: missing, unreadable, larger than 1024
        /// bytes, not a PEM public key, or not an EC P-256 one. Every package would fail.
        case badKey
        /// A header wisp does not take (`PackageManifest.parse`'s reason), or the package
        /// could not be read (the errno's text).
        case malformed
        /// The signed header does not describe this file: its length is not the header's
        /// plus `size`, or the payload's sha256 is not the header's.
        case mismatch
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func == (a: PackageRefusal, b: PackageRefusal) -> Bool { a.kind == b.kind && a.message.equals(b.message) }
}

/// A signed OTA package on disk (README, "Signed OTA packages"; the header is
/// `PackageManifest`): its verification against the publisher's P-256 public key, and the
/// copy of its payload once verified.
public enum SignedPackage {
    /// Payload reads and copies go through a buffer of this size.
    static let chunkBytes = 16_384

    /// Checks the package open on `fd` (read with pread from offset 0, so where the caller's
    /// offset stands does not matter, and it does not move): the header parses, its
    /// signature verifies under `publicKeyPEM`, the file is exactly the header plus `size`
    /// bytes, and the payload's sha256 is the header's. The manifest, or why not.
    public static func verify(fd: Int32, publicKeyPEM: [UInt8]) -> Result<PackageManifest, PackageRefusal> {
        var head = [UInt8](repeating: 0, count: PackageManifest.maxHeaderBytes)
        let n = head.withUnsafeMutableBufferPointer { wisp_pread(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { return .failure(unreadable(n)) }
        let parsed = head.withUnsafeBytes { PackageManifest.parse(UnsafeRawBufferPointer(rebasing: $0[0..<Int(n)])) }
        let manifest: PackageManifest
        switch parsed {
        case .unsigned:
            return .failure(PackageRefusal(.unsigned, "unsigned package: it does not start with a 'wisp-ota 1' header"))
        case .invalid(let why):
            return .failure(PackageRefusal(.malformed, "package header refused: " + why))
        case .manifest(let m):
            manifest = m
        }

        // The signature over every header byte before the signature line.
        guard let d = wisp_digest_new(WISP_HMAC_SHA256) else { return .failure(PackageRefusal(.malformed, "no memory for a digest")) }
        _ = head.withUnsafeBufferPointer { wisp_digest_update(d, $0.baseAddress, manifest.signedCount) }
        var hash = [UInt8](repeating: 0, count: 32)
        guard wisp_digest_finish(d, &hash, hash.count) == 32 else { return .failure(PackageRefusal(.malformed, "the digest failed")) }
        let verdict = publicKeyPEM.withUnsafeBufferPointer { key in
            manifest.signature.withUnsafeBufferPointer { sig in
                wisp_ecdsa_p256_verify(key.baseAddress, key.count, hash, hash.count, sig.baseAddress, sig.count)
            }
        }
        switch verdict {
        case 0: break
        case WISP_ECDSA_BAD_SIGNATURE:
            return .failure(PackageRefusal(.badSignature, "the package's signature does not verify under the configured public key"))
        default:
            return .failure(keyRefusal(verdict))
        }

        // The signed header describes exactly this file.
        let length = wisp_fstat_size(fd)
        if length < 0 { return .failure(unreadable(length)) }
        let expected = Int64(manifest.payloadOffset) + manifest.size  // ≤ 1024 + 2^31-1: no overflow
        guard length == expected else {
            return .failure(PackageRefusal(.mismatch, "the package is \(length) bytes; its header says \(expected) "
                                               + "(\(manifest.payloadOffset) of header and a payload of \(manifest.size))"))
        }
        switch stream(fd: fd, manifest: manifest, { _ in 0 }) {
        case .failure(let e):
            return .failure(e.errno == eio ? PackageRefusal(.mismatch, "the package ended before its payload did (it changed while read?)")
                                           : unreadable(Int64(-e.errno)))
        case .success(let digest):
            guard digest == manifest.sha256 else {
                return .failure(PackageRefusal(.mismatch, "the payload's sha256 is " + Hex.encode(digest) + "; the signed header says "
                                                   + Hex.encode(manifest.sha256)))
            }
        }
        return .success(manifest)
    }

    /// The publisher's public key (PEM) from `path`: at most `WISP_PUBLIC_KEY_MAX` (1024)
    /// bytes, and an EC P-256 public key, else `.badKey` with the reason.
    public static func readPublicKey(path: String) -> Result<[UInt8], PackageRefusal> {
        let shown = LogText.escape(Array(path.utf8), limit: 120)
        switch System.readFile(path, limit: Int(WISP_PUBLIC_KEY_MAX)) {
        case .failure(let e) where e.errno == efbig:
            return .failure(PackageRefusal(.badKey, "the OTA public key " + shown + " is larger than \(WISP_PUBLIC_KEY_MAX) bytes"))
        case .failure(let e):
            return .failure(PackageRefusal(.badKey, "cannot read the OTA public key " + shown + ": " + e.message))
        case .success(let pem):
            // Parsed once here with a dummy signature: only the key's verdicts count.
            let zero = [UInt8](repeating: 0, count: 32), dummy: [UInt8] = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
            let r = pem.withUnsafeBufferPointer { wisp_ecdsa_p256_verify($0.baseAddress, $0.count, zero, zero.count, dummy, dummy.count) }
            if r == WISP_ECDSA_BAD_KEY || r == WISP_ECDSA_NOT_P256 {
                var refusal = keyRefusal(r)
                refusal.message += " (" + shown + ")"
                return .failure(refusal)
            }
            return .success(pem)
        }
    }

    /// Copies the payload of the package open on `fd` (as `verify` described it) to `path`
    /// through `path`.tmp with `mode`, synced, then renamed over `path` (`StateStore.copy`'s
    /// way: a power cut leaves the old file or the new one). The bytes copied are hashed
    /// again: when they are not the manifest's (the file changed after `verify`), nothing is
    /// renamed and the error is EBADMSG. A file shorter than the manifest says: EIO.
    public static func copyPayload(fd: Int32, manifest: PackageManifest, to path: String, mode: UInt32) -> SystemError? {
        let tmp = path + ".tmp"
        let output = wisp_open_new(tmp)
        if output < 0 { return SystemError(errno: -output) }
        var r: Int32 = 0
        switch stream(fd: fd, manifest: manifest, { piece in wisp_write_all(output, piece.baseAddress, piece.count) }) {
        case .failure(let e): r = -e.errno
        case .success(let digest): if digest != manifest.sha256 { r = -ebadmsg }
        }
        if r == 0 { r = wisp_sync(output) }
        _ = wisp_close(output)
        if r == 0 { r = wisp_chmod(tmp, mode) }
        if r == 0 { r = wisp_rename(tmp, path) }
        if r < 0 {
            _ = wisp_unlink(tmp)
            return SystemError(errno: -r)
        }
        _ = wisp_sync_dir(StateStore.directory(of: path))
        return nil
    }

    static let efbig: Int32 = 27, eio: Int32 = 5, ebadmsg: Int32 = 74

    /// Reads the payload (`manifest.size` bytes from `payloadOffset`) in `chunkBytes` pieces
    /// with pread, handing each to `each` (0 to go on, else -errno), and returns its sha256.
    /// A file that ends early: EIO.
    static func stream(fd: Int32, manifest: PackageManifest, _ each: (UnsafeBufferPointer<UInt8>) -> Int32)
        -> Result<[UInt8], SystemError> {
        guard let d = wisp_digest_new(WISP_HMAC_SHA256) else { return .failure(SystemError(errno: 12)) }  // ENOMEM
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        var offset = Int64(manifest.payloadOffset)
        var left = manifest.size
        while left > 0 {
            let want = Int(min(left, Int64(chunkBytes)))
            let n = buffer.withUnsafeMutableBufferPointer { wisp_pread(fd, $0.baseAddress, want, offset) }
            var r: Int32 = n < 0 ? Int32(n) : n == 0 ? -eio : 0
            if r == 0 {
                r = buffer.withUnsafeBufferPointer { b in
                    let piece = UnsafeBufferPointer(rebasing: b[0..<Int(n)])
                    _ = wisp_digest_update(d, piece.baseAddress, piece.count)
                    return each(piece)
                }
            }
            if r < 0 {
                wisp_digest_free(d)
                return .failure(SystemError(errno: -r))
            }
            offset += n
            left -= n
        }
        var out = [UInt8](repeating: 0, count: 32)
        guard wisp_digest_finish(d, &out, out.count) == 32 else { return .failure(SystemError(errno: 12)) }
        return .success(out)
    }

    static func unreadable(_ code: Int64) -> PackageRefusal {
        PackageRefusal(.malformed, "cannot read the package: " + SystemError(errno: Int32(truncatingIfNeeded: -code)).message)
    }

    static func keyRefusal(_ verdict: Int32) -> PackageRefusal {
        verdict == WISP_ECDSA_NOT_P256
            ? PackageRefusal(.badKey, "the OTA public key is not an EC P-256 public key")
            : PackageRefusal(.badKey, "the OTA public key is not a PEM public key ('openssl ec -pubout' writes one)")
    }
}
