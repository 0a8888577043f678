import WispCore

/// MQTT byte streams cut into packets, for both test targets: what a client wrote (the
/// session's output, a fake transport's `sent`) split the way a broker reads it, and what a
/// broker sends fed to the client's decoder in pieces.
public enum MQTTStream {
    /// The packets of `stream`, each whole with its fixed header, cut by the remaining
    /// length (MQTT 3.1.1 §2.2.3). Read independently of WispCore's decoder, so it checks
    /// the encoders. A stream that ends inside a packet is a bug in the test: it traps.
    public static func packets(_ stream: [UInt8]) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        var i = 0
        while i < stream.count {
            var length = 0, shift = 0, j = i + 1
            while true {
                let b = stream[j]
                length |= Int(b & 0x7F) << shift
                shift += 7
                j += 1
                if b & 0x80 == 0 { break }
            }
            packets.append(Array(stream[i..<(j + length)]))
            i = j + length
        }
        return packets
    }
}

/// `bytes` in pieces of at most `chunk` (a stream as the network may cut it), each handed
/// to `body` as raw bytes: the decoders' tests feed them one piece at a time.
public func inPieces(_ bytes: [UInt8], of chunk: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    var start = 0
    while start < bytes.count {
        let end = min(bytes.count, start + min(chunk, bytes.count))
        try Array(bytes[start..<end]).withUnsafeBytes(body)
        start = end
    }
}

/// Feeds `bytes` to an MQTT decoder in chunks of `chunk` and collects the packets.
public func decodeAll(_ bytes: [UInt8], chunk: Int = .max, capacity: Int = 4096) throws -> (packets: [MQTTInbound], decoder: MQTTDecoder) {
    var decoder = MQTTDecoder(capacity: capacity)
    var packets: [MQTTInbound] = []
    try inPieces(bytes, of: chunk) { raw in
        var pos = 0
        while pos < raw.count {
            if let p = try decoder.decode(raw, at: &pos) { packets.append(p) }
        }
    }
    return (packets, decoder)
}

/// An MQTT packet: `type` (the first byte), the remaining length as the core writes it, `body`.
public func mqttPacket(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
    var header = ByteBuffer(capacity: 5)
    header.put(type)
    RemainingLength.put(body.count, into: &header)
    return header.bytes + body
}
