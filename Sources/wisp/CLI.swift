import CWispPlatform
import WispAgent
import WispCore

/// `wisp COMMAND [options]`: the whole command line.
@main
struct CLI {
    static let version = Agent.version

    static let help = """
        wisp \(version): publishes a board's sensors as IoT Platform telemetry over MQTT in WebSocket frames.

        usage: wisp COMMAND [options]

        commands:
          run [--config PATH] [--board-config PATH] [--verbose]
              connect, sign in, publish telemetry every telemetry_interval seconds, and stay
              connected (reconnecting with backoff) until SIGTERM/SIGINT; SIGHUP re-reads the
              key file and reconnects if it changed.
          check [--config PATH] [--board-config PATH] [--online]
              validate the key file and print the effective settings, secret redacted, and
              the board settings; with --online also sign in once and disconnect (exit 0
              accepted, 77 credentials refused, 69 platform unreachable), publishing nothing.
          sign [--config PATH] [--timestamp MS]
              print mqttClientId=, mqttUsername= and mqttPassword= exactly as the platform
              expects them, for debugging sign-in problems (--timestamp overrides sign_timestamp).
          sensors [--config PATH]
              list the sensors this board has (as key-file lines, each with a reading now)
              and the sensors and outputs the key file configures. WISP_ROOT=DIR reads /sys,
              /proc and /dev under DIR (a copy of a board's tree).
          register [--config PATH]
              with product_secret in the key file (one image for every board): register
              this device once (dynamic registration over wss) and keep the device secret in
              state_dir/identity; `wisp run` does this by itself at its first start.
          ota status [--config PATH] [--board-config PATH]
              what the over-the-air update files say: this version and security counter,
              the publisher key, a download in progress, a staged package, a trial being
              confirmed, what was installed, the last result.
          status [--config PATH] [--json]
              what the running agent says in its status file (status_file, default
              /run/wisp/status): the link and since when, the endpoint, the last post and
              its reply, the backlog, the last error, the version, the OTA's last report;
              --json prints one JSON object. Exit 0 online, 1 offline, 3 not running (no
              status file, or its agent is gone), 4 unknown (an unreadable or invalid file).
          apply-update [--board-config PATH] [--state-dir DIR] [--update-dir DIR]
                       [--binary PATH] [--systemctl PATH]
              the root step of an OTA upgrade (wisp-update.service runs it from
              /usr/lib/wisp/wisp-update when the service stages a package): take the staged
              package from DIR/ota (default /var/lib/wisp) into its own directory (default
              /var/lib/wisp-update), verify the publisher's signature there, install it over
              --binary (default /usr/bin/wisp), restart wisp and roll back unless the new
              version reaches the platform within ota_confirm_seconds. Reads no key file.
              --systemctl names the program that restarts the service (default
              /usr/bin/systemctl; called as `--no-block restart wisp.service`).
          version
              print the version, the target triple and the git revision.
          help
              this text.

        --board-config PATH defaults to \(BoardSettings.defaultPath): root's board settings (allow_reboot,
        ota_public_key, ota_confirm_seconds, ota_module), refused when the service user could change them.
        --config PATH defaults to \(ConfigLoader.defaultPath). The key file must not be readable
        by group or others (chmod 600). It holds `key = value` lines and # comments:

        """

    /// Commands return their exit code; the process exits here, once every value they
    /// held is released (so memcheck sees no memory abandoned at exit).
    static func main() {
        let code = dispatch(System.arguments)
        System.exit(code)
    }

