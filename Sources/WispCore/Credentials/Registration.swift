/// Dynamic registration ("one type, one secret"), the platform's register exchange for a
/// device pre-registered in the console: the board knows only its product's secret, signs
/// in with `authType=register` over TLS, and the platform answers on `/ext/register` —
/// without any SUBSCRIBE — with the device's secret, then closes the connection.
///
/// - mqttClientId = `clientId|securemode=2,authType=register,random=R,signmethod=M|`
/// - mqttUsername = `deviceName&productKey`
/// - mqttPassword = hex HMAC-M(productSecret, `deviceName{dn}productKey{pk}random{R}`)
///
/// Without pre-registration (`regnwl`) the platform creates the device and answers on
/// `/ext/regnwl` with a client id and a device token instead of a secret; later sign-ins
/// use `clientId|securemode=-2,authType=connwl|` with the token as the password
/// (`TokenIdentity`). New-style instances take `securemode=-2` and `,instanceId=ID`.
public struct DynamicRegistration: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case register, regnwl
    }

    public var productKey: String
    public var deviceName: String
    public var productSecret: String
    public var clientId: String
    public var signMethod: SignMethod
    public var mode: Mode
    public var instanceId: String?

    /// What the platform hands out.
    public enum Granted: Sendable, Equatable {
        case secret(String)
        case token(clientId: String, token: String)
    }

    public var topic: String { mode == .register ? "/ext/register" : "/ext/regnwl" }

    public init(productKey: String, deviceName: String, productSecret: String, clientId: String, signMethod: SignMethod,
                mode: Mode = .register, instanceId: String? = nil) {
        self.productKey = productKey
        self.deviceName = deviceName
        self.productSecret = productSecret
        self.clientId = clientId
        self.signMethod = signMethod
        self.mode = mode
        self.instanceId = instanceId
    }

    public func signContent(random: String) -> String {
        "deviceName" + deviceName + "productKey" + productKey + "random" + random
    }

    /// `random` is a fresh value from the CSPRNG (hex), never reused.
    /// `random` is a fresh value from the CSPRNG (hex), never reused.
    public func credentials(random: String, sign: HMACHex) -> MQTTCredentials {
        let mode = instanceId == nil ? "2" : "-2"
        var id = clientId + "|securemode=" + mode + ",authType=" + self.mode.rawValue + ",random=" + random + ",signmethod=" + signMethod.rawValue
        if let instanceId { id += ",instanceId=" + instanceId }
        return MQTTCredentials(clientId: id + "|", username: deviceName + "&" + productKey,
                               password: sign(signMethod, productSecret, signContent(random: random)))
    }

    /// The secret (`register`: `{"productKey","deviceName","deviceSecret"}`) or the client id
    /// and token (`regnwl`: `{"clientId","productKey","deviceName","deviceToken"}`), when the
    /// reply names this device and each value is 1 to 128 printable characters.
    public func granted(fromReply bytes: UnsafeRawBufferPointer) -> Result<Granted, RegistrationError> {
        let json: JSONReader
        do { json = try JSONReader(bytes) } catch { return .failure(.malformed(error.message)) }
        guard case .string(let pk)? = json.member("productKey"), json.equals(pk, productKey),
              case .string(let dn)? = json.member("deviceName"), json.equals(dn, deviceName) else {
            return .failure(.malformed("the reply is for another device"))
        }
        if mode == .register {
            guard let secret = token(json, json.member("deviceSecret")) else { return .failure(.malformed("no deviceSecret of 1 to 128 printable characters")) }
            return .success(.secret(secret))
        }
        guard let cid = token(json, json.member("clientId")), cid.utf8.count <= 64 else {
            return .failure(.malformed("no clientId of 1 to 64 printable characters"))
        }
        for b in cid.utf8 where b == UInt8(ascii: "|") || b == UInt8(ascii: ",") { return .failure(.malformed("the clientId holds | or ,")) }
        guard let t = token(json, json.member("deviceToken")) else { return .failure(.malformed("no deviceToken of 1 to 128 printable characters")) }
        return .success(.token(clientId: cid, token: t))
    }

    /// A string value of 1 to 128 printable ASCII characters, no quotes or backslashes.
    func token(_ json: JSONReader, _ value: JSONReader.Value?) -> String? {
        guard case .string(let s)? = value, s.count >= 1, s.count <= 128 else { return nil }
        var out: [UInt8] = []
        for i in s {
            let b = json[i]
            if b <= 0x20 || b >= 0x7F || b == UInt8(ascii: "\\") || b == UInt8(ascii: "\"") { return nil }
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A device registered without pre-registration signs in with its token.
public struct TokenIdentity: Sendable, Equatable {
    public var productKey: String
    public var deviceName: String
    public var clientId: String
    public var token: String

    public init(productKey: String, deviceName: String, clientId: String, token: String) {
        self.productKey = productKey
        self.deviceName = deviceName
        self.clientId = clientId
        self.token = token
    }

    public var credentials: MQTTCredentials {
        MQTTCredentials(clientId: clientId + "|securemode=-2,authType=connwl|", username: deviceName + "&" + productKey, password: token)
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
