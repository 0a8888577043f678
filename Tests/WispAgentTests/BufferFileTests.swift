import Foundation
import Testing
@testable import WispAgent
import WispCore

@Suite("Buffer file on disk")
struct BufferFileTests {
    func ring() -> SampleRing { SampleRing(capacity: 8, maxValues: 1) }

    func value(_ v: Int64) -> [PropertyValue] { [PropertyValue(index: 0, scaled: v, decimals: 0)] }

    @Test func samplesSurviveAReopenAndATornTailIsCut() throws {
        let path = scratchDirectory("torn") + "/wisp.buffer"
        do {
            var r = ring()
            let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
            for v in 1...3 {
                r.append(time: 1000 + UInt64(v), values: value(Int64(v)))
                file.appendSample(r, r.count - 1)
            }
        }
        let good = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data([0xB7, 0x01, 0x20, 0x00, 0x01, 0x02]))  // a frame cut short by a power loss
        handle.closeFile()
        var r = ring()
        _ = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
        #expect(r.count == 3)
        #expect((0..<3).map { r.seq($0) } == [1, 2, 3])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int == good, "the torn frame is cut off")
    }

    @Test func aFileForOtherSensorsIsSetAside() throws {
        let dir = scratchDirectory("foreign")
        let path = dir + "/wisp.buffer"
        do {
            var r = ring()
            let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
            r.append(time: 1, values: value(7))
            file.appendSample(r, 0)
        }
        var r = ring()
        _ = try BufferFile.open(path, names: ["temperature"], ring: &r, log: Log()).get()
        #expect(r.count == 0)
        #expect(FileManager.default.fileExists(atPath: path + ".old"), "kept for a person, not replayed as the wrong property")
    }

    @Test func compactionKeepsOnlyWaitingSamples() throws {
        let path = scratchDirectory("compact") + "/wisp.buffer"
        var r = SampleRing(capacity: 4, maxValues: 1)
        let file = try BufferFile.open(path, names: ["load"], ring: &r, log: Log()).get()
        var delivered: UInt64 = 0
        for v in 1...400 {
            r.append(time: UInt64(v), values: value(Int64(v)))
            file.appendSample(r, r.count - 1)
            if r.count > 1 {  // deliver all but the newest
                let seq = r.seq(0)
                r.deliver(seq: seq)
                file.appendDelivered(seq)
                delivered += 1
            }
        }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(size <= file.limit + 64, "compacted: the file stays near its bound")
        var back = SampleRing(capacity: 4, maxValues: 1)
        _ = try BufferFile.open(path, names: ["load"], ring: &back, log: Log()).get()
        #expect(back.count == 1 && back.seq(0) == 400, "only the sample still waiting comes back")
    }
}
