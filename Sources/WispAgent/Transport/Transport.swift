/// What the driver needs of a connection: coreMQTT's transport interface (send/receive
/// return a byte count, 0 for "not now", a negative value on failure, WISP_IO_CLOSED for
/// an orderly close — never 0 on disconnect) plus an open that never blocks, so opening
/// interleaves with signals, timers and sampling in the driver's one poll loop.
///
/// Implementations: `SocketTransport` (TCP, through an HTTP CONNECT proxy, in TLS) and,
/// in the tests, an in-memory fake. One owner; closing is `deinit`.
public protocol Transport: AnyObject {
    /// The descriptor to poll, or -1 while there is none.
    var descriptor: Int32 { get }
    /// Advances the open; `.open` once bytes can flow. Call again when `descriptor` is
    /// ready as the last step asked.
    func open(now: UInt64) -> OpenStep
    /// When the current open stage gives up (monotonic ms), and what to say then.
    var openDeadline: UInt64 { get }
    func openTimedOut() -> String
    func send(_ bytes: UnsafeRawBufferPointer) -> Int64
    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int64
}

public enum OpenStep: Equatable, Sendable {
    case waitReadable
    case waitWritable
    case open
    /// One sentence: what failed and why.
    case failed(String)
}
