import Testing
@testable import WispCore

@Suite("Tokens: strings compared, split and matched by bytes")
struct TokensTests {
    @Test func equalityIsByteEquality() {
        #expect("wss".equals("wss"))
        #expect(!"wss".equals("ws"))
        #expect(!"".equals(" "))
        // Unicode-aware == calls these equal (canonical equivalence); a key file, a topic or
        // a path with different bytes is a different token.
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)
        #expect(!composed.equals(decomposed))
    }

    @Test func prefixesAndSuffixes() {
        #expect("sensor.cpu".startsWith("sensor."))
        #expect(!"senso".startsWith("sensor."))
        #expect("temp1_input".endsWith("_input"))
        #expect(!"input".endsWith("_input"))
        #expect("x".endsWith("") && "x".startsWith(""))
    }

    @Test func piecesKeepEmptyOnesUnlessAsked() {
        #expect("file:/a:2:".pieces(":") == ["file", "/a", "2", ""])
        #expect("file:/a:2".pieces(":", maxSplits: 1) == ["file", "/a:2"])
        #expect("  a  b ".pieces(" ", omittingEmpty: true) == ["a", "b"])
        #expect("".pieces(":") == [""])
    }

    @Test func orderAndCase() {
        #expect(["thermal_zone10", "thermal_zone2", "Z", "a"].sorted { $0.precedes($1) } == ["Z", "a", "thermal_zone10", "thermal_zone2"])
        #expect("WsS".asciiLowercased() == "wss")
        #expect("\u{C9}X".asciiLowercased() == "\u{C9}x", "only ASCII letters change")
    }

    @Test func switchMatchesCaseLiteralsByBytes() {
        func kind(_ s: String) -> Int {
            switch s {
            case "run": return 1
            case "caf\u{E9}": return 2
            default: return 0
            }
        }
        #expect(kind("run") == 1)
        #expect(kind("runs") == 0)
        #expect(kind("caf\u{E9}") == 2)
        #expect(kind("cafe\u{301}") == 0, "the Unicode-aware ~= would match this")
        #expect(["a", "bc"].containsToken("bc") && !["a"].containsToken("b"))
    }
}
