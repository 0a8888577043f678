import WispCore

/// One tunnel session: a connection to a loopback service of this board (sshd) that the
/// console's user reaches through the tunnel. Its slot and its buffer are made once, at
/// start-up; a session that ends leaves the slot for the next.
///
/// Bytes from the console wait in `toLocal` (one frame's payload, 4 KiB) until the local
/// socket takes them: while they cannot, the tunnel stops reading (`RemoteAccess`), so a
/// slow service never grows memory. Bytes from the service are read only when the
/// tunnel's output has room for a whole frame, so a slow console never does either.
final class TunnelSession<T: Transport> {
    enum Phase {
        case free
        /// Connecting to the service; the console's session_create (its frame id) is
        /// answered once connected, or failed, or at `deadline`.
        case connecting(createId: Int64, deadline: UInt64)
        case open
        /// The console released the session: what waits for the service is written
        /// first (until `deadline`), then the socket closes.
        case draining(deadline: UInt64)
    }

    var phase = Phase.free
    var local: T?
    /// The session id (a `TunnelFrame.isName`), kept in a buffer made once.
    var id = [UInt8]()
    var port: UInt16 = 0
    /// What the connect's last step asked to wait for (1 readable, 2 writable).
    var wants: Int32 = 2
    var toLocal = ByteBuffer(capacity: TunnelFrame.maxPayload)
    /// Bytes carried each way, for the log line at the end.
    var bytesIn: Int64 = 0
    var bytesOut: Int64 = 0

    init() { id.reserveCapacity(TunnelFrame.maxName) }

    var isFree: Bool { if case .free = phase { true } else { false } }

    /// A session the console can still talk to by this id (a draining one has been released).
    func named<C: Collection>(_ other: C) -> Bool where C.Element == UInt8 {
        switch phase {
        case .free, .draining: return false
        case .connecting, .open: return id.elementsEqual(other)
        }
    }

    /// Takes the slot for session `sessionId` to `port` (the connect starts at the next advance).
    func start<C: Collection>(_ sessionId: C, port: UInt16, createId: Int64, now: UInt64, transport: T) where C.Element == UInt8 {
        id.removeAll(keepingCapacity: true)
        id.append(contentsOf: sessionId)
        self.port = port
        local = transport
        toLocal.removeAll()
        bytesIn = 0
        bytesOut = 0
        wants = 2
        phase = .connecting(createId: createId, deadline: now + 10_000)
    }

    /// Closes the local socket; the slot is free.
    func end() {
        local = nil
        toLocal.removeAll()
        phase = .free
    }

    /// Writes what waits for the service. False when the service's socket failed.
    func flushToLocal() -> Bool {
        switch phase {
        case .open, .draining: break
        case .free, .connecting: return true
        }
        guard let local, !toLocal.isEmpty else { return true }
        let n = toLocal.withBytes { local.send($0) }
        if n < 0 { return false }
        if n > 0 { toLocal.removeFirst(Int(n)) }
        return true
    }

    /// What to poll the local socket for: readable when the tunnel can take a frame,
    /// writable while bytes wait (or the connect asks).
    func events(tunnelHasRoom: Bool, connectWants: Int32) -> Int32 {
        switch phase {
        case .free: return 0
        case .connecting: return connectWants
        case .open: return (tunnelHasRoom ? 1 : 0) | (toLocal.isEmpty ? 0 : 2)
        case .draining: return toLocal.isEmpty ? 0 : 2
        }
    }
}
