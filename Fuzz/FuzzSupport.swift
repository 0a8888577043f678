// Shared by every fuzz harness. One binary holds them all (the core is compiled with the
// sanitizers once, not once per harness); WISP_FUZZ_TARGET names the harness libFuzzer's
// entry point feeds. Each harness checks invariants and traps (a crash libFuzzer reports)
// when one breaks.
import Glibc

let harnesses: [(name: String, run: ([UInt8]) -> Void)] = [
    ("mqtt", fuzz_mqtt), ("websocket", fuzz_websocket), ("handshake", fuzz_handshake), ("keyfile", fuzz_keyfile),
    ("json", fuzz_json), ("proxy", fuzz_proxy), ("bufferfile", fuzz_bufferfile), ("ota", fuzz_ota),
    ("tunnel", fuzz_tunnel),
]

let fuzzOne: ([UInt8]) -> Void = {
    let name = getenv("WISP_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let h = harnesses.first(where: { $0.name == name }) else {
        fatalError("WISP_FUZZ_TARGET must name a harness: " + harnesses.map(\.name).joined(separator: " "))
    }
    return h.run
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: " + message()) }
}

/// Split points derived from the input itself, so libFuzzer explores splits too.
func splits(_ bytes: [UInt8]) -> [Int] {
    guard let first = bytes.first else { return [] }
    let step = Int(first % 7) + 1
    return Array(stride(from: step, to: bytes.count, by: step))
}

func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var start = 0
    for cut in splits(bytes) + [bytes.count] where cut > start {
        out.append(Array(bytes[start..<cut]))
        start = cut
    }
    return out
}

/// Feeds `pieces` one after another to a resumable "until the blank line" parser (`step`
/// returns true once it is done) and names the verdict: "done at N" (bytes consumed),
/// "error …", or "incomplete". Checks the parser never reads past a piece.
func splitVerdict<E: Error>(_ pieces: [[UInt8]], _ step: (UnsafeRawBufferPointer, inout Int) throws(E) -> Bool) -> String {
    var consumed = 0
    for piece in pieces {
        var result = ""
        piece.withUnsafeBytes { raw in
            var pos = 0
            do throws(E) {
                let done = try step(raw, &pos)
                check(pos <= raw.count, "position past input")
                consumed += pos
                if done { result = "done at \(consumed)" }
            } catch { result = "error \(error)" }
        }
        if !result.isEmpty { return result }
    }
    return "incomplete"
}

/// For a verdict "done at N": the input ends its accepted part with CRLF CRLF.
func endsAtBlankLine(_ verdict: String, _ bytes: [UInt8]) -> Int? {
    guard verdict.hasPrefix("done at ") else { return nil }
    let end = Int(verdict.dropFirst(8))!
    check(end >= 4 && Array(bytes[(end - 4)..<end]) == [13, 10, 13, 10], "stops right after CRLF CRLF")
    return end
}
