/// Dynamic registration ("one type, one secret"), the platform's register exchange for a
/// device pre-registered in the console: the board knows only its product's secret, signs
/// in with `authType=register` over TLS, and the platform answers on `/ext/register` —
/// without any SUBSCRIBE — with the device's secret, then closes the connection.
///
/// - mqttClientId = `clientId|securemode=2,authType=register,random=R,signmethod=M|`
/// - mqttUsername = `deviceName&productKey`
/// - mqttPassword = hex HMAC-M(productSecret, `deviceName{dn}productKey{pk}random{R}`)
public struct DynamicRegistration: Sendable, Equatable {
    public var productKey: String
    public var deviceName: String
    public var productSecret: String
    public var clientId: String
    public var signMethod: SignMethod

    public static let topic = "/ext/register"

    public init(productKey: String, deviceName: String, productSecret: String, clientId: String, signMethod: SignMethod) {
        self.productKey = productKey
        self.deviceName = deviceName
        self.productSecret = productSecret
        self.clientId = clientId
        self.signMethod = signMethod
    }

    public func signContent(random: String) -> String {
        "deviceName" + deviceName + "productKey" + productKey + "random" + random
    }

    /// `random` is a fresh value from the CSPRNG (hex), never reused.
    public func credentials(random: String, sign: HMACHex) -> MQTTCredentials {
        MQTTCredentials(clientId: clientId + "|securemode=2,authType=register,random=" + random + ",signmethod=" + signMethod.rawValue + "|",
                        username: deviceName + "&" + productKey,
                        password: sign(signMethod, productSecret, signContent(random: random)))
    }

    /// The device secret from `{"productKey":…,"deviceName":…,"deviceSecret":…}`, when the
    /// reply names this device and the secret is 1 to 128 printable characters.
    public func secret(fromReply bytes: UnsafeRawBufferPointer) -> Result<String, RegistrationError> {
        let json: JSONReader
        do { json = try JSONReader(bytes) } catch { return .failure(.malformed(error.message)) }
        guard case .string(let pk)? = json.member("productKey"), json.equals(pk, productKey),
              case .string(let dn)? = json.member("deviceName"), json.equals(dn, deviceName) else {
            return .failure(.malformed("the reply is for another device"))
        }
        guard case .string(let s)? = json.member("deviceSecret"), s.count >= 1, s.count <= 128 else {
            return .failure(.malformed("no deviceSecret of 1 to 128 characters"))
        }
        var out: [UInt8] = []
        for i in s {
            let b = json[i]
            if b <= 0x20 || b >= 0x7F || b == UInt8(ascii: "\\") || b == UInt8(ascii: "\"") {
                return .failure(.malformed("the deviceSecret holds a character a secret cannot have"))
            }
            out.append(b)
        }
        return .success(String(decoding: out, as: UTF8.self))
    }
}

public enum RegistrationError: Error, Equatable, Sendable {
    case malformed(String)

    public var message: String {
        switch self {
        case .malformed(let why): "the platform's registration reply is not usable: " + why
        }
    }
}
