// MQTT decoder: any split decodes like the whole stream; positions never pass the input;
// every accepted PUBLISH re-encodes and decodes to the same topic and payload.
private func decodeStream(_ pieces: [[UInt8]], capacity: Int) -> (packets: [MQTTInbound], bodies: [[UInt8]], error: MQTTDecodeError?) {
    var decoder = MQTTDecoder(capacity: capacity)
    var packets: [MQTTInbound] = [], bodies: [[UInt8]] = []
    for piece in pieces {
        var failure: MQTTDecodeError?
        piece.withUnsafeBytes { raw in
            var pos = 0
            while pos < raw.count {
                let before = pos
                do throws(MQTTDecodeError) {
                    if let p = try decoder.decode(raw, at: &pos) {
                        packets.append(p)
                        bodies.append(decoder.packet.bytes)
                    }
                } catch {
                    failure = error
                    return
                }
                check(pos <= raw.count && pos > before || pos == raw.count, "decoder position")
            }
        }
        if let failure { return (packets, bodies, failure) }
    }
    return (packets, bodies, nil)
}

func fuzz_mqtt(_ bytes: [UInt8]) {
    let whole = decodeStream([bytes], capacity: 512)
    let split = decodeStream(chunks(bytes), capacity: 512)
    check(whole.packets == split.packets && whole.bodies == split.bodies && whole.error == split.error, "split changes the result")
    for (packet, body) in zip(whole.packets, whole.bodies) {
        guard case .publish(let p) = packet else { continue }
        check(p.topic.upperBound <= body.count && p.payload.upperBound <= body.count, "ranges inside the packet")
        let topic = String(decoding: body[p.topic], as: UTF8.self)
        guard topic.utf8.elementsEqual(body[p.topic]) else { continue }  // not valid UTF-8: skip round trip
        var buffer = ByteBuffer(capacity: 1024)
        do {
            try MQTTEncoder.encodePublish(topic: topic, payload: body[p.payload], qos: p.qos, packetId: p.packetId, into: &buffer)
        } catch { check(false, "accepted PUBLISH does not re-encode: \(error)") }
        let again = decodeStream([buffer.bytes], capacity: 1024)
        check(again.packets.count == 1 && again.error == nil, "re-encoded PUBLISH decodes")
        if case .publish(let q) = again.packets[0] {
            check(Array(again.bodies[0][q.topic]) == Array(body[p.topic]) && Array(again.bodies[0][q.payload]) == Array(body[p.payload]), "round trip")
        }
    }
}
