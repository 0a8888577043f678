import Testing
@testable import WispCore

/// The thing model as the platform documents it: topics, the property post, the property
/// set and its reply, NTP over MQTT.
@Suite("Alink thing model")
struct AlinkTests {
    @Test func platformTopics() {
        let t = AlinkTopics(productKey: "a1B2c3", deviceName: "boiler-7")
        #expect(t.post == "/sys/a1B2c3/boiler-7/thing/event/property/post")
        #expect(t.postReply == "/sys/a1B2c3/boiler-7/thing/event/property/post_reply")
        #expect(t.set == "/sys/a1B2c3/boiler-7/thing/service/property/set")
        #expect(t.setReply == "/sys/a1B2c3/boiler-7/thing/service/property/set_reply")
        #expect(t.ntpRequest == "/ext/ntp/a1B2c3/boiler-7/request")
        #expect(t.ntpResponse == "/ext/ntp/a1B2c3/boiler-7/response")
        #expect(t.otaUpgrade == "/ota/device/upgrade/a1B2c3/boiler-7")
        #expect(t.otaProgress == "/ota/device/progress/a1B2c3/boiler-7")
        #expect(t.firmwareGet == "/sys/a1B2c3/boiler-7/thing/ota/firmware/get")
        #expect(t.subscriptions.map(\.topic) == [t.set, "/sys/a1B2c3/boiler-7/thing/service/+", "/sys/a1B2c3/boiler-7/rrpc/request/+",
                                                 "/sys/a1B2c3/boiler-7/thing/config/push", "/sys/a1B2c3/boiler-7/thing/config/get_reply",
                                                 "/sys/a1B2c3/boiler-7/thing/event/+/post_reply", t.ntpResponse!, t.otaUpgrade!, "/sys/a1B2c3/boiler-7/thing/ota/firmware/get_reply",
                                                 "/sys/a1B2c3/boiler-7/thing/event/property/history/post_reply",
                                                 "/sys/a1B2c3/boiler-7/thing/config/log/get_reply", "/sys/a1B2c3/boiler-7/thing/config/log/push",
                                                 "/sys/a1B2c3/boiler-7/thing/log/post_reply", "/sys/a1B2c3/boiler-7/thing/deviceinfo/update_reply"])
        #expect(t.logPost == "/sys/a1B2c3/boiler-7/thing/log/post" && t.logConfigGet == "/sys/a1B2c3/boiler-7/thing/config/log/get")
        #expect(t.deviceInfoUpdate == "/sys/a1B2c3/boiler-7/thing/deviceinfo/update")
        #expect(t.historyPost == "/sys/a1B2c3/boiler-7/thing/event/property/history/post")
        #expect(t.subscriptions.map(\.qos) == [.atLeastOnce, .atLeastOnce, .atMostOnce, .atLeastOnce, .atMostOnce, .atLeastOnce, .atMostOnce, .atLeastOnce, .atMostOnce, .atMostOnce,
                                               .atMostOnce, .atLeastOnce, .atMostOnce, .atMostOnce])
    }

    /// Whether some topic matches both filters (MQTT 3.1.1 §4.7: `+` one level, `#` the
    /// rest, including the parent level). A topic without wildcards is a filter matching itself.
    static func overlap(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: "/", omittingEmptySubsequences: false), y = b.split(separator: "/", omittingEmptySubsequences: false)
        var i = 0
        while true {
            if (i < x.count && x[i] == "#") || (i < y.count && y[i] == "#") { return true }
            if i == x.count || i == y.count { return x.count == y.count }
            if x[i] != y[i] && x[i] != "+" && y[i] != "+" { return false }
            i += 1
        }
    }

    @Test func overlapFollowsMQTTWildcards() {
        #expect(Self.overlap("a/+/post_reply", "a/property/post_reply"))
        #expect(Self.overlap("a/+/c", "a/b/+"))
        #expect(Self.overlap("a/#", "a"))
        #expect(Self.overlap("a/#", "a/b/c"))
        #expect(!Self.overlap("a/+/post_reply", "a/property/history/post_reply"))
        #expect(!Self.overlap("a/+", "a/b/c"))
        #expect(!Self.overlap("a/b", "a/c"))
        #expect(!Self.overlap("a/b", "a/b/c"))
    }

    /// A broker sends a message once per filter it matches: overlapping filters deliver
    /// replies twice. Every inbound topic wisp handles is matched by exactly one filter.
    @Test(arguments: [AlinkTopics(productKey: "a1B2c3", deviceName: "boiler-7"), AlinkTopics(plainClientId: "pi-1")])
    func noTwoSubscriptionsOverlap(t: AlinkTopics) {
        let filters = t.subscriptions.map(\.topic)
        for (i, a) in filters.enumerated() {
            for b in filters[(i + 1)...] { #expect(!Self.overlap(a, b), "\(a) and \(b) overlap") }
        }
        var inbound = [t.set, t.postReply, t.configPush, t.configGetReply, t.servicePrefix + "sample_now", t.rrpcRequestPrefix + "42",
                       t.eventPrefix + "power/post_reply", t.eventPrefix + "buffer_overflow/post_reply"]
        inbound += [t.historyPostReply, t.ntpResponse, t.otaUpgrade, t.firmwareGetReply].compactMap { $0 }
        for topic in inbound {
            #expect(filters.filter { Self.overlap($0, topic) }.count == 1, "\(topic)")
        }
    }

    @Test func otherBrokersGetTheSameLayoutWithoutNTP() {
        let t = AlinkTopics(plainClientId: "pi-1")
        #expect(t.post == "wisp/pi-1/thing/event/property/post")
        #expect(t.ntpRequest == nil && t.otaUpgrade == nil && t.historyPost == nil && t.subscriptions.count == 6)
    }

    @Test(arguments: [
        ("/sys/pk/dn/thing/service/property/set", AlinkTopics.Inbound.propertySet),
        ("/sys/pk/dn/thing/event/property/post_reply", .postReply),
        ("/sys/pk/dn/thing/event/property/history/post_reply", .postReply),
        ("/ext/ntp/pk/dn/response", .ntpResponse),
        ("/sys/pk/dn/thing/service/property/set_reply", .other),
        ("/sys/pk/other/thing/service/property/set", .other),
        ("/sys/pk/dn/thing/service/sample_now", .service(27..<37)),
        ("/sys/pk/dn/thing/service/sample_now_reply", .other),
        ("/sys/pk/dn/rrpc/request/12345", .rrpc(26..<31)),
        ("/sys/pk/dn/rrpc/request/12/34", .other),
        ("/sys/pk/dn/rrpc/request/", .other),
        ("/sys/pk/dn/thing/event/power/post_reply", .eventReply),
        ("/sys/pk/dn/thing/event/a/b/post_reply", .other),
        ("/sys/pk/dn/thing/event//post_reply", .other),
        ("/sys/pk/dn/thing/config/log/get_reply", .logConfig),
        ("/sys/pk/dn/thing/config/log/push", .logConfig),
        ("/sys/pk/dn/thing/config/log/push_reply", .other),
        ("/sys/pk/dn/thing/log/post_reply", .logPostReply),
        ("/sys/pk/dn/thing/deviceinfo/update_reply", .deviceInfoReply),
    ])
    func classifiesInboundTopics(topic: String, kind: AlinkTopics.Inbound) throws {
        var b = ByteBuffer(capacity: 128)
        try b.append(utf8: "xx" + topic)
        #expect(AlinkTopics(productKey: "pk", deviceName: "dn").classify(b, 2..<b.count) == kind)
    }

    /// The document's example post shape: id, version, params with value and time, method.
    @Test func propertyPostShape() {
        var w = JSONWriter(capacity: 256)
        #expect(PropertyPost.write(id: 123, values: [PropertyValue(index: 0, scaled: 235, decimals: 1), PropertyValue(index: 1, scaled: 1, decimals: 0)],
                                   names: ["Temperature", "LightSwitch"], time: 1_524_448_722_000, into: &w))
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) ==
            #"{"id":"123","version":"1.0","params":{"Temperature":{"value":23.5,"time":1524448722000},"LightSwitch":{"value":1,"time":1524448722000}},"method":"thing.event.property.post"}"#)
    }

    @Test func propertyPostWithSampleTimes() {
        var w = JSONWriter(capacity: 256)
        let ok = PropertyPost.write(id: 7, values: [PropertyValue(index: 0, scaled: 2350, decimals: 2)], names: ["temp"], time: 1_700_000_000_000, into: &w)
        #expect(ok)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self)
            == #"{"id":"7","version":"1.0","params":{"temp":{"value":23.5,"time":1700000000000}},"method":"thing.event.property.post"}"#)
    }

    @Test func postThatDoesNotFitIsReportedNotTruncatedSilently() {
        var w = JSONWriter(capacity: 40)
        #expect(!PropertyPost.write(id: 1, values: [PropertyValue(index: 0, scaled: 1, decimals: 0)], names: ["temp"], into: &w))
    }

    @Test(arguments: [
        (#"{"code":200,"data":{},"id":"123","message":"success","method":"thing.event.property.post","version":"1.0"}"#, Optional(200)),
        (#"{"code": 460,"id":"1","message":"request parameter error"}"#, 460),
        (#"{"id":"1","message":"no code"}"#, nil),
    ])
    func postReplyCodes(reply: String, code: Int?) throws {
        var b = ByteBuffer(capacity: 256)
        try b.append(utf8: reply)
        #expect(PropertyPost.replyCode(b, 0..<b.count) == code)
    }

    func set(_ payload: String, settable: [String] = ["LightSwitch", "Fan"]) -> (Result<PropertySet.Request, PropertySet.Refusal>, String) {
        let bytes = Array(payload.utf8)
        return bytes.withUnsafeBytes { raw in
            let json = try! JSONReader(raw)
            let r = PropertySet.parse(json, settable: settable)
            var w = JSONWriter(capacity: 256)
            switch r {
            case .success(let req): PropertySet.writeReply(code: 200, id: req.id, json: json, message: "success", into: &w)
            case .failure(let f): PropertySet.writeReply(code: f.code, id: f.id, json: json, message: f.message, into: &w)
            }
            return (r, String(decoding: w.buffer.bytes, as: UTF8.self))
        }
    }

    /// The document's example request and the reply it expects.
    @Test func propertySetAndItsReply() throws {
        let (r, reply) = set(#"{"method":"thing.service.property.set","id":"123","params":{"LightSwitch":1,"Fan":false},"version":"1.0.0"}"#)
        let req = try r.get()
        #expect(req.changes.map(\.index) == [0, 1] && req.changes.map(\.level) == [1, 0])
        #expect(reply == #"{"code":200,"data":{},"id":"123","message":"success","version":"1.0"}"#)
    }

    @Test(arguments: [
        (#"{"id":"9","params":{"Heater":1}}"#, #"{"code":460,"data":{},"id":"9","message":"property not settable: Heater","version":"1.0"}"#),
        (#"{"id":"9","params":{"LightSwitch":2}}"#, #"{"code":460,"data":{},"id":"9","message":"value of LightSwitch must be 0 or 1","version":"1.0"}"#),
        (#"{"id":"9","params":[1]}"#, #"{"code":460,"data":{},"id":"9","message":"request parameter error: no params object","version":"1.0"}"#),
        (#"{"id":"9","params":{"LightSwitch":1,"Heater":1}}"#, #"{"code":460,"data":{},"id":"9","message":"property not settable: Heater","version":"1.0"}"#),
    ])
    func propertySetRefusalsSetNothing(request: String, reply: String) {
        let (r, text) = set(request)
        guard case .failure = r else { Issue.record("accepted"); return }
        #expect(text == reply)
    }

    /// The NTP document's example shape (its times are from 2019, before wisp's 2020 floor,
    /// so the server times here are the same exchange in 2023): request, then server
    /// time = (serverRecvTime + serverSendTime + deviceRecvTime − deviceSendTime) / 2.
    @Test func ntpExample() throws {
        var w = JSONWriter(capacity: 64)
        NTP.writeRequest(deviceSendTime: 1_571_724_098_000, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"deviceSendTime":"1571724098000"}"#)
        // Device clock: sent at monotonic 1000, answer at 1200 (a 200 ms round trip).
        let offset = try NTP.offset(serverRecv: 1_700_000_000_110, serverSend: 1_700_000_000_115, sent: 1000, received: 1200).get()
        #expect(offset + 1200 == (1_700_000_000_110 + 1_700_000_000_115 + 200) / 2)
        #expect(throws: NTP.Refusal.self) {
            try NTP.offset(serverRecv: 1_571_724_098_110, serverSend: 1_571_724_098_115, sent: 1000, received: 1200).get()
        }
    }
}

@Suite("Property post size bound")
struct PropertyPostSizeTests {
    /// The bound the session's outbound buffers are sized from is reached exactly by the
    /// widest numbers, and never exceeded.
    @Test func widestPostFillsTheBoundExactly() {
        let names = ["cpu_temp", "load_avg", "mem_available_kb", "relay"]
        let bound = PropertyPost.maximumSize(names: names)
        var json = JSONWriter(capacity: bound)
        let widest = names.indices.map { PropertyValue(index: $0, scaled: Int64.min, decimals: 3) }
        #expect(PropertyPost.write(id: UInt64(bitPattern: Int64.min), values: widest, names: names, time: UInt64(bitPattern: Int64.min), into: &json))
        #expect(json.buffer.count == bound)
        var small = JSONWriter(capacity: bound - 1)
        #expect(!PropertyPost.write(id: UInt64(bitPattern: Int64.min), values: widest, names: names, time: UInt64(bitPattern: Int64.min), into: &small))
    }

    @Test func aTypicalPostIsWellInside() {
        let names = ["t"]
        var json = JSONWriter(capacity: PropertyPost.maximumSize(names: names))
        #expect(PropertyPost.write(id: 7, values: [PropertyValue(index: 0, scaled: 2345, decimals: 2)], names: names, time: 1_700_000_000_000, into: &json))
        #expect(String(decoding: json.buffer.written, as: UTF8.self)
                == #"{"id":"7","version":"1.0","params":{"t":{"value":23.45,"time":1700000000000}},"method":"thing.event.property.post"}"#)
    }
}

@Suite("History post")
struct HistoryPostTests {
    /// The platform's documented shape: a list with this device's identity and one object per
    /// sample, every value with its own time.
    @Test func shapeOfABatch() {
        var json = JSONWriter(capacity: 512)
        HistoryPost.begin(id: 41, productKey: "a1B2c3", deviceName: "boiler-7", into: &json)
        #expect(HistoryPost.add(values: [PropertyValue(index: 0, scaled: 215, decimals: 1), PropertyValue(index: 1, scaled: 1, decimals: 0)],
                                names: ["temp", "relay"], time: 1_700_000_000_000, first: true, into: &json))
        #expect(HistoryPost.add(values: [PropertyValue(index: 0, scaled: -5, decimals: 1)], names: ["temp", "relay"],
                                time: 1_700_000_060_000, first: false, into: &json))
        #expect(HistoryPost.finish(into: &json))
        #expect(String(decoding: json.buffer.written, as: UTF8.self) ==
            #"{"id":"41","version":"1.0","params":[{"identity":{"productKey":"a1B2c3","deviceName":"boiler-7"},"properties":["#
            + #"{"temp":{"value":21.5,"time":1700000000000},"relay":{"value":1,"time":1700000000000}},"#
            + #"{"temp":{"value":-0.5,"time":1700000060000}}]}],"method":"thing.event.property.history.post"}"#)
    }

    /// A sample that does not fit is taken back whole and the batch still closes: what goes
    /// out is always a complete document.
    @Test func aSampleThatDoesNotFitIsRolledBack() {
        let sample = [PropertyValue(index: 0, scaled: 2345, decimals: 2)]
        var json = JSONWriter(capacity: 200)
        HistoryPost.begin(id: 1, productKey: "pk", deviceName: "dn", into: &json)
        var added = 0
        while HistoryPost.add(values: sample, names: ["t"], time: 1_700_000_000_000, first: added == 0, into: &json) { added += 1 }
        #expect(added == 1)
        let before = json.buffer.count
        #expect(!HistoryPost.add(values: sample, names: ["t"], time: 1_700_000_000_000, first: false, into: &json))
        #expect(json.buffer.count == before && json.ok)
        #expect(HistoryPost.finish(into: &json))
        #expect(String(decoding: json.buffer.written, as: UTF8.self).hasSuffix(#"{"t":{"value":23.45,"time":1700000000000}}]}],"method":"thing.event.property.history.post"}"#))
    }
}

@Suite("OTA version report")
struct OTAInformTests {
    @Test func theReportIsThePlatformsForm() {
        var json = JSONWriter(capacity: 256)
        OTAInform.write(id: 3, version: "0.2.0", module: "wisp", into: &json)
        #expect(String(decoding: json.buffer.written, as: UTF8.self) == #"{"id":"3","params":{"version":"0.2.0","module":"wisp"}}"#)
        #expect(OTAInform.topic(productKey: "a1B2", deviceName: "boiler-7") == "/ota/device/inform/a1B2/boiler-7")
        #expect(AlinkTopics(productKey: "a1B2", deviceName: "boiler-7").otaInform == "/ota/device/inform/a1B2/boiler-7")
        #expect(AlinkTopics(plainClientId: "x").otaInform == nil, "no OTA on other brokers")
    }

    @Test(arguments: [("wisp", true), ("default", true), ("fw-2.main_x", true), ("", false), ("a b", false),
                      ("a/b", false), (String(repeating: "m", count: 33), false)])
    func moduleNames(name: String, ok: Bool) {
        #expect(OTAInform.isModuleName(name) == ok)
    }

    func call(_ name: String, _ text: String) -> Result<(id: Range<Int>?, call: ServiceCall), PropertySet.Refusal> {
        Array(text.utf8).withUnsafeBytes { ServiceCall.parse(name: name, try! JSONReader($0)) }
    }

    @Test func builtInServices() throws {
        guard case .success(let (id, c)) = call("sample_now", #"{"id":"42","version":"1.0","params":{},"method":"thing.service.sample_now"}"#) else {
            Issue.record("sample_now refused"); return
        }
        #expect(c == .sampleNow && id == 7..<9)
        guard case .success(let (_, i)) = call("set_interval", #"{"id":"1","params":{"interval":15}}"#) else { Issue.record("refused"); return }
        #expect(i == .setInterval(15))
        for bad in [#"{"params":{"interval":0}}"#, #"{"params":{"interval":1.5}}"#, #"{"params":{}}"#, #"{"params":{"interval":86401}}"#] {
            guard case .failure(let r) = call("set_interval", bad) else { Issue.record("accepted \(bad)"); continue }
            #expect(r.code == 460)
        }
        guard case .success(let (_, reboot)) = call("reboot", #"{"id":"2","params":{}}"#) else { Issue.record("reboot refused"); return }
        #expect(reboot == .reboot)
        guard case .failure(let r) = call("reboot_now", #"{"id":"5"}"#) else { Issue.record("unknown accepted"); return }
        #expect(r.code == 460 && r.message == "service not found: reboot_now" && r.id == 7..<8)
    }

    @Test func rrpcNamesTheServiceInItsMethod() {
        func name(_ text: String) -> String? { Array(text.utf8).withUnsafeBytes { ServiceCall.name(fromMethodOf: try! JSONReader($0)) } }
        #expect(name(#"{"method":"thing.service.sample_now","id":"1"}"#) == "sample_now")
        #expect(name(#"{"method":"thing.event.property.post"}"#) == nil)
        #expect(name(#"{"method":"thing.service."}"#) == nil)
        #expect(name(#"{"id":"1"}"#) == nil)
    }

    @Test func serviceReplies() {
        var w = JSONWriter(capacity: 256)
        ServiceCall.writeReply(code: 200, id: nil, json: nil, message: "success", interval: 15, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self) == #"{"code":200,"data":{"interval":15},"id":"","message":"success","version":"1.0"}"#)
    }

    @Test func eventPosts() {
        var w = JSONWriter(capacity: 512)
        EventPost.write(id: 9, name: "sensor_lost", fields: [.text("sensor", "x")], time: 1_700_000_000_000, into: &w)
        #expect(String(decoding: w.buffer.bytes, as: UTF8.self)
                == #"{"id":"9","version":"1.0","params":{"value":{"sensor":"x"},"time":1700000000000},"method":"thing.event.sensor_lost.post"}"#)
        #expect(EventPost.powerFields(0x50005) == [.number("under_voltage", 1), .number("freq_capped", 0), .number("throttled", 1),
                                                   .number("soft_temp_limit", 0), .number("flags", 0x50005)])
        #expect(AlinkTopics(productKey: "pk", deviceName: "dn").eventPost("power") == "/sys/pk/dn/thing/event/power/post")
    }
}
