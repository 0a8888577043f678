import Foundation

/// A fresh folder under the system's temporary directory.
func scratchDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "wisp-agent-tests-" + name + "-" + String(UInt64.random(in: 0..<UInt64.max))
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
