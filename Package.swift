// swift-tools-version:6.2
// wisp: WebSocket IoT Sensor Publisher. No package dependencies: the toolchain,
// libc and mbedTLS are the whole world.
//
// `WISP_EMBEDDED=1 swift build` builds every Swift target in Embedded Swift mode
// for the host, so CI proves each change still compiles the way it ships.
import PackageDescription
import Foundation

let environment = ProcessInfo.processInfo.environment
let embedded = environment["WISP_EMBEDDED"] == "1"

var swiftSettings: [SwiftSetting] = [
    .treatWarning("EmbeddedRestrictions", as: .error),
]
if embedded {
    swiftSettings += [
        .enableExperimentalFeature("Embedded"),
        // One section per function, so the release link's --gc-sections drops what nothing calls.
        .unsafeFlags(["-wmo", "-Osize", "-Xfrontend", "-function-sections"]),
    ]
}

/// The checked-out revision, for `wisp version` (read from .git without running git).
func gitRevision() -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(".git")
    guard let head = try? String(contentsOf: root.appendingPathComponent("HEAD"), encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines) else { return "unknown" }
    if head.hasPrefix("ref: ") {
        let ref = String(head.dropFirst(5))
        if let hash = try? String(contentsOf: root.appendingPathComponent(ref), encoding: .utf8) {
            return String(hash.prefix(12))
        }
        if let packed = try? String(contentsOf: root.appendingPathComponent("packed-refs"), encoding: .utf8),
           let line = packed.split(separator: "\n").first(where: { $0.hasSuffix(" " + ref) }) {
            return String(line.prefix(12))
        }
        return "unknown"
    }
    return String(head.prefix(12))
}


/// Executables drop what nothing calls in every configuration of the Embedded build, debug
/// too (SwiftPM's release link does it by itself): an unused synthesized `==` on a String
/// would otherwise keep the stdlib's Unicode tables referenced, which Embedded leaves out.
let executableLink: [LinkerSetting] = embedded ? [.unsafeFlags(["-Xlinker", "--gc-sections"])] : []

let package = Package(
    name: "wisp",
    products: [
        .executable(name: "wisp", targets: ["wisp"]),
    ],
    targets: [
        .target(
            name: "CWispPlatform",
            cSettings: [
                .unsafeFlags(["-Wall", "-Wextra"]),
                .define("WISP_GIT_REV", to: "\"\(environment["WISP_GIT_REV"] ?? gitRevision())\""),
            ] + (embedded ? [.define("WISP_EMBEDDED")] : []),  // embedded_runtime.c
            linkerSettings: [
                .linkedLibrary("mbedtls"),
                .linkedLibrary("mbedx509"),
                .linkedLibrary("mbedcrypto"),
                .linkedLibrary("m"),
            ]
        ),
        // The sans-IO core depends on nothing: no C, no I/O (see ARCHITECTURE.md).
        .target(name: "WispCore", swiftSettings: swiftSettings),
        .target(name: "WispAgent", dependencies: ["WispCore", "CWispPlatform"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "wisp", dependencies: ["WispAgent", "WispCore"], swiftSettings: swiftSettings, linkerSettings: executableLink
        ),
        // Measurements for Tests/harness/bench; built in both modes, not shipped.
        .executableTarget(
            name: "wisp-bench", dependencies: ["WispAgent", "WispCore", "CWispPlatform"], path: "Tests/Bench",
            swiftSettings: swiftSettings, linkerSettings: executableLink
        ),
    ]
)

// Used only by the tests, so only in the host build (the Embedded build compiles every
// target it has): the two test targets, the helpers they share (TestSupport: MQTT streams
// cut into packets), and wisp-echo, which drives the WebSocket codec against
// Autobahn|Testsuite.
if !embedded {
    package.targets += [
        .target(name: "TestSupport", dependencies: ["WispCore"], path: "Tests/TestSupport"),
        .testTarget(name: "WispCoreTests", dependencies: ["WispCore", "TestSupport"]),
        .testTarget(name: "WispAgentTests", dependencies: ["WispAgent", "WispCore", "CWispPlatform", "TestSupport"]),
        .executableTarget(name: "wisp-echo", dependencies: ["WispAgent", "WispCore"], path: "Tests/AutobahnEcho"),
    ]
}
