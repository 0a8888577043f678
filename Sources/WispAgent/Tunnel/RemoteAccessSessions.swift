import CWispPlatform
import WispCore

/// The console's frames and the sessions they open: session_create answered once the
/// loopback service is connected (or refused with a code and why), data_transport both
/// ways with backpressure, session_release either way.
///
/// Codes in the device's common_response and session_release: 0 done; 1 the service type
/// is not declared in the board settings; 2 every session slot is in use, or the session
/// id is; 3 the loopback service refused or failed; 4 it did not answer within 10 s.
extension RemoteAccess {
    /// Acts on a frame from the endpoint; false when it must wait (its session's buffer is
    /// full, or the output has no room for the answer) and be offered again.
    func deliver(_ frame: TunnelFrame, now: UInt64) -> Bool {
        let reader = link.reader
        let sid = reader.bytes(frame.sessionId)
        switch frame.type {
        case .commonResponse:
            return true
        case .dataTransport:
            // Bytes may come before the service is connected (an ssh client speaks first):
            // they wait in the session's buffer and go once it is.
            guard let s = sessions.first(where: { $0.named(sid) }) else {
                log.debug("remote access: data for no open session dropped")
                return true
            }
            let payload = reader.bytes(frame.payload)
            if s.toLocal.available < payload.count { return false }
            s.toLocal.put(contentsOf: payload)
            s.bytesIn += Int64(payload.count)
            if !s.flushToLocal() { release(s, code: 3, "writing to the service failed") }
            return true
        case .sessionRelease:
            guard link.hasRoomForReply else { return false }
            if let s = sessions.first(where: { $0.named(sid) }) {
                log.info("remote access: session " + name(s.id) + " closed by the console (\(s.bytesIn) bytes in, \(s.bytesOut) out)")
                // What the console sent before its release still goes to the service.
                if case .open = s.phase, !s.toLocal.isEmpty, s.flushToLocal(), !s.toLocal.isEmpty {
                    s.phase = .draining(deadline: now + RemoteAccess.stallLimit)
                } else {
                    s.end()
                }
            }
            respond(to: frame.id, sid, code: 0, "")
            return true
        case .sessionCreate:
            guard link.hasRoomForReply else { return false }
            let service = reader.bytes(frame.serviceType)
            guard let port = board.tunnelPort(service) else {
                log.warning("remote access: session " + name(sid) + " refused: service type " + name(service)
                            + " is not declared in the board settings (tunnel_service." + name(service) + " = 127.0.0.1:PORT)")
                respond(to: frame.id, sid, code: 1, "service type " + name(service) + " is not allowed on this board")
                return true
            }
            if sessions.contains(where: { $0.named(sid) }) {
                respond(to: frame.id, sid, code: 2, "session id already in use")
                return true
            }
            guard let slot = sessions.first(where: { $0.isFree }) else {
                log.warning("remote access: session " + name(sid) + " refused: all \(RemoteAccess.maxSessions) sessions are in use")
                respond(to: frame.id, sid, code: 2, "all \(RemoteAccess.maxSessions) sessions are in use")
                return true
            }
            slot.start(sid, port: port, createId: frame.id, now: now, transport: loopback(port))
            log.info("remote access: session " + name(sid) + " (" + name(service) + ") to 127.0.0.1:\(port)")
            return true
        }
    }

