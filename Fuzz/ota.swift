// OTA input: the platform's upgrade messages (OTAOffer.parse), the package server's response
// head (HTTPResponseHead), and the update records read back from state_dir (UpdateRecord).
// The first byte picks the parser. Invariants: an offer taken is usable as it stands (digest
// length fits the method, version and URL within bounds, size positive); a response head
// gives the same verdict however it is split, and a 206 it accepts has a sane range; a
// record that parses prints back to the same record.
func fuzzOne(_ bytes: [UInt8]) {
    guard let selector = bytes.first else { return }
    let input = Array(bytes.dropFirst())
    switch selector % 3 {
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
    default:
        if let record = UpdateRecord.parse(input) {
            check(UpdateRecord.parse(Array(record.text.utf8)) == record, "a record does not print back to itself")
        }
    }
}
