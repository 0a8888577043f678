/// What goes out: publishing (QoS 0, or QoS 1 into the in-flight window), packet ids,
/// and every packet framed into `output` with the reserves kept.
extension Session {
    /// Queues a PUBLISH. QoS 1 messages are kept until PUBACK and resent with DUP after a
    /// reconnect. Returns the packet identifier (0 for QoS 0).
    public mutating func publish<P: Collection>(topic: String, payload: P, qos: QoS, retain: Bool = false) throws(PublishError) -> UInt16
    where P.Element == UInt8 {
        guard state == .online else { throw .notConnected }
        if qos == .atMostOnce {
            scratch.removeAll()
            do { try MQTTEncoder.encodePublish(topic: topic, payload: payload, qos: qos, retain: retain, into: &scratch) } catch { throw .encode(error) }
            try enqueueFramed(scratch, dup: false, keep: Session.answerReserve)
            return 0
        }
        guard let slot = inflight.freeSlot() else { throw .windowFull }
        let id = takePacketId()
        do {
            try MQTTEncoder.encodePublish(topic: topic, payload: payload, qos: qos, packetId: id, retain: retain, into: &inflight.buffers[slot])
        } catch {
            inflight.buffers[slot].removeAll()
            throw .encode(error)
        }
        do { try enqueueFramed(inflight.buffers[slot], dup: false, keep: Session.answerReserve) } catch {
            inflight.buffers[slot].removeAll()
            throw error
        }
        inflight.occupy(slot, id: id)
        return id
    }

    /// Queues a WebSocket close frame (8 bytes, no reason text) once per connection, from
    /// `controlReserve`; nothing over plain TCP.
    mutating func sendClose(_ code: UInt16) {
        framing.close(code, into: &output)
    }

    /// Queues a 2-byte control packet (PINGREQ, DISCONNECT) from `controlReserve`.
    mutating func enqueueControl(_ packet: [UInt8]) {
        if output.available < framing.framedSize(packet.count) { return }  // not while controlReserve holds
        framing.frame(packet, dup: false, into: &output)
    }

    mutating func takePacketId() -> UInt16 {
        let id = nextPacketId
        nextPacketId = nextPacketId == UInt16.max ? 1 : nextPacketId + 1
        return id
    }

    /// Copies an MQTT packet into `output`, inside a masked binary frame when over
    /// WebSocket, leaving `keep` bytes free. `dup` sets the PUBLISH DUP flag (MQTT 3.1.1
    /// §3.3.1.1) on the copy.
    mutating func enqueueFramed(_ packet: ByteBuffer, dup: Bool, keep: Int) throws(PublishError) {
        if framing.framedSize(packet.count) + keep > output.available { throw .outputFull }
        framing.frame(packet.written, dup: dup, into: &output)
    }
}
