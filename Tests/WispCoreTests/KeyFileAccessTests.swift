import Testing
@testable import WispCore

@Suite("Key file ownership and mode")
struct KeyFileAccessTests {
    static let root: UInt32 = 0, wisp: UInt32 = 999, wispGroup: UInt32 = 998, other: UInt32 = 1000

    func facts(_ mode: UInt32, owner: UInt32 = wisp, group: UInt32 = wispGroup, user: UInt32 = wisp, regular: Bool = true) -> KeyFileAccess.Facts {
        .init(mode: mode, isRegular: regular, owner: owner, group: group, user: user, userGroup: Self.wispGroup)
    }

    @Test func accepted() {
        #expect(KeyFileAccess.check(facts(0o600)) == nil)
        #expect(KeyFileAccess.check(facts(0o400)) == nil)
        #expect(KeyFileAccess.check(facts(0o640, owner: Self.root)) == nil, "root:wisp 0640")
        #expect(KeyFileAccess.check(facts(0o600, owner: Self.root, group: Self.root)) == nil)
    }

    @Test func refused() {
        #expect(KeyFileAccess.check(facts(0o644)) == .readableByOthers(0o644))
        #expect(KeyFileAccess.check(facts(0o604)) == .readableByOthers(0o604))
        #expect(KeyFileAccess.check(facts(0o660, owner: Self.root)) == .groupWritable(0o660))
        #expect(KeyFileAccess.check(facts(0o640, owner: Self.root, group: Self.other)) == .foreignGroup(mode: 0o640, group: Self.other))
        #expect(KeyFileAccess.check(facts(0o600, owner: Self.other)) == .owner(Self.other))
        #expect(KeyFileAccess.check(facts(0o600, regular: false)) == .notRegular)
    }

    @Test func messagesNameTheFix() {
        let m = KeyFileAccess.message(.readableByOthers(0o644), path: "/etc/wisp/device.key")
        #expect(m.contains("chmod 600 /etc/wisp/device.key") && m.contains("0644"))
        #expect(KeyFileAccess.message(.foreignGroup(mode: 0o640, group: 5), path: "k").contains("root:wisp 0640"))
    }
}