    static func dispatch(_ arguments: [String]) -> ExitCode {
        var args = arguments
        guard let command = args.first else { return usage("no command given") }
        args.removeFirst()
        switch command {
        case "help", "--help", "-h":
            printHelp()
            return .ok
        case "version", "--version":
            if let first = args.first { return usage("unexpected argument '" + first + "'") }
            System.out("wisp " + version + " (" + String(cString: wisp_build_triple()) + ", git " + String(cString: wisp_build_revision()) + ")")
            return .ok
        case "check":
            guard let options = parse(args, allowing: ["--config", "--board-config", "--online"]) else { return .usage }
            return check(path: options["--config"] ?? ConfigLoader.defaultPath, board: Board.fromEnvironment.withSettings(from: options["--board-config"]),
                         online: options["--online"] != nil)
        case "sign":
            guard let options = parse(args, allowing: ["--config", "--timestamp"]) else { return .usage }
            return sign(path: options["--config"] ?? ConfigLoader.defaultPath, timestamp: options["--timestamp"])
        case "sensors":
            guard let options = parse(args, allowing: ["--config"]) else { return .usage }
            return sensors(path: options["--config"])
        case "register":
            guard let options = parse(args, allowing: ["--config"]) else { return .usage }
            return register(path: options["--config"] ?? ConfigLoader.defaultPath)
        case "ota":
            guard let sub = args.first, sub.equals("status") else { return usage("ota needs a subcommand: ota status") }
            args.removeFirst()
            guard let options = parse(args, allowing: ["--config", "--board-config"]) else { return .usage }
            return OTAStatus.print(configPath: options["--config"] ?? ConfigLoader.defaultPath,
                                   board: Board.fromEnvironment.withSettings(from: options["--board-config"]), log: .standard())
        case "status":
            guard let options = parse(args, allowing: ["--config", "--json"]) else { return .usage }
            return StatusCommand.run(configPath: options["--config"] ?? ConfigLoader.defaultPath, json: options["--json"] != nil)
        case "apply-update":
            guard let options = parse(args, allowing: ["--board-config", "--state-dir", "--update-dir", "--binary", "--systemctl"]) else { return .usage }
            let log = Log.standard()
            // Root's step reads root's file only: refused settings stop it here.
            switch BoardSettingsFile.load(options["--board-config"]) {
            case .failure(let e):
                log.error("apply-update: " + e.message)
                return .configuration
            case .success(let settings):
                return ApplyUpdate(log: log, settings: settings, stateDir: options["--state-dir"] ?? "/var/lib/wisp",
                                   updateDir: options["--update-dir"] ?? ApplyUpdate.defaultUpdateDir,
                                   binary: options["--binary"] ?? "/usr/bin/wisp", systemctl: options["--systemctl"] ?? "/usr/bin/systemctl").run()
            }
        case "run":
            guard let options = parse(args, allowing: ["--config", "--board-config", "--verbose"]) else { return .usage }
            return Agent.run(configPath: options["--config"] ?? ConfigLoader.defaultPath, log: .standard(verbose: options["--verbose"] != nil),
                             board: Board.fromEnvironment.withSettings(from: options["--board-config"]))
        default:
            return usage("unknown command '" + command + "'")
        }
    }

    static func printHelp() {
        var text = help
        for key in KeyFile.keys {
            text += "  " + key.name + String(repeating: " ", count: max(1, 20 - key.name.utf8.count)) + key.allowed + "\n"
        }
        text += """

            exit codes: 0 ok, 64 usage, 69 platform unreachable (check --online), 71 no system randomness,
            77 credentials refused (check --online), 78 configuration; status: 0 online, 1 offline, 3 not running, 4 unknown.

            """
        System.write(text, to: 1)
    }

    static func usage(_ problem: String) -> ExitCode {
        System.write("wisp: " + problem + "\nrun `wisp help` for usage\n", to: 2)
        return .usage
    }

    /// `--name VALUE` pairs (and the flags --verbose, --online, --json); anything else is a usage error.
    static func parse(_ args: [String], allowing names: [String]) -> Options? {
        var options = Options()
        var i = 0
        while i < args.count {
            let name = args[i]
            guard names.containsToken(name) else { _ = usage("unknown option '" + name + "'"); return nil }
            if options[name] != nil { _ = usage("option " + name + " given twice"); return nil }
            if name.equals("--verbose") || name.equals("--online") || name.equals("--json") {
                options[name] = "1"
                i += 1
                continue
            }
            guard i + 1 < args.count, !args[i + 1].isEmpty else { _ = usage("option " + name + " needs a value"); return nil }
            options[name] = args[i + 1]
            i += 2
        }
        return options
    }

    static func load(_ path: String, board: Board = .fromEnvironment) -> LoadedConfig? {
        switch ConfigLoader.load(path, log: .standard(), board: board) {
        case .success(let loaded): return loaded
        case .failure(let error):
            System.write("wisp: " + error.message + "\n", to: 2)
            return nil
        }
    }

