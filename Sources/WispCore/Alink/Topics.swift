/// Every topic of the Alink thing model wisp uses, built once at start-up.
///
/// Platform devices use the platform's `/sys/{pk}/{dn}/thing/...` and NTP's
/// `/ext/ntp/{pk}/{dn}/...`; on other brokers the same layout hangs under
/// `wisp/{clientId}` and there is no NTP.
public struct AlinkTopics: Sendable, Equatable {
    /// `thing.event.property.post` and the platform's reply to it.
    public let post: String
    public let postReply: String
    /// `thing.service.property.set` (downlink) and wisp's answer.
    public let set: String
    public let setReply: String
    /// NTP over MQTT, platform devices only.
    public let ntpRequest: String?
    public let ntpResponse: String?
    /// Where the module's version is reported after every CONNACK (OTA), platform devices only.
    public let otaInform: String?

    /// A platform device.
    public init(productKey pk: String, deviceName dn: String) {
        self.init(base: "/sys/" + pk + "/" + dn, ntp: "/ext/ntp/" + pk + "/" + dn,
                  otaInform: OTAInform.topic(productKey: pk, deviceName: dn))
    }

    /// Another broker: the thing model under `wisp/{clientId}`, no NTP.
    public init(plainClientId clientId: String) {
        self.init(base: "wisp/" + clientId, ntp: nil, otaInform: nil)
    }

    init(base: String, ntp: String?, otaInform: String?) {
        self.otaInform = otaInform
        post = base + "/thing/event/property/post"
        postReply = post + "_reply"
        set = base + "/thing/service/property/set"
        setReply = set + "_reply"
        ntpRequest = ntp.map { $0 + "/request" }
        ntpResponse = ntp.map { $0 + "/response" }
    }

    /// What wisp subscribes to after every CONNACK, in this order.
    public var subscriptions: [MQTTEncoder.Subscription] {
        var s = [MQTTEncoder.Subscription(topic: postReply, qos: .atLeastOnce), MQTTEncoder.Subscription(topic: set, qos: .atLeastOnce)]
        if let ntpResponse { s.append(MQTTEncoder.Subscription(topic: ntpResponse, qos: .atMostOnce)) }
        return s
    }

    /// What an inbound topic is.
    public enum Inbound: Equatable, Sendable {
        case propertySet, postReply, ntpResponse, other
    }

    /// Classifies `buffer[range]` without making a String.
    public func classify(_ buffer: ByteBuffer, _ range: Range<Int>) -> Inbound {
        if buffer.bytes(range, equal: set) { return .propertySet }
        if buffer.bytes(range, equal: postReply) { return .postReply }
        if let ntpResponse, buffer.bytes(range, equal: ntpResponse) { return .ntpResponse }
        return .other
    }

    /// What a refused subscription costs the device, for the log.
    public func consequenceOfRefusing(_ topic: String) -> String {
        if topic.equals(set) { return "property sets from the platform will not arrive" }
        if topic.equals(postReply) { return "post replies will not arrive" }
        if let ntpResponse, topic.equals(ntpResponse) { return "platform time will not arrive" }
        return "its messages will not arrive"
    }
}
