// OTA and provisioning input: the platform's upgrade messages (OTAOffer.parse), the package
// server's response head (HTTPResponseHead), the records read back from state_dir
// (StateRecord) and the status file `wisp status` reads (StatusText), remote-config messages and fragments, registration replies and service
// calls. The first byte picks the parser. Invariants: an offer taken is usable as it stands (digest
// length fits the method, version and URL within bounds, size positive); a response head
// gives the same verdict however it is split, and a 206 it accepts has a sane range; a
// record that parses prints back to the same record, a status file that parses has its
// fields within bounds; a signed package's header that parses
// has every field within its bounds and prints back to exactly the bytes it signs.
func fuzz_ota(_ bytes: [UInt8]) {
    guard let selector = bytes.first else { return }
    let input = Array(bytes.dropFirst())
    switch selector % 7 {
    case 0:
        let offer = input.withUnsafeBytes { OTAOffer.parse($0) }
        if case .package(let p) = offer {
            check(p.digest.count == p.method.size, "digest length does not fit the method")
            check(OTAOffer.isVersion(p.version) && p.version.utf8.count <= OTAOffer.maxVersionBytes, "unusable version taken")
            check(p.url.utf8.count <= OTAOffer.maxURLBytes && p.size > 0, "unusable url or size taken")
            for b in p.url.utf8 { check(b >= 0x20 && b < 0x7F, "control or non-ASCII byte in a taken URL") }
        }
    case 1:
        func verdict(_ pieces: [[UInt8]]) -> String {
            var head = HTTPResponseHead(maxBytes: 1024)
            let v = splitVerdict(pieces) { (raw, pos) throws(HTTPResponseError) in try head.parse(raw, at: &pos) }
            if v.hasPrefix("done") {
                check(head.status >= 0 && head.status <= 999, "status out of range")
                if let first = head.rangeFirst, let total = head.rangeTotal { check(first < total, "range start past its total") }
                return v + " \(head.status) \(String(describing: head.contentLength)) \(String(describing: head.rangeFirst)) \(head.chunked)"
            }
            return v
        }
        check(verdict([input]) == verdict(chunks(input)), "split changes the verdict")
    case 2:
        if let record = StateRecord.parse(input) {
            check(StateRecord.parse(Array(record.text.utf8)) == record, "a record does not print back to itself")
        }
        if case .success(let status) = StatusText.parse(input) {
            check(input.count <= StatusText.maxBytes && status.fields.count < StatusText.maxLines, "a status file out of bounds")
            for f in status.fields {
                check(StatusText.isKey(f.key.utf8) && f.value.count <= StatusText.maxValue + 3, "a status field out of bounds")
            }
        }
    case 3:
        // A remote config fragment over a fixed key file: it may set only what it is allowed to.
        let base = "endpoint = wss://h\nproduct_key = p\ndevice_name = d\ndevice_secret = s\n"
        if let c = try? KeyFile.parse(base, remote: String(decoding: input, as: UTF8.self)) {
            check(c.identity == .platform(productKey: "p", deviceName: "d", deviceSecret: "s", signMethod: .hmacsha256, timestamp: .now),
                  "a remote config changed the identity")
            check(c.endpoint.host == "h" && c.stateDir == "/var/lib/wisp", "a remote config changed the endpoint or a path")
        }
    case 4:
        input.withUnsafeBytes { bytes in  // the reader points into the bytes: used only in here
            guard let json = try? JSONReader(bytes) else { return }
            if case .file(let f) = ConfigFile.parse(json) {
                check(f.sha256.count == 32 && f.size > 0 && f.size <= ConfigFile.maxBytes && !f.configId.isEmpty, "unusable config file taken")
            }
            _ = ConfigFile.requestId(json)
            if let name = ServiceCall.name(fromMethodOf: json) {
                if case .success(let (id, _)) = ServiceCall.parse(name: name, json) { check((id?.count ?? 0) <= 64, "a long id echoed") }
            }
        }
    case 6:
        let parsed = input.withUnsafeBytes { PackageManifest.parse($0) }
        if case .manifest(let m) = parsed {
            check(OTAInform.isModuleName(m.module), "module out of bounds")
            check(OTAOffer.isVersion(m.version) && m.version.utf8.count <= OTAOffer.maxVersionBytes, "version out of bounds")
            check(m.arch.equals("arm64") || m.arch.equals("armhf") || m.arch.equals("amd64"), "arch not a Debian name")
            check(m.size >= 1 && m.size <= PackageManifest.maxNumber, "size out of range")
            check(m.counter >= 0 && m.counter <= PackageManifest.maxNumber, "counter out of range")
            check(m.sha256.count == 32, "sha256 not 32 bytes")
            check(m.signature.count >= PackageManifest.minSignatureBytes && m.signature.count <= PackageManifest.maxSignatureBytes,
                  "signature length out of bounds")
            check(m.signedCount < m.payloadOffset && m.payloadOffset <= PackageManifest.maxHeaderBytes
                  && m.payloadOffset <= input.count, "header bounds")
            check(Array(m.signedHeader.utf8) == Array(input[0..<m.signedCount]), "the signed bytes do not print back")
            let line = "signature = " + Hex.encode(m.signature) + "\n"
            check(Array(line.utf8) == Array(input[m.signedCount..<m.payloadOffset]), "the signature line does not print back")
        } else if case .invalid(let why) = parsed {
            check(!why.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), "a raw control byte in a reason")
        }
        // Whatever follows byte 1024 is not looked at.
        if input.count > PackageManifest.maxHeaderBytes {
            check(Array(input.prefix(PackageManifest.maxHeaderBytes)).withUnsafeBytes { PackageManifest.parse($0) } == parsed,
                  "bytes past the header bound changed the verdict")
        }
    default:
        for mode in [DynamicRegistration.Mode.register, .regnwl] {
            let r = DynamicRegistration(productKey: "pk", deviceName: "dn", productSecret: "x", clientId: "c", signMethod: .hmacsha256, mode: mode)
            switch input.withUnsafeBytes({ r.granted(fromReply: $0) }) {
            case .success(.secret(let s)), .success(.token(_, let s)):
                check(!s.isEmpty && s.utf8.count <= 128 && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "an unprintable secret taken")
            case .failure: break
            }
        }
    }
}
