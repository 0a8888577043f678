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
// Embedded String comparison needs the Unicode tables the toolchain ships per triple.
let swiftRoot = environment["WISP_SWIFT_ROOT"] ?? "/opt/swift/usr"

var swiftSettings: [SwiftSetting] = [
    .treatWarning("EmbeddedRestrictions", as: .error),
]
if embedded {
    swiftSettings += [
        .enableExperimentalFeature("Embedded"),
        .unsafeFlags(["-wmo", "-Osize"]),
    ]
}

let package = Package(
    name: "wisp",
    products: [
        .executable(name: "wisp", targets: ["wisp"]),
    ],
    targets: [
        .target(
            name: "CWispPlatform",
            cSettings: [.unsafeFlags(["-Wall", "-Wextra"])],
            linkerSettings: [
                .linkedLibrary("mbedtls"),
                .linkedLibrary("mbedx509"),
                .linkedLibrary("mbedcrypto"),
                .linkedLibrary("m"),
            ]
        ),
        .target(name: "WispCore", dependencies: ["CWispPlatform"], swiftSettings: swiftSettings),
        .target(name: "WispAgent", dependencies: ["WispCore", "CWispPlatform"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "wisp", dependencies: ["WispAgent", "WispCore"], swiftSettings: swiftSettings,
            linkerSettings: embedded
                ? [.unsafeFlags(["-L\(swiftRoot)/lib/swift/embedded/x86_64-unknown-linux-gnu"]),
                   .linkedLibrary("swiftUnicodeDataTables")]
                : []
        ),
        .testTarget(name: "WispCoreTests", dependencies: ["WispCore"]),
    ]
)
