import WispCore

/// What the link does, said in the log: connecting, failures, going offline, refused
/// subscriptions, the platform's refusals of posts and events. Nothing here acts.
enum LinkLog {
    static func note<T>(_ event: Driver<T>.Event, _ loaded: LoadedConfig, log: Log, topics: AlinkTopics, subscriptions: [MQTTEncoder.Subscription]) {
        let device = loaded.device
        switch event {
        case .connecting:
            let via = device.proxy.map { " via proxy " + $0.hostHeader } ?? ""
            log.info("connecting to " + device.endpoint.description + via)
            if device.endpoint.isTLS && device.tlsInsecure {
                log.warning("tls_insecure = true: the server certificate is NOT verified (lab use only)")
            }
        case .opened:
            if device.endpoint.isWebSocket { log.debug("WebSocket upgrade: GET " + device.endpoint.path + " HTTP/1.1, Host: " + device.endpoint.hostHeader) }
        case .openFailed(let message):
            log.warning("cannot connect: " + message)
        case .closed(let reason):
            log.debug("connection closed: " + reason.message)
        case .session(.upgraded):
            log.debug("WebSocket upgrade accepted; sending CONNECT")
        case .session(.online(_, let resent)):
            let extra = resent > 0 ? ", \(resent) unacknowledged posts resent" : ""
            log.info("online: " + device.endpoint.description + " as " + loaded.clientId + " (keep-alive \(device.keepAlive) s" + extra + ")")
        case .session(.subscribed(let refused)):
            for i in subscriptions.indices where i < 64 && refused & (1 << UInt64(i)) != 0 {
                let topic = subscriptions[i].topic
                log.error("the broker refused the subscription to " + topic + " (SUBACK 0x80: not authorised?): "
                          + topics.consequenceOfRefusing(topic) + "; asking again at the next connect")
            }
            if refused == 0 { log.debug("subscribed to \(subscriptions.count) topic(s)") }
        case .session(.skippedOversized(let length)):
            log.warning("skipped a \(length)-byte message larger than the input buffer")
        case .session(.offline(let reason, let retryIn)):
            let line = "offline: " + reason.message + "; reconnecting in \(retryIn / 1000).\(retryIn % 1000 / 100) s"
            if case .refused = reason { log.error(line) } else { log.warning(line) }
        case .session(.message), .session(.delivered), .signal, .extra, .deadline, .stopped, .pollFailed:
            break
        }
    }

    /// The platform's reply to a property post, an event or a log post: a refusal is logged
    /// (device info's replies go to `DeviceInfo`). The reply's code.
    static func reply(to kind: AlinkTopics.Inbound, _ inbound: ByteBuffer, _ payload: Range<Int>, log: Log) -> Int? {
        let what = kind == .postReply ? "property post" : kind == .eventReply ? "event" : "log post"
        let code = PropertyPost.replyCode(inbound, payload)
        if code != 200 {
            // A refused log post is not itself posted (it would feed itself).
            log.write(.warning, what + " refused by the platform: " + LogText.escape(inbound.bytesView(payload)), local: kind == .logPostReply)
        } else {
            log.debug(what + " accepted", local: kind == .logPostReply)
        }
        return code
    }
}
