import WispCore

/// The agent: turns a loaded key file into a running session.
public enum Agent {
    /// The platform identity, when the key file holds the triplet.
    public static func platformIdentity(_ loaded: LoadedConfig) -> PlatformIdentity? {
        guard case .platform(let pk, let dn, let ds, let method, _) = loaded.device.identity else { return nil }
        return PlatformIdentity(productKey: pk, deviceName: dn, deviceSecret: ds, clientId: loaded.clientId, signMethod: method)
    }

    /// The timestamp to sign with now, per `sign_timestamp`.
    public static func signTimestamp(_ device: DeviceConfig) -> String? {
        guard case .platform(_, _, _, _, let stamp) = device.identity else { return nil }
        switch stamp {
        case .now: return String(System.realtimeMillis)
        case .off: return nil
        case .fixed(let value): return value
        }
    }

    /// CONNECT fields for this attempt.
    public static func credentials(_ loaded: LoadedConfig) -> MQTTCredentials {
        if let identity = platformIdentity(loaded) {
            return identity.credentials(secureMode: loaded.device.endpoint.secureMode, timestamp: signTimestamp(loaded.device))
        }
        guard case .plain(let user, let password) = loaded.device.identity else {
            return MQTTCredentials(clientId: loaded.clientId, username: nil, password: nil)
        }
        return MQTTCredentials(clientId: loaded.clientId, username: user, password: password)
    }

    public static func run(configPath: String) -> ExitCode {
        Log.error("wisp run is not built yet")
        return .failure
    }
}
