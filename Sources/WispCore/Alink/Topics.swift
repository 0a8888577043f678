/// Every topic of the Alink thing model wisp uses, built once at start-up.
///
/// Platform devices use the platform's `/sys/{pk}/{dn}/thing/...` and NTP's
/// `/ext/ntp/{pk}/{dn}/...`; on other brokers the same layout hangs under
/// `wisp/{clientId}` and there is no NTP.
public struct AlinkTopics: Sendable, Equatable {
    /// `thing.event.property.post` and the platform's reply to it.
    public let post: String
    public let postReply: String
    /// `thing.event.property.history.post` (samples kept while offline, in batches) and its
    /// reply, platform devices only.
    public let historyPost: String?
    public let historyPostReply: String?
    /// `thing.service.property.set` (downlink) and wisp's answer.
    public let set: String
    public let setReply: String
    /// NTP over MQTT, platform devices only.
    public let ntpRequest: String?
    public let ntpResponse: String?
    /// OTA, platform devices only: the version report after every CONNACK, the upgrade
    /// push, progress reports, and `thing.ota.firmware.get` with its reply.
    public let otaInform: String?
    public let otaUpgrade: String?
    public let otaProgress: String?
    public let firmwareGet: String?
    public let firmwareGetReply: String?
    /// Service calls (`…/thing/service/{name}`, answered on `…_reply`) and RRPC
    /// (`…/rrpc/request/{messageId}`, answered on `…/rrpc/response/{messageId}`).
    public let servicePrefix: String
    /// `…/thing/event/`: events post under it (`{id}/post`), their replies come on `{id}/post_reply`.
    public let eventPrefix: String
    /// Remote config: the push and the device's answer, the device's get and its reply.
    public let configPush: String
    public let configPushReply: String
    public let configGet: String
    public let configGetReply: String
    public let rrpcRequestPrefix: String
    public let rrpcResponsePrefix: String
    /// Device logs to the console (`thing.log.post`) and their switch (`thing.config.log.get`
    /// at connect, pushes), platform devices only.
    public let logPost: String?
    public let logPostReply: String?
    public let logConfigGet: String?
    public let logConfigGetReply: String?
    public let logConfigPush: String?
    /// `thing.deviceinfo.update` (the board's tags) and its reply, platform devices only.
    public let deviceInfoUpdate: String?
    public let deviceInfoUpdateReply: String?
    /// The secure tunnel, platform devices only: the platform's notify, the device's request
    /// for its tunnel and the reply. Subscribed only when the board settings allow remote
    /// access (`tunnelSubscriptions`).
    public let tunnelNotify: String?
    public let tunnelRequest: String?
    public let tunnelRequestReply: String?

    /// A platform device.
    public init(productKey pk: String, deviceName dn: String) {
        self.init(base: "/sys/" + pk + "/" + dn, ntp: "/ext/ntp/" + pk + "/" + dn, ota: pk + "/" + dn)
    }

    /// Another broker: the thing model under `wisp/{clientId}`, no NTP.
    public init(plainClientId clientId: String) {
        self.init(base: "wisp/" + clientId, ntp: nil, ota: nil)
    }

    init(base: String, ntp: String?, ota device: String?) {
        otaInform = device.map { "/ota/device/inform/" + $0 }
        otaUpgrade = device.map { "/ota/device/upgrade/" + $0 }
        otaProgress = device.map { "/ota/device/progress/" + $0 }
        firmwareGet = device.map { _ in base + "/thing/ota/firmware/get" }
        firmwareGetReply = firmwareGet.map { $0 + "_reply" }
        servicePrefix = base + "/thing/service/"
        eventPrefix = base + "/thing/event/"
        configPush = base + "/thing/config/push"
        configPushReply = configPush + "_reply"
        configGet = base + "/thing/config/get"
        configGetReply = configGet + "_reply"
        rrpcRequestPrefix = base + "/rrpc/request/"
        rrpcResponsePrefix = base + "/rrpc/response/"
        post = base + "/thing/event/property/post"
        postReply = post + "_reply"
        historyPost = device.map { _ in base + "/thing/event/property/history/post" }
        historyPostReply = historyPost.map { $0 + "_reply" }
        set = base + "/thing/service/property/set"
        setReply = set + "_reply"
        logPost = device.map { _ in base + "/thing/log/post" }
        logPostReply = logPost.map { $0 + "_reply" }
        logConfigGet = device.map { _ in base + "/thing/config/log/get" }
        logConfigGetReply = logConfigGet.map { $0 + "_reply" }
        logConfigPush = device.map { _ in base + "/thing/config/log/push" }
        deviceInfoUpdate = device.map { _ in base + "/thing/deviceinfo/update" }
        deviceInfoUpdateReply = deviceInfoUpdate.map { $0 + "_reply" }
        tunnelNotify = device.map { _ in base + "/secure_tunnel/notify" }
        tunnelRequest = device.map { _ in base + "/secure_tunnel/proxy/request" }
        tunnelRequestReply = tunnelRequest.map { $0 + "_reply" }
        ntpRequest = ntp.map { $0 + "/request" }
        ntpResponse = ntp.map { $0 + "/response" }
    }