    static func check(path: String, board: Board, online: Bool) -> ExitCode {
        guard let loaded = load(path, board: board) else { return .configuration }
        System.out("key file " + path + " is valid; effective settings:")
        System.write(loaded.device.describe(effectiveClientId: loaded.clientId), to: 1)
        if let why = board.settingsRefused {
            System.write("wisp: warning: " + why + "; OTA upgrades and reboots are refused until it is fixed\n", to: 2)
        } else {
            System.out("board settings (root's, board.conf):")
            for line in board.settings.lines { System.out("  " + line) }
            if wisp_file_mode(board.settings.otaPublicKey) < 0 {
                System.out("  (no publisher key at " + board.settings.otaPublicKey + ": OTA upgrades are refused)")
            }
        }
        if loaded.deviceNameFromBoard { System.out("(device_name is the board's: its client_id, serial number or MAC)") }
        if let file = loaded.registeredFrom { System.out("identity = registered, from " + file + " (secret redacted)") }
        if loaded.productSecretLeft { System.write("wisp: warning: " + loaded.productSecretWarning + "\n", to: 2) }
        guard online else { return .ok }
        let code = Agent.probe(loaded, log: .standard())
        System.out(code == .ok ? "online check: signed in and disconnected" : "online check failed (exit \(code.rawValue))")
        return code
    }

    static func register(path: String) -> ExitCode {
        guard let loaded = load(path) else { return .configuration }
        if let file = loaded.registeredFrom {
            System.out("already registered: the device secret is in " + file + " (remove it to register again)")
            return .ok
        }
        guard case .unregistered = loaded.device.identity else {
            System.write("wisp: " + path + " has no product_secret: `register` is for dynamic registration\n", to: 2)
            return .configuration
        }
        let signals = wisp_signals_open()
        switch Registration.run(loaded, signals: signals, persistent: false, log: .standard()) {
        case .registered(let next):
            System.out("registered; device secret kept in " + (next.registeredFrom ?? "?"))
            return .ok
        case .refused(let why):
            System.write("wisp: " + why + "\n", to: 2)
            return .refused
        case .unreachable(let why):
            System.write("wisp: cannot reach the platform: " + why + "\n", to: 2)
            return .unreachable
        case .failed(let why):
            System.write("wisp: " + why + "\n", to: 2)
            return .failure
        case .stopped:
            return .failure
        }
    }

    static func sensors(path: String?) -> ExitCode {
        var scratch = ByteBuffer(capacity: 8192)
        let board = Board.fromEnvironment
        System.out("# found on this board (sensor.NAME = SOURCE  # reading now)")
        for source in Discovery.sources(on: board) {
            let spec = SensorSpec(identifier: "x", source: source)
            System.out("sensor.NAME = " + spec.describe + "  # " + Discovery.reading(spec, on: board, scratch: &scratch))
        }
        for chip in Discovery.gpioChips(on: board) { System.out("# GPIO chip: " + chip + " (gpio:" + chip + ":LINE, output." + "NAME = gpio:" + chip + ":LINE)") }
        guard let path else { return .ok }
        guard let loaded = load(path) else { return .configuration }
        System.out("")
        System.out("# configured in " + path)
        let specs = loaded.device.sensors.isEmpty ? Thing.defaults : loaded.device.sensors
        if loaded.device.sensors.isEmpty { System.out("# (no sensor lines: the defaults)") }
        for spec in specs {
            System.out("sensor." + spec.identifier + " = " + spec.describe + "  # " + Discovery.reading(spec, on: board, scratch: &scratch))
        }
        for o in loaded.device.outputs { System.out("output." + o.identifier + " = gpio:" + o.chip + ":\(o.line)") }
        return .ok
    }

    static func sign(path: String, timestamp override: String?) -> ExitCode {
        if let override, KeyFile.parseDecimal(override) == nil { return usage("--timestamp needs milliseconds, e.g. 1700000000000") }
        guard let loaded = load(path) else { return .configuration }
        guard let identity = Agent.platformIdentity(loaded) else {
            System.write("wisp: " + path + " has no product_key/device_name/device_secret: `sign` is for IoT Platform devices\n", to: 2)
            return .configuration
        }
        let stamp = override ?? Agent.signTimestamp(loaded.device)
        let credentials = identity.credentials(secureMode: loaded.device.endpoint.secureMode, timestamp: stamp, sign: Crypto.hmacHex)
        System.out("mqttClientId=" + credentials.clientId)
        System.out("mqttUsername=" + (credentials.username ?? ""))
        System.out("mqttPassword=" + (credentials.password ?? ""))
        return .ok
    }

    /// The options given, by name (a handful: a list, compared by bytes; see Tokens.swift).
    struct Options {
        var given: [(name: String, value: String)] = []
        subscript(name: String) -> String? {
            get { given.first(where: { $0.name.equals(name) })?.value }
            set { if let newValue { given.append((name, newValue)) } }
        }
    }
}
