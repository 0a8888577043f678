// Key-file parser: never traps; an accepted file re-describes without its secret; errors
// never echo a value. The same text as board settings (board.conf): never traps; accepted
// settings are in range and print back to the same settings.
func fuzz_keyfile(_ bytes: [UInt8]) {
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
    switch BoardSettings.parse(text) {
    case .success(let s):
        check(s.otaConfirmSeconds >= 5 && s.otaConfirmSeconds <= 86_400, "confirmation window range")
        check(s.otaPublicKey.hasPrefix("/") && !s.otaPublicKey.contains("/../") && !s.otaPublicKey.hasSuffix("/.."), "key path not absolute and plain")
        check(s.tunnelServices.count <= BoardSettings.maxTunnelServices, "too many tunnel services")
        for service in s.tunnelServices {
            check(service.port >= 1 && OTAInform.isModuleName(service.name), "a tunnel service off its bounds")
            check(s.tunnelPort(Array(service.name.utf8)) != nil, "a declared service without a port")
        }
        var lines = ""
        for line in s.lines { lines += line + "\n" }
        guard case .success(let again) = BoardSettings.parse(lines) else {
            check(false, "printed settings do not parse")
            return
        }
        check(again == s, "settings do not print back to themselves")
    case .failure(let e):
        check(e.message.utf8.count < 1024, "error message unbounded")
    }
}
