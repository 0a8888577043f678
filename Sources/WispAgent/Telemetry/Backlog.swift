import WispCore

/// Samples not yet delivered: the ring in memory and, with `buffer_file`, on disk. It
/// outlives a key-file reload when the properties stay the same.
public final class Backlog {
    public internal(set) var ring: SampleRing
    public let names: [String]
    let file: BufferFile?
    var reportedDrops = 0
    let log: Log

    init(names: [String], device: DeviceConfig, log: Log) {
        self.log = log
        self.names = names
        ring = SampleRing(capacity: device.bufferSamples, maxValues: max(1, names.count))
        var file: BufferFile?
        if let path = device.bufferFile {
            switch BufferFile.open(path, names: names, ring: &ring, log: log) {
            case .success(let f): file = f
            case .failure(let e): log.error("buffer file " + path + ": " + e.message + "; samples are kept in memory only")
            }
        }
        self.file = file
    }

    /// Adds a sample (and syncs it to the file); logs drops when the ring is full.
    func add(time: UInt64, values: [PropertyValue]) {
        if ring.append(time: time, values: values) != nil, let file {
            file.appendSample(ring, ring.count - 1)
        }
        if ring.dropped > reportedDrops {
            reportedDrops = ring.dropped
            if reportedDrops == 1 || reportedDrops % 100 == 0 {
                log.warning("offline buffer full (\(ring.capacity) samples): dropping the oldest; \(reportedDrops) dropped so far")
            }
        }
    }

    /// The ring in place, for the posts' reads and marks.
    func withRing<R>(_ body: (inout SampleRing) -> R) -> R { body(&ring) }

    /// A PUBACK: every sample the packet carried (one post, or a history batch) leaves.
    /// False when it carried none (not a post).
    @discardableResult
    func delivered(packetId: UInt16) -> Bool {
        var any = false
        while let seq = ring.acknowledge(packetId) {
            file?.appendDelivered(seq)
            any = true
        }
        return any
    }

    /// Samples not yet delivered (in flight included).
    var depth: Int { ring.count }
}
