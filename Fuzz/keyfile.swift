// Key-file parser: never traps; an accepted file re-describes without its secret; errors
// never echo a value.
func fuzzOne(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let config = try KeyFile.parse(text)
        let described = config.describe(effectiveClientId: "x")
        if case .platform(_, _, let secret, _, _) = config.identity, secret.utf8.count >= 4 {
            check(!described.contains("device_secret = " + secret), "secret in describe()")
        }
        check(config.keepAlive >= 30 && config.keepAlive <= 1200, "keep-alive range")
    } catch {
        _ = error.message
    }
}
