/// How MQTT bytes travel below the session: inside a `WebSocketConnection`, or as they are
/// over TCP/TLS (the identity framing). The session talks only to this; it never asks
/// which one it has.
struct Framing {
    var webSocket: WebSocketConnection?

    /// Whether a new transport needs an upgrade before CONNECT.
    var upgrades: Bool { webSocket != nil }

    /// Starts the framing on a new transport (the WebSocket upgrade request, if any).
    mutating func start(key: WebSocketKey, into output: inout ByteBuffer) -> Bool {
        webSocket?.start(key: key, into: &output) ?? true
    }

    /// The next event from `input[position...]`; with no WebSocket, all the rest is data.
    mutating func next(_ input: UnsafeRawBufferPointer, at position: inout Int, output: inout ByteBuffer) throws(WebSocketConnection.Failure) -> WebSocketConnection.Event? {
        if webSocket == nil {
            if position >= input.count { return nil }
            defer { position = input.count }
            return .data(position..<input.count)
        }
        return try webSocket!.next(input, at: &position, output: &output)
    }

    func framedSize(_ length: Int) -> Int { webSocket?.framedSize(length) ?? length }

    mutating func frame<C: Collection>(_ packet: C, dup: Bool, into output: inout ByteBuffer) where C.Element == UInt8 {
        if webSocket != nil {
            webSocket!.frame(packet, dup: dup, into: &output)
            return
        }
        let start = output.count
        output.put(contentsOf: packet)
        if dup { output[start] |= 0x08 }
    }

    mutating func close(_ code: UInt16, into output: inout ByteBuffer) {
        webSocket?.close(code, into: &output)
    }
}