    /// What wisp subscribes to after every CONNACK, in this order. No two filters overlap
    /// (a broker delivers a message once per matching filter): the property post's reply
    /// comes through `…/thing/event/+/post_reply` with the events' replies, and `classify`
    /// tells them apart; the history post's reply is two levels and needs its own filter.
    public var subscriptions: [MQTTEncoder.Subscription] {
        var s = [MQTTEncoder.Subscription(topic: set, qos: .atLeastOnce),
                 MQTTEncoder.Subscription(topic: servicePrefix + "+", qos: .atLeastOnce),
                 MQTTEncoder.Subscription(topic: rrpcRequestPrefix + "+", qos: .atMostOnce),
                 MQTTEncoder.Subscription(topic: configPush, qos: .atLeastOnce), MQTTEncoder.Subscription(topic: configGetReply, qos: .atMostOnce),
                 // QoS 1: the property post's reply comes here too, as it did through its own filter.
                 MQTTEncoder.Subscription(topic: eventPrefix + "+/post_reply", qos: .atLeastOnce)]
        if let ntpResponse { s.append(MQTTEncoder.Subscription(topic: ntpResponse, qos: .atMostOnce)) }
        if let otaUpgrade { s.append(MQTTEncoder.Subscription(topic: otaUpgrade, qos: .atLeastOnce)) }
        if let firmwareGetReply { s.append(MQTTEncoder.Subscription(topic: firmwareGetReply, qos: .atMostOnce)) }
        if let historyPostReply { s.append(MQTTEncoder.Subscription(topic: historyPostReply, qos: .atMostOnce)) }
        if let logConfigGetReply { s.append(MQTTEncoder.Subscription(topic: logConfigGetReply, qos: .atMostOnce)) }
        if let logConfigPush { s.append(MQTTEncoder.Subscription(topic: logConfigPush, qos: .atLeastOnce)) }
        if let logPostReply { s.append(MQTTEncoder.Subscription(topic: logPostReply, qos: .atMostOnce)) }
        if let deviceInfoUpdateReply { s.append(MQTTEncoder.Subscription(topic: deviceInfoUpdateReply, qos: .atMostOnce)) }
        return s
    }

    /// The secure tunnel's notify and request reply: what a board that allows remote
    /// access subscribes to besides `subscriptions`.
    public var tunnelSubscriptions: [MQTTEncoder.Subscription] {
        guard let tunnelNotify, let tunnelRequestReply else { return [] }
        return [MQTTEncoder.Subscription(topic: tunnelNotify, qos: .atLeastOnce),
                MQTTEncoder.Subscription(topic: tunnelRequestReply, qos: .atMostOnce)]
    }

    /// What an inbound topic is.
    public enum Inbound: Equatable, Sendable {
        case propertySet, postReply, ntpResponse, otaOffer, configPush, configGetReply, eventReply
        /// The console's log switch: the reply to `thing.config.log.get`, or a push.
        case logConfig
        case logPostReply, deviceInfoReply
        /// The secure tunnel's notify, and the reply to the device's request for it.
        case tunnelNotify, tunnelReply
        /// A service call; the range is the service's name in the topic.
        case service(Range<Int>)
        /// An RRPC request; the range is the message id in the topic.
        case rrpc(Range<Int>)
        case other
    }

