/// MQTT sign-in for a broker: the three CONNECT fields.
public struct MQTTCredentials: Sendable, Equatable {
    public var clientId: String
    public var username: String?
    public var password: String?

    public init(clientId: String, username: String?, password: String?) {
        self.clientId = clientId
        self.username = username
        self.password = password
    }
}

/// The IoT Platform's device triplet and how it signs in.
///
/// From the platform's MQTT-over-WebSocket document:
/// - mqttClientId = `clientId|securemode=S,signmethod=M,timestamp=T|` (timestamp optional)
/// - mqttUsername = `deviceName&productKey`
/// - mqttPassword = lowercase hex HMAC-M(deviceSecret, content), where content is the
///   submitted parameters among clientId, deviceName, productKey, timestamp, sorted by
///   name, each written as name+value with no delimiters.
public struct PlatformIdentity: Sendable, Equatable {
    public var productKey: String
    public var deviceName: String
    public var deviceSecret: String
    public var clientId: String
    public var signMethod: SignMethod

    public static let maxClientIdLength = 64

    public init(productKey: String, deviceName: String, deviceSecret: String, clientId: String, signMethod: SignMethod) {
        self.productKey = productKey
        self.deviceName = deviceName
        self.deviceSecret = deviceSecret
        self.clientId = clientId
        self.signMethod = signMethod
    }

    /// The string that is signed: parameters sorted by name (clientId < deviceName <
    /// productKey < timestamp), name+value, no delimiters.
    public func signContent(timestamp: String?) -> String {
        var content = "clientId" + clientId + "deviceName" + deviceName + "productKey" + productKey
        if let timestamp { content += "timestamp" + timestamp }
        return content
    }

    /// The CONNECT fields. `secureMode` is 2 over TLS (wss, mqtts) and 3 over plain TCP.
    public func credentials(secureMode: Int, timestamp: String?, sign: HMACHex) -> MQTTCredentials {
        var id = clientId + "|securemode=\(secureMode),signmethod=" + signMethod.rawValue
        if let timestamp { id += ",timestamp=" + timestamp }
        id += "|"
        return MQTTCredentials(
            clientId: id,
            username: deviceName + "&" + productKey,
            password: sign(signMethod, deviceSecret, signContent(timestamp: timestamp)))
    }
}
