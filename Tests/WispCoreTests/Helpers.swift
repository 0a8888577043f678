import TestSupport
@testable import WispCore

/// Bytes from a hex string with optional spaces ("10 0c 00 04").
func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for c in s.utf8 {
        let v: UInt8
        switch c {
        case 0x30...0x39: v = c - 0x30
        case 0x61...0x66: v = c - 0x61 + 10
        case 0x41...0x46: v = c - 0x41 + 10
        default: continue
        }
        if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
    }
    return out
}

/// Runs an encoder into a fresh buffer and returns the bytes.
func encoded(capacity: Int = 1 << 20, _ body: (inout ByteBuffer) throws -> Void) rethrows -> [UInt8] {
    var buffer = ByteBuffer(capacity: capacity)
    try body(&buffer)
    return buffer.bytes
}

/// Feeds `bytes` to a WebSocket frame decoder in chunks; data events become byte copies.
enum WSItem: Equatable {
    case begin(binary: Bool), data([UInt8]), end, ping([UInt8]), pong, close(UInt16?, String)
}

func framesAll(_ bytes: [UInt8], chunk: Int = .max, maxMessage: Int = .max) throws -> [WSItem] {
    var decoder = WebSocketFrameDecoder(maxMessageSize: maxMessage)
    var items: [WSItem] = []
    try inPieces(bytes, of: chunk) { raw in
        var pos = 0
        while let e = try decoder.next(raw, at: &pos) {
            switch e {
            case .messageBegin(let b): items.append(.begin(binary: b))
            case .data(let r): items.append(.data(Array(raw[r])))
            case .messageEnd: items.append(.end)
            case .ping(let r): items.append(.ping(Array(decoder.control.bytes[r])))
            case .pong: items.append(.pong)
            case .close(let code, let r): items.append(.close(code, String(decoding: decoder.control.bytes[r], as: UTF8.self)))
            }
        }
    }
    return items
}

/// Joins consecutive data items (fragment boundaries depend on the read split).
func coalesced(_ items: [WSItem]) -> [WSItem] {
    var out: [WSItem] = []
    for item in items {
        if case .data(let b) = item, case .data(let a)? = out.last {
            out[out.count - 1] = .data(a + b)
        } else {
            out.append(item)
        }
    }
    return out
}

/// A stand-in for the CSPRNG: distinct bytes from a counter run through SplitMix64,
/// counting the refills and keeping what it produced, so a test can tell which bytes
/// became which mask.
final class CountingRandom: @unchecked Sendable {
    var generator = SplitMix64(seed: 42)
    var calls = 0
    var produced: [UInt8] = []
    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        calls += 1
        for i in 0..<buffer.count {
            buffer[i] = UInt8(truncatingIfNeeded: generator.next())
            produced.append(buffer[i])
        }
    }
}

func counterRandom() -> MaskPool.Fill {
    let r = CountingRandom()
    return { r.fill($0) }
}
