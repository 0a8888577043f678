/// The MQTT handshake on a new link: CONNECT, CONNACK, and the thing model's
/// SUBSCRIBEs (each SUBACK is matched in the inbound dispatch).
extension Session {
    /// Queues CONNECT; a CONNECT that cannot be encoded (a client id or will too long for
    /// the buffer) is a reason to stop this attempt, said out loud.
    mutating func sendConnect() -> MQTTEncodeError? {
        guard let connect = connectPacket else { return nil }
        connectPacket = nil  // do not keep the password around
        scratch.removeAll()
        do {
            try MQTTEncoder.encodeConnect(connect, into: &scratch)
        } catch {
            return error
        }
        do { try enqueueFramed(scratch, dup: false, keep: Session.answerReserve) } catch {
            return .bufferTooSmall(needed: scratch.count, available: output.available - Session.answerReserve)
        }
        return nil
    }

    /// The answer to CONNECT: online, the thing model's SUBSCRIBEs queued
    /// (`filtersPerSubscribe` filters each) and unacknowledged QoS 1 posts queued again
    /// with DUP; or the attempt ends.
    mutating func connack(_ packet: MQTTInbound, now: UInt64) -> SessionAction? {
        guard case .connack(let present, let code) = packet else {
            return fail(now: now, .unexpectedPacket(packetType(packet)))
        }
        if code != .accepted {
            return fail(now: now, .refused(code))
        }
        state = .online
        onlineSince = now
        stableReported = false
        refusedSoFar = 0
        subacksPending = 0
        for k in subscribeIds.indices {
            let chunk = Session.subscribeChunk(k, of: config.subscriptions.count)
            let id = takePacketId()
            subscribeIds[k] = id
            subacksPending += 1
            scratch.removeAll()
            do throws(MQTTEncodeError) {
                try MQTTEncoder.encodeSubscribe(config.subscriptions[chunk], packetId: id, into: &scratch)
            } catch { return fail(now: now, .cannotSubscribe) }
            do { try enqueueFramed(scratch, dup: false, keep: Session.answerReserve) } catch {
                return fail(now: now, .cannotSubscribe)
            }
        }
        // Output holds the whole window plus a packet and 1 KiB (init): after a CONNACK
        // (output then holds at most the SUBSCRIBEs) every unacknowledged post fits.
        var resent = 0
        for slot in inflight.inOrder() {
            do { try enqueueFramed(inflight.buffers[slot], dup: true, keep: Session.answerReserve) } catch {
                return fail(now: now, .outputOverflow)
            }
            resent += 1
        }
        events.push(.online(sessionPresent: present, resent: resent))
        return nil
    }

    /// How many SUBSCRIBEs `count` subscriptions take, `filtersPerSubscribe` at most each.
    static func subscribeChunkCount(_ count: Int) -> Int {
        (count + filtersPerSubscribe - 1) / filtersPerSubscribe
    }

    /// The subscriptions SUBSCRIBE `k` (from 0) carries, in order.
    static func subscribeChunk(_ k: Int, of count: Int) -> Range<Int> {
        (k * filtersPerSubscribe)..<min(count, (k + 1) * filtersPerSubscribe)
    }
}
