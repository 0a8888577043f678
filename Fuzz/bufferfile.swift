// Buffer file replay (BufferReplay): any bytes on disk — torn, corrupt, foreign, or valid
// frames holding nonsense — give the same result however the file is read in chunks, never
// a crash; `good` never passes the file, and what reaches the ring is a valid record.
//
// The first byte picks the mode: even, the input is the file as it is; odd, the input
// describes frames (type, length, payload) that the harness writes with correct checksums
// after our header frame, so the fuzzer reaches the sample and delivery paths, then
// appends the rest raw.
private let header = Array("t,h".utf8)
private let maxValues = 2

private func frame(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
    var f: [UInt8] = [BufferReplay.magic, type, UInt8(payload.count & 0xFF), UInt8(payload.count >> 8)] + payload
    let crc = CRC32.checksum(f[1...])
    f += [UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8((crc >> 16) & 0xFF), UInt8(crc >> 24)]
    return f
}

private func file(_ bytes: [UInt8]) -> [UInt8] {
    guard let mode = bytes.first, mode & 1 == 1 else { return bytes }
    var out = frame(0, header)
    var i = 1
    while i + 2 <= bytes.count && bytes[i] < 4 {
        let type = bytes[i], len = min(Int(bytes[i + 1]), bytes.count - i - 2)
        out += frame(type, Array(bytes[(i + 2)..<(i + 2 + len)]))
        i += 2 + len
    }
    return out + bytes[i...]
}

private func replay(_ pieces: [[UInt8]]) -> (BufferReplay, SampleRing) {
    var ring = SampleRing(capacity: 4, maxValues: maxValues)
    var parser = BufferReplay(header: header, maxValues: maxValues)
    for p in pieces where parser.outcome == .reading { parser.feed(p, into: &ring) }
    return (parser, ring)
}

func fuzz_bufferfile(_ bytes: [UInt8]) {
    let data = file(bytes)
    let (whole, ring) = replay([data])
    let (split, splitRing) = replay(chunks(data))
    check(whole.outcome == split.outcome && whole.good == split.good && whole.replayed == split.replayed,
          "chunking changes the replay")
    check(ring.count == splitRing.count, "chunking changes the ring")
    for k in 0..<ring.count {
        check(ring.record(k).elementsEqual(splitRing.record(k)), "chunking changes a record")
        check(SampleRecord.validCount(ring.record(k), maxValues: maxValues) != nil, "an invalid record reached the ring")
    }
    check(whole.good <= data.count, "good past the end of the file")
    if whole.outcome == .reading {
        check(data.count - whole.good < whole.maxFrame, "a whole frame left unread")
    }
    check(whole.replayed <= data.count / 8, "more samples than frames")
}
