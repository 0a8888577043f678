import WispCore

/// The downloads of every feature (OTA packages, remote config files, whatever comes
/// next), polled together in the device's loop: each transfer's descriptor goes into the
/// driver's poll, the nearest pause or stall is the device's deadline. A feature starts a
/// transfer, keeps the id, and advances it in its own `advance`; at most `capacity` run
/// at once (each takes a `PollSlots` slot).
final class Downloader<T: Transport> {
    static var capacity: Int { 4 }
    let clock: Clock
    let makeTransport: (Endpoint) -> T
    var transfers: [Transfer<T>?] = [Transfer<T>?](repeating: nil, count: Downloader.capacity)
    var seed: UInt64
    let log: Log

    /// `transport` opens a connection to a URL's host (the key file's proxy, CA bundle and
    /// TLS settings); `seed` spreads the retry pauses.
    init(clock: Clock, log: Log, seed: UInt64, transport: @escaping (Endpoint) -> T) {
        self.clock = clock
        self.log = log
        self.seed = seed
        makeTransport = transport
    }

    /// Starts fetching `url` into `path` (continuing its first `resumeFrom` bytes when they
    /// are there); the id to advance it with.
    func start(_ label: String, url: Endpoint, path: String, size: Int64, method: DigestMethod, resumeFrom: Int64) throws(DownloadError) -> Int {
        guard let slot = transfers.firstIndex(where: { $0 == nil }) else {
            throw .cannotWrite("\(Downloader.capacity) downloads are running already")
        }
        var mix = SplitMix64(seed: seed)
        seed = mix.next()
        transfers[slot] = try Transfer(label, log: log, url: url, path: path, size: size, method: method, resumeFrom: resumeFrom, seed: seed,
                                       transport: makeTransport)
        return slot
    }

    /// Works on transfer `id`; when it ends (done or failed) the id is free again.
    func advance(_ id: Int) -> Transfer<T>.Outcome {
        guard let t = transfers[id] else { return .failed(.cannotWrite("no such download")) }
        let outcome = t.advance(now: clock.monotonic())
        if case .working = outcome { return outcome }
        transfers[id] = nil
        return outcome
    }

    /// Stops transfer `id` (its file stays as it is).
    func cancel(_ id: Int) { transfers[id] = nil }

    func transfer(_ id: Int) -> Transfer<T>? { transfers[id] }

    var isIdle: Bool { !transfers.contains { $0 != nil } }

    /// The nearest time a transfer must be advanced without its descriptor being ready.
    var deadline: UInt64 {
        var d = UInt64.max
        for case let t? in transfers { d = min(d, t.deadline) }
        return d
    }

    /// Puts every transfer's descriptor into the driver's poll.
    func register(into slots: inout PollSlots) {
        for case let t? in transfers { slots.add(t.descriptor, events: t.events) }
    }
}
