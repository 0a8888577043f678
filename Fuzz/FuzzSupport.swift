// Shared by every fuzz harness: libFuzzer's entry point calls `fuzzOne` with the input.
// Each harness checks invariants and traps (a crash libFuzzer reports) when one breaks.

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
