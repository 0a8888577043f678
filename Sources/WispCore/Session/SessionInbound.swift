/// What comes in: buffered input through the framing (upgrade, frames) to the MQTT
/// decoder, and each packet dispatched.
extension Session {
    /// Parses buffered input until it yields an action or runs out.
    mutating func parseInput(now: UInt64) -> SessionAction? {
        while true {
            switch state {
            case .upgrading, .awaitingConnack, .online, .closing: break
            default:
                clearInput()
                return nil
            }
            if let range = pendingData {
                if let action = feedMQTT(range, now: now) { return action }
                if events.count > 0 { return nil }
                continue
            }
            if inputPosition >= input.count {
                clearInput()
                return nil
            }
            // Backpressure: what is read next may need an answer (PUBACK, pong); leave it
            // unread until the output has room for one, rather than drop it or the link.
            if output.available < Session.answerReserve { return nil }
            let next: WebSocketConnection.Event?
            do { next = try framing.next(input.bytes, at: &inputPosition, output: &output) } catch {
                switch error {
                case .handshake(let e): return fail(now: now, .handshake(e))
                case .frame(let e): return fail(now: now, .webSocketProtocol(e))
                case .textMessage: return fail(now: now, .textMessage)
                case .outputOverflow: return fail(now: now, .outputOverflow)
                }
            }
            switch next {
            case nil:
                continue
            case .upgraded?:
                state = .awaitingConnack(deadline: now + config.connectTimeout)
                events.push(.upgraded)
                if let error = sendConnect() { return fail(now: now, .cannotEncode(error)) }
                return nil
            case .data(let range)?:
                pendingData = range
            case .closed(let code)?:
                if case .closing = state {
                    state = .stopped
                    transportOpen = false
                    return .closeTransport(.stopped)
                }
                return fail(now: now, .serverClosed(code: code))
            }
        }
    }

    /// Feeds a range of `input` to the MQTT decoder; handles at most one packet.
    mutating func feedMQTT(_ range: Range<Int>, now: UInt64) -> SessionAction? {
        var pos = range.lowerBound
        let slice = UnsafeRawBufferPointer(rebasing: input.bytes[0..<range.upperBound])
        let packet: MQTTInbound?
        do { packet = try mqtt.decode(slice, at: &pos) } catch {
            pendingData = nil
            sendClose(WebSocketCloseCode.protocolError)
            return fail(now: now, .mqttProtocol(error))
        }
        pendingData = pos < range.upperBound ? pos..<range.upperBound : nil
        guard let packet else { return nil }
        return handle(packet, now: now)
    }

    mutating func handle(_ packet: MQTTInbound, now: UInt64) -> SessionAction? {
        if case .awaitingConnack = state { return connack(packet, now: now) }
        switch packet {
        case .connack:
            return fail(now: now, .unexpectedPacket(.connack))
        case .publish(let p):
            if p.qos == .atLeastOnce {
                // Ten bytes framed; parseInput left `answerReserve` free before this packet.
                scratch.removeAll()
                do throws(MQTTEncodeError) { try MQTTEncoder.encodePuback(packetId: p.packetId, into: &scratch) } catch {
                    return fail(now: now, .outputOverflow)
                }
                do { try enqueueFramed(scratch, dup: false, keep: Session.controlReserve) } catch {
                    return fail(now: now, .outputOverflow)
                }
            }
            events.push(.message(p))
        case .puback(let id):
            if inflight.release(id) { events.push(.delivered(packetId: id)) }
        case .suback(let id, let codes):
            // MQTT 3.1.1 §3.9.3: one code per topic filter, in order, for one of our
            // SUBSCRIBEs not answered yet; in any order (a broker may answer them as it likes).
            guard id != 0, let k = subscribeIds.firstIndex(of: id),
                  case let chunk = Session.subscribeChunk(k, of: config.subscriptions.count), codes.count == chunk.count else {
                return fail(now: now, .unexpectedSuback(packetId: id, codes: codes.count))
            }
            subscribeIds[k] = 0
            subacksPending -= 1
            for (j, i) in codes.enumerated() where mqtt.packet[i] == 0x80 {
                let index = chunk.lowerBound + j
                if index < 64 { refusedSoFar |= 1 << UInt64(index) }
            }
            if subacksPending == 0 { events.push(.subscribed(refused: refusedSoFar)) }
        case .unsuback:
            break
        case .pingresp:
            if let sent = pingSentAt, now >= sent {
                pingRoundTrip = now - sent
                pingRounds &+= 1
            }
            pingSentAt = nil
        case .oversized(let type, let length):
            if type != .publish { return fail(now: now, .mqttProtocol(.badLength(type, length))) }
            events.push(.skippedOversized(length: length))
        }
        return nil
    }

    func packetType(_ packet: MQTTInbound) -> PacketType {
        switch packet {
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .suback: .suback
        case .unsuback: .unsuback
        case .pingresp: .pingresp
        case .oversized(let t, _): t
        }
    }
}
