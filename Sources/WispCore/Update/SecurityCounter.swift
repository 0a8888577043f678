/// The OTA security counter a wisp binary carries: ten decimal digits behind
/// `wisp-ota-counter=` (sys.c). The root step reads it from the installed binary, so a
/// board that never ran an OTA upgrade (flashed, or installed from the .deb) still refuses
/// a package signed with a lower counter.
public enum SecurityCounter {
    public static let digits = 10
    static let marker: [UInt8] = [0x77, 0x69, 0x73, 0x70, 0x2D, 0x6F, 0x74, 0x61, 0x2D, 0x63, 0x6F, 0x75, 0x6E, 0x74, 0x65, 0x72, 0x3D]  // wisp-ota-counter=

    /// Bytes a scan must keep from one chunk to the next, so a marker across the seam is seen.
    public static var overlap: Int { marker.count + digits - 1 }

    /// The first counter in `bytes` (a marker followed by exactly ten digits), or nil.
    public static func find(in bytes: UnsafeRawBufferPointer) -> Int64? {
        let need = marker.count + digits
        guard bytes.count >= need else { return nil }
        var i = 0
        while i + need <= bytes.count {
            if bytes[i] == marker[0] {
                var j = 1
                while j < marker.count && bytes[i + j] == marker[j] { j += 1 }
                if j == marker.count {
                    var value: Int64 = 0
                    var k = 0
                    while k < digits, bytes[i + j + k] >= 0x30 && bytes[i + j + k] <= 0x39 {
                        value = value * 10 + Int64(bytes[i + j + k] - 0x30)
                        k += 1
                    }
                    let next = i + need < bytes.count ? bytes[i + need] : 0
                    if k == digits && !(next >= 0x30 && next <= 0x39) { return value }
                }
            }
            i += 1
        }
        return nil
    }
}
