/// The one layout of a sample, in the ring's memory and in the buffer file alike:
///
///     seq u64 | time u64 (ms since the epoch) | count u8 | count × (index u8, decimals u8, value i64)
///
/// little-endian, 17 + 10 × count bytes. The ring keeps each record in a slot of
/// `size(maxValues:)` bytes; the buffer file stores the first `length` bytes of it as a
/// frame's payload, so writing a sample is a copy and replaying one is a copy back.
public enum SampleRecord {
    public static let headerSize = 17
    public static let valueSize = 10

    public static func size(maxValues: Int) -> Int { headerSize + maxValues * valueSize }

    /// Bytes used by a record that holds `count` values.
    public static func length(count: Int) -> Int { headerSize + count * valueSize }

    /// Writes a record at `base` of `storage` (which has `size(maxValues:)` bytes there);
    /// returns the number of values written (at most `maxValues`).
    @discardableResult
    public static func write<S: Sequence>(seq: UInt64, time: UInt64, values: S, maxValues: Int, into storage: inout [UInt8], at base: Int) -> Int
    where S.Element == PropertyValue {
        put64(seq, &storage, base)
        put64(time, &storage, base + 8)
        var n = 0
        for v in values where n < maxValues {
            let at = base + headerSize + n * valueSize
            storage[at] = UInt8(truncatingIfNeeded: v.index)
            storage[at + 1] = UInt8(truncatingIfNeeded: v.decimals)
            put64(UInt64(bitPattern: v.scaled), &storage, at + 2)
            n += 1
        }
        storage[base + 16] = UInt8(n)
        return n
    }

    /// Checks that `bytes` hold a whole record for at most `maxValues` values: its count.
    public static func validCount<C: RandomAccessCollection>(_ bytes: C, maxValues: Int) -> Int?
    where C.Element == UInt8, C.Index == Int {
        guard bytes.count >= headerSize else { return nil }
        let n = Int(bytes[bytes.startIndex + 16])
        guard n <= maxValues, bytes.count == length(count: n) else { return nil }
        return n
    }

    public static func seq<C: RandomAccessCollection>(_ bytes: C) -> UInt64 where C.Element == UInt8, C.Index == Int {
        get64(bytes, bytes.startIndex)
    }

    public static func time<C: RandomAccessCollection>(_ bytes: C) -> UInt64 where C.Element == UInt8, C.Index == Int {
        get64(bytes, bytes.startIndex + 8)
    }

    public static func value<C: RandomAccessCollection>(_ bytes: C, _ i: Int) -> PropertyValue where C.Element == UInt8, C.Index == Int {
        let at = bytes.startIndex + headerSize + i * valueSize
        return PropertyValue(index: Int(bytes[at]), scaled: Int64(bitPattern: get64(bytes, at + 2)), decimals: Int(bytes[at + 1]))
    }

    public static func put64(_ v: UInt64, _ storage: inout [UInt8], _ i: Int) {
        for k in 0..<8 { storage[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    public static func get64<C: RandomAccessCollection>(_ bytes: C, _ i: Int) -> UInt64 where C.Element == UInt8, C.Index == Int {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        return v
    }
}
