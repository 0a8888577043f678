/// wisp's strings are protocol tokens — key-file keys and values, topics, sensor names,
/// paths, command-line words — never text to collate. They compare, split and match by
/// their UTF-8 bytes, through the functions below.
///
/// Swift's own `String ==`, `<`, `hasPrefix`, `split(separator: Character)`, `lowercased()`,
/// `switch` and `Dictionary<String, _>` are Unicode-aware: they normalise and walk grapheme
/// clusters, which pulls the standard library's Unicode tables (65 KB of the 975 KB aarch64
/// binary) into an Embedded build. The Embedded links (`cross/build`, `WISP_EMBEDDED=1`) leave
/// those tables out, so a new Unicode-aware call fails the build instead of growing it.
/// Tests may use the Unicode-aware forms freely.
extension String {
    /// The same bytes.
    @inlinable public func equals(_ other: String) -> Bool { utf8.elementsEqual(other.utf8) }

    @inlinable public func startsWith(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    public func endsWith(_ suffix: String) -> Bool {
        let n = utf8.count, m = suffix.utf8.count
        return n >= m && utf8.dropFirst(n - m).elementsEqual(suffix.utf8)
    }

    /// Byte order (what `sort` of directory entries needs: stable, not locale-aware).
    public func precedes(_ other: String) -> Bool { utf8.lexicographicallyPrecedes(other.utf8) }

    /// The pieces between `separator` bytes (an ASCII character).
    public func pieces(_ separator: Unicode.Scalar, maxSplits: Int = Int.max, omittingEmpty: Bool = false) -> [String] {
        utf8.split(separator: UInt8(ascii: separator), maxSplits: maxSplits, omittingEmptySubsequences: omittingEmpty)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    /// ASCII letters lowered; other bytes unchanged (schemes, hex digests).
    public func asciiLowercased() -> String {
        String(decoding: utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}

extension Array where Element == String {
    public func containsToken(_ token: String) -> Bool { contains { $0.equals(token) } }
}

/// `switch` over a String matches case literals by bytes (see `String.equals`): being
/// non-generic, this overload wins over the standard library's `~=` for Equatable values.
@inlinable public func ~= (pattern: String, value: String) -> Bool { pattern.utf8.elementsEqual(value.utf8) }
