import Testing
@testable import WispCore

/// What the console sees, as the key file sets it: the log level that goes up, the health
/// interval, the status file and the device's tags.
@Suite("Key file: logs, health, status, tags")
struct KeyFileObservabilityTests {
    let base = "endpoint = wss://h:443\nproduct_key = pk\ndevice_name = dn\ndevice_secret = s\n"

    @Test func defaults() throws {
        let c = try KeyFile.parse(base)
        #expect(c.logUploadLevel == .warning && c.healthInterval == 3600 && c.statusFile == "/run/wisp/status" && c.tags.isEmpty)
    }

    @Test func valuesAndTagsInOrder() throws {
        let c = try KeyFile.parse(base + "log_upload_level = info\nhealth_interval = 0\nstatus_file = /tmp/wisp.status\n"
                                  + "tag.site = \"Hall 3, row 2\"\ntag.Owner_2 = ops@example\n")
        #expect(c.logUploadLevel == .info && c.healthInterval == 0 && c.statusFile == "/tmp/wisp.status")
        #expect(c.tags == [.init(name: "site", value: "Hall 3, row 2"), .init(name: "Owner_2", value: "ops@example")])
    }

    @Test(arguments: [
        ("log_upload_level = verbose", 5, "log_upload_level"),
        ("health_interval = 5", 5, "health_interval"),
        ("health_interval = 604801", 5, "health_interval"),
        ("status_file = run/wisp", 5, "status_file"),
        ("tag.2nd = x", 5, "tag.2nd"),
        ("tag.a-b = x", 5, "tag.a-b"),
        ("tag.abcdefghijklmnopqrstuvwxyz12345 = x", 5, "tag.abcdefghijklmnopqrstuvwxyz12345"),
        ("tag.ok = \"\"", 5, "tag.ok"),
    ])
    func badValuesNameTheirLine(line: String, number: Int, key: String) {
        #expect {
            _ = try KeyFile.parse(base + line + "\n")
        } throws: { error in
            guard let e = error as? KeyFileError, case .badValue(let k, _) = e.problem else { return false }
            return e.line == number && k == key
        }
    }

    @Test func aTagIsSetOnceAndNeverRemotely() {
        #expect(throws: KeyFileError.self) { try KeyFile.parse(base + "tag.a = 1\ntag.a = 2\n") }
        #expect(throws: KeyFileError.self) { try KeyFile.parse(base, remote: "tag.a = 1\n") }
        #expect(throws: KeyFileError.self) { try KeyFile.parse(base, remote: "log_upload_level = debug\n") }
    }

    @Test func severityNames() {
        #expect(Severity(name: "warning") == .warning && Severity(name: "WARN") == nil)
        #expect(Severity.error.atLeast(.warning) && !Severity.info.atLeast(.warning))
    }
}