    /// Classifies `buffer[range]` without making a String.
    public func classify(_ buffer: ByteBuffer, _ range: Range<Int>) -> Inbound {
        if buffer.bytes(range, equal: set) { return .propertySet }
        if buffer.bytes(range, equal: postReply) { return .postReply }
        if let historyPostReply, buffer.bytes(range, equal: historyPostReply) { return .postReply }
        if let ntpResponse, buffer.bytes(range, equal: ntpResponse) { return .ntpResponse }
        if let otaUpgrade, buffer.bytes(range, equal: otaUpgrade) { return .otaOffer }
        if let firmwareGetReply, buffer.bytes(range, equal: firmwareGetReply) { return .otaOffer }
        // {eventPrefix}{id}/post_reply: the id is one level.
        if range.count > eventPrefix.utf8.count + 11, buffer.bytes((range.upperBound - 11)..<range.upperBound, equal: "/post_reply"),
           AlinkTopics.level(after: eventPrefix, buffer, range.lowerBound..<(range.upperBound - 11)) != nil {
            return .eventReply
        }
        if let logConfigGetReply, buffer.bytes(range, equal: logConfigGetReply) { return .logConfig }
        if let logConfigPush, buffer.bytes(range, equal: logConfigPush) { return .logConfig }
        if let logPostReply, buffer.bytes(range, equal: logPostReply) { return .logPostReply }
        if let deviceInfoUpdateReply, buffer.bytes(range, equal: deviceInfoUpdateReply) { return .deviceInfoReply }
        if let tunnelNotify, buffer.bytes(range, equal: tunnelNotify) { return .tunnelNotify }
        if let tunnelRequestReply, buffer.bytes(range, equal: tunnelRequestReply) { return .tunnelReply }
        if buffer.bytes(range, equal: configPush) { return .configPush }
        if buffer.bytes(range, equal: configGetReply) { return .configGetReply }
        if let name = AlinkTopics.level(after: servicePrefix, buffer, range), !AlinkTopics.endsWithReply(buffer, name) { return .service(name) }
        if let id = AlinkTopics.level(after: rrpcRequestPrefix, buffer, range) { return .rrpc(id) }
        return .other
    }

    /// The longer of the two topics samples go out on (the history post's, on the platform).
    public var longestPostTopic: Int { max(post.utf8.count, historyPost?.utf8.count ?? 0) }

    /// Where event `name` posts.
    public func eventPost(_ name: String) -> String { eventPrefix + name + "/post" }

    /// The one topic level after `prefix` in `buffer[range]` (1 to 64 bytes, no `/`), or nil.
    static func level(after prefix: String, _ buffer: ByteBuffer, _ range: Range<Int>) -> Range<Int>? {
        let n = prefix.utf8.count
        guard range.count > n, range.count <= n + 64, buffer.bytes(range.lowerBound..<(range.lowerBound + n), equal: prefix) else { return nil }
        let rest = (range.lowerBound + n)..<range.upperBound
        for i in rest where buffer[i] == UInt8(ascii: "/") { return nil }
        return rest
    }

    static func endsWithReply(_ buffer: ByteBuffer, _ range: Range<Int>) -> Bool {
        range.count > 6 && buffer.bytes((range.upperBound - 6)..<range.upperBound, equal: "_reply")
    }

    /// What a refused subscription costs the device, for the log.
    public func consequenceOfRefusing(_ topic: String) -> String {
        if topic.equals(set) { return "property sets from the platform will not arrive" }
        if topic.equals(postReply) || historyPostReply.map({ topic.equals($0) }) == true { return "post replies will not arrive" }
        if let ntpResponse, topic.equals(ntpResponse) { return "platform time will not arrive" }
        if topic.startsWith(eventPrefix) { return "property post and event replies will not arrive (refusals in them go unlogged)" }
        if topic.equals(configPush) || topic.equals(configGetReply) { return "remote config will not arrive" }
        if topic.startsWith(servicePrefix) { return "service calls from the platform will not arrive" }
        if topic.startsWith(rrpcRequestPrefix) { return "RRPC calls from the platform will not arrive" }
        if let otaUpgrade, topic.equals(otaUpgrade) { return "upgrades pushed by the platform will not arrive" }
        if let firmwareGetReply, topic.equals(firmwareGetReply) { return "pending upgrades will not be found at connect" }
        if topic.equals(logConfigGetReply ?? "") || topic.equals(logConfigPush ?? "") { return "the console's log switch will not arrive (no logs go up)" }
        if topic.equals(logPostReply ?? "") { return "refused log posts go unlogged" }
        if topic.equals(deviceInfoUpdateReply ?? "") { return "device info is sent again at every connect" }
        if topic.equals(tunnelNotify ?? "") || topic.equals(tunnelRequestReply ?? "") { return "the console cannot open a remote-access tunnel" }
        return "its messages will not arrive"
    }
}