    /// One session's turn: its connect, what waits for the service, what the service sent.
    /// True when it sent a frame.
    @discardableResult
    func serve(_ s: TunnelSession<T>, now: UInt64) -> Bool {
        guard let local = s.local else { return false }
        switch s.phase {
        case .free:
            return false
        case .connecting(let createId, let until):
            if now >= until {
                refuse(s, createId, code: 4, "127.0.0.1:\(s.port) did not answer within 10 s")
                return false
            }
            guard link.hasRoomForReply else { return false }
            switch local.open(now: now) {
            case .waitReadable: s.wants = 1
            case .waitWritable: s.wants = 2
            case .failed(let why):
                refuse(s, createId, code: 3, "cannot connect to 127.0.0.1:\(s.port): " + why)
            case .open:
                respond(to: createId, s.id, code: 0, "")
                s.phase = .open
            }
            return false
        case .draining(let until):
            // What the service says meanwhile is read and let go: unread bytes at close
            // would make the kernel reset the connection and drop what is still queued.
            _ = scratch.withUnsafeMutableBytes { local.receive($0) }
            if !flush(s, now: now) || s.toLocal.isEmpty || now >= until { s.end() }
            return false
        case .open:
            if !flush(s, now: now) {
                release(s, code: 3, "writing to the service failed")
                return false
            }
            var sent = false
            var turns = 0
            while link.hasRoom && turns < RemoteAccess.turnsPerLoop {
                turns += 1
                var result: Int64 = 0
                let made: Bool
                do {
                    made = try link.writer.data(sessionId: s.id) { room in
                        result = local.receive(room)
                        return result > 0 ? Int(result) : 0
                    }
                } catch {
                    release(s, code: 3, error.message)
                    return sent
                }
                if made {
                    _ = link.sendFrame()
                    s.bytesOut += result
                    sent = true
                }
                if result == 0 { return sent }
                if result < 0 {
                    release(s, code: 0, result == Int64(WISP_IO_CLOSED) ? "the service closed the connection" : "reading from the service failed")
                    return sent
                }
            }
            if turns >= RemoteAccess.turnsPerLoop { busy = true }
            return sent
        }
    }

    /// Writes what waits for the service; any progress restarts a waiting frame's 10 s.
    /// False when the service's socket failed.
    func flush(_ s: TunnelSession<T>, now: UInt64) -> Bool {
        let before = s.toLocal.count
        let ok = s.flushToLocal()
        if s.toLocal.count < before { pendingSince = now }
        return ok
    }

    /// The session's connect failed: the console's session_create is answered with why.
    func refuse(_ s: TunnelSession<T>, _ createId: Int64, code: Int64, _ why: String) {
        log.warning("remote access: session " + name(s.id) + " refused: " + why)
        respond(to: createId, s.id, code: code, why)
        s.end()
    }

    /// The session ended on this side: the console is told (session_release) and the slot freed.
    func release(_ s: TunnelSession<T>, code: Int64, _ why: String) {
        log.info("remote access: session " + name(s.id) + " ended: " + why + " (\(s.bytesIn) bytes in, \(s.bytesOut) out)")
        do {
            try link.writer.sessionRelease(sessionId: s.id, code: code, message: why.utf8)
            if !link.sendFrame() { log.debug("remote access: no room to tell the console; the session ends anyway") }
        } catch {
            log.debug("remote access: " + error.message)
        }
        s.end()
    }

    /// Every session ends (the tunnel closed or failed): the console is told (`tell`) where
    /// it still can be.
    func endAll(code: Int64, _ why: String, tell: Bool = true) {
        for s in sessions where !s.isFree {
            if case .draining = s.phase {  // released by the console already
                s.end()
                continue
            }
            if tell, case .open = link.phase { release(s, code: code, why) } else {
                log.info("remote access: session " + name(s.id) + " ended: " + why + " (\(s.bytesIn) bytes in, \(s.bytesOut) out)")
                s.end()
            }
        }
    }

    /// A common_response to frame `id`.
    func respond<S: Collection>(to id: Int64, _ sid: S, code: Int64, _ why: String) where S.Element == UInt8 {
        do {
            try link.writer.response(to: id, sessionId: sid, code: code, message: why.utf8)
            if !link.sendFrame() { log.debug("remote access: no room for a response; it is dropped") }
        } catch {
            log.debug("remote access: " + error.message)
        }
    }

    /// A session id or service type for the log: `isName` bytes, safe as they are.
    func name<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 { String(decoding: bytes, as: UTF8.self) }
}
