"""The stand-in platform's secure tunnel (platform/tunnel), proved with a small device-side
client written here: MQTT (paho, signed in over ws like a device) for the notify and the
proxy request; TLS trusting the platform's CA and a WebSocket client that masks its frames,
one tunnel frame per binary message, for the tunnel itself. A local echo server plays the
board's service; where openssh-server is installed, a stock ssh reaches a real sshd through
the stand-in and this device. Each test's platform/tunnel must never print the token, nor
let an exception kill a thread (its stderr)."""
import base64
import getpass
import hashlib
import json
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from test_platform import DN, PK, SECRET, paho_connect, start_platform

SUBPROTOCOL = "aliyun.iot.securetunnel-v1.1"
BASE = f"/sys/{PK}/{DN}/secure_tunnel"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    d = tmp_path_factory.mktemp("platform")
    info = start_platform(d, f"{PK} {DN} {SECRET}\n")
    info["dir"] = d
    yield info
    info["proc"].terminate()
    info["proc"].wait(10)


class Mqtt:
    """The device's MQTT side: signed in over ws, subscribed to the notify and the reply."""

    def __init__(self, platform):
        self.seen, self.lock, self.ids = [], threading.Lock(), iter(range(1, 10**6))
        self.client, rc = paho_connect(platform, "ws", client="tunnel-device")
        assert rc == 0
        subscribed = threading.Event()
        self.client.on_message = self.on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe([(BASE + "/notify", 1), (BASE + "/proxy/request_reply", 1)])
        assert subscribed.wait(10)

    def on_message(self, c, u, m):
        with self.lock:
            self.seen.append((m.topic, json.loads(m.payload)))

    def wait(self, suffix, predicate=lambda m: True, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [m for t, m in self.seen if t.endswith(suffix) and predicate(m)]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no {suffix} message; seen {self.seen}")

    def request(self):
        """A proxy request, as the device asks at connect: the platform's reply."""
        rid = str(next(self.ids))
        self.client.publish(BASE + "/proxy/request", json.dumps({"id": rid, "params": {}}), qos=1)
        return self.wait("/request_reply", lambda m: m.get("id") == rid)


@pytest.fixture(scope="module")
def mqtt_device(platform):
    m = Mqtt(platform)
    yield m
    m.client.loop_stop()
    m.client.disconnect()


class Tunnel:
    """platform/tunnel as a process: its ready lines, its events, its commands."""

    def __init__(self, platform, tmp_path, *extra):
        self.stderr = tmp_path / "tunnel.stderr"
        self.proc = subprocess.Popen([str(ROOT / "platform/tunnel"), "--dir", str(platform["dir"]), "--tcp-port",
                                      str(platform["ports"]["tcp"]), "--product-key", PK, "--device", DN, *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.stderr, "w"), text=True)
        self.lines, self.services = [], {}
        while True:
            line = self.proc.stdout.readline().strip()
            assert line, f"platform/tunnel ended before it was ready: {self.stderr.read_text()}"
            if line == "ready":
                break
            if line.startswith("wss="):
                self.url = line[4:]
            elif line.startswith("service "):
                name, _, where = line[8:].partition("=")
                self.services[name] = int(where.rpartition(":")[2])
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def wait(self, text, since=0, timeout=10):
        """The first line from `since` on that starts with `text`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [line for line in self.lines[since:] if line.startswith(text)]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no line '{text}'; lines: {self.lines}")

    def errors(self, since=0):
        with self.lock:
            return [line for line in self.lines[since:] if line.startswith("protocol error:")]

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


@pytest.fixture
def tunnel(platform, mqtt_device, tmp_path):
    t = Tunnel(platform, tmp_path)
    yield t
    t.proc.terminate()
    t.proc.wait(10)
    out = "\n".join(t.lines)
    # Never the token; never an exception that escaped a thread.
    for _, m in mqtt_device.seen:
        token = m.get("token") or (m.get("data") or {}).get("token")
        assert not token or token not in out
    assert "Traceback" not in t.stderr.read_text(), t.stderr.read_text()


@pytest.fixture(scope="module")
def echo():
    """The board's local service: echoes what it gets."""
    server = socket.create_server(("127.0.0.1", 0))

    def handle(c):
        with c:
            while data := c.recv(65536):
                c.sendall(data)

    def accept():
        while True:
            threading.Thread(target=handle, args=(server.accept()[0],), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def sshd(tmp_path):
    """The board's sshd, on 127.0.0.1, letting in the key `key` as this user."""
    if not (os.path.exists("/usr/sbin/sshd") and shutil.which("ssh") and os.path.isdir("/run/sshd")):
        pytest.skip("no sshd (openssh-server) or ssh")
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    shutil.copy(tmp_path / "user.pub", tmp_path / "authorized_keys")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    (tmp_path / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path}/host\nPidFile {tmp_path}/sshd.pid\n"
        f"AuthorizedKeysFile {tmp_path}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp_path / "sshd_config")], stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline and proc.poll() is None, "sshd did not start"
            time.sleep(0.05)
    yield dict(port=port, key=str(tmp_path / "user"))
    proc.terminate()
    proc.wait(10)


class Tls:
    """TLS on memory: as in platform/tunnel, one SSL object must not be used by a reading
    thread and a writing one at once, so it works under a lock and the socket outside it."""

    def __init__(self, sock, context, host):
        self.sock, self.inbox, self.outbox = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.inbox, self.outbox, server_hostname=host)
        self.lock, self.sending = threading.Lock(), threading.Lock()

    def run(self, op, *args):
        while True:
            with self.lock:
                try:
                    result, more = op(*args), False
                except ssl.SSLWantReadError:
                    more = True
                out = self.outbox.read()
                if out:
                    self.sending.acquire()
            if out:
                try:
                    self.sock.sendall(out)
                finally:
                    self.sending.release()
            if not more:
                return result
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            with self.lock:
                self.inbox.write(data)


class DeviceEnd:
    """The device's end of a tunnel, as wisp will do it: the upgrade (status, headers), then
    a thread reading the platform's frames into `frames`, except data for a session that
    `serve` connected to a local service, which goes there."""

    def __init__(self, platform, url, token=None, protocol=SUBPROTOCOL):
        host_port, _, path = url.removeprefix("wss://").partition("/")
        host, port = host_port.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.tls = Tls(self.sock, ssl.create_default_context(cafile=platform["ca_file"]), host)
        self.tls.run(self.tls.tls.do_handshake)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        request += (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "") + (f"tunnel-access-token: {token}\r\n" if token else "")
        self.tls.run(self.tls.tls.write, (request + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.tls.run(self.tls.tls.read, 65536)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.frames, self.routes, self.problems, self.pongs = queue.Queue(), {}, [], []
        self.wlock, self.last_id, self.close_code, self.closed = threading.RLock(), 0, None, threading.Event()
        if self.status != 101:
            self.sock.close()
        else:
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert self.headers["sec-websocket-accept"] == accept
            self.sock.settimeout(None)
            threading.Thread(target=self.read, daemon=True).start()

    def take(self, n):
        while len(self.buf) < n:
            data = self.tls.run(self.tls.tls.read, 65536)
            if not data:
                raise EOFError
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        try:
            while True:
                b0, b1 = self.take(2)
                n = b1 & 0x7F
                if b1 & 0x80:
                    self.problems.append("a masked frame from the platform")
                if n >= 126:
                    n = struct.unpack("!H", self.take(2))[0] if n == 126 else struct.unpack("!Q", self.take(8))[0]
                opcode, data = b0 & 0x0F, self.take(n)
                if opcode == 8:
                    self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    self.ws(8, data[:2])
                    self.sock.shutdown(socket.SHUT_WR)
                    return
                if opcode == 10:
                    self.pongs.append(data)
                    continue
                if opcode != 2:
                    self.problems.append(f"opcode {opcode} from the platform")
                    continue
                hlen = struct.unpack("!H", data[:2])[0]
                header = json.loads(data[2:2 + hlen])
                frame = dict(header=header, type=header["frame_type"], id=header["frame_id"], sid=header["session_id"],
                             payload=data[2 + hlen:])
                if len(frame["payload"]) > 4096 or set(header) != {"frame_type", "frame_id", "session_id", "service_type"}:
                    self.problems.append(f"frame {header} with {len(frame['payload'])} bytes")
                local = self.routes.get(frame["sid"])
                if local and frame["type"] == 4:
                    local.sendall(frame["payload"])
                    continue
                if local and frame["type"] == 3:
                    self.routes.pop(frame["sid"]).shutdown(socket.SHUT_RDWR)
                    self.respond(frame, 0)
                self.frames.put(frame)
        except (OSError, EOFError):
            pass
        finally:
            self.closed.set()

    def ws(self, opcode, payload, mask=True):
        n, key = len(payload), os.urandom(4)
        length = bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n) if n < 65536 else bytes([127]) + struct.pack("!Q", n)
        head = bytes([0x80 | opcode, length[0] | (0x80 if mask else 0)]) + length[1:]
        if mask:
            keys = key * (n // 4 + 1)
            head, payload = head + key, (int.from_bytes(payload, "big") ^ int.from_bytes(keys[:n], "big")).to_bytes(n, "big")
        with self.wlock:
            self.tls.run(self.tls.tls.write, head + payload)

    def send(self, kind, sid, payload=b"", fid=None, header=None):
        """A frame; the next id unless `fid`; `header` replaces the header's JSON."""
        with self.wlock:
            if fid is None:
                self.last_id += 1
                fid = self.last_id
            raw = header if header is not None else json.dumps({"frame_type": kind, "frame_id": fid, "session_id": sid,
                                                                 "service_type": ""}).encode()
            self.ws(2, struct.pack("!H", len(raw)) + raw + payload)

    def respond(self, frame, code, msg=""):
        self.send(1, frame["sid"], json.dumps({"code": code, "msg": msg}).encode(), fid=frame["id"])

    def frame(self, kind=None, timeout=10):
        f = self.frames.get(timeout=timeout)
        assert kind is None or f["type"] == kind, f
        return f

    def serve(self, create, port):
        """Takes a session: connects to the local service, answers 0, relays both ways, and
        releases the session when the local side ends."""
        sid, local = create["sid"], socket.create_connection(("127.0.0.1", port))
        self.routes[sid] = local
        self.respond(create, 0)

        def pump():
            try:
                while data := local.recv(4096):
                    self.send(4, sid, data)
            except OSError:
                pass
            local.close()
            if self.routes.pop(sid, None):
                self.send(3, sid, b'{"code":0,"msg":"local service closed"}')
        threading.Thread(target=pump, daemon=True).start()

    def close(self):
        try:
            self.ws(8, struct.pack("!H", 1000))
            self.closed.wait(3)
        except OSError:
            pass
        self.sock.close()


def connect(platform, tunnel, token):
    device = DeviceEnd(platform, tunnel.url, token)
    assert device.status == 101, device.status
    tunnel.wait("device connected")
    return device


def console(tunnel, name="_SSH"):
    return socket.create_connection(("127.0.0.1", tunnel.services[name]), timeout=10)


def closed(sock, timeout=10):
    """True when the peer ends the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# ---------------------------------------------------------------- the tests


def test_notify_and_proxy_request_give_the_tunnel(tunnel, mqtt_device):
    line = tunnel.wait("notify connect tunnel=")
    tid = line.rpartition("=")[2]
    notify = mqtt_device.wait("/notify", lambda m: m.get("tunnel_id") == tid)
    assert notify["operation"] == "connect" and notify["host"] == "127.0.0.1"
    assert tunnel.url == f"wss://127.0.0.1:{notify['port']}{notify['path']}"
    assert isinstance(notify["token"], str) and len(notify["token"]) >= 32 and 3590 <= notify["token_expire"] <= 3600
    reply = mqtt_device.request()
    assert reply["code"] == 200 and reply["message"] == "success"
    assert {k: v for k, v in reply["data"].items() if k != "token_expire"} == \
           {k: v for k, v in notify.items() if k not in ("operation", "token_expire")}
    tunnel.wait(f"proxy request id={reply['id']} code=200")
    # notify: the same tunnel again.
    tunnel.command("notify")
    again = tunnel.wait("notify connect tunnel=", since=tunnel.lines.index(line) + 1)
    assert again == line
    assert tunnel.errors() == []


def test_upgrade_needs_the_token_and_the_subprotocol(platform, tunnel, mqtt_device):
    token = mqtt_device.request()["data"]["token"]
    assert DeviceEnd(platform, tunnel.url).status == 401
    tunnel.wait("device refused: 401 no tunnel-access-token")
    assert DeviceEnd(platform, tunnel.url, token=("y" if token[0] == "x" else "x") + token[1:]).status == 401
    tunnel.wait("device refused: 401 a wrong tunnel-access-token")
    assert DeviceEnd(platform, tunnel.url.rsplit("/", 1)[0] + "/other", token).status == 404
    mark = tunnel.mark()
    assert DeviceEnd(platform, tunnel.url, token, protocol="mqtt").status == 400
    assert "Sec-WebSocket-Protocol does not list" in tunnel.wait("device refused: 400", since=mark)
    assert len(tunnel.errors(mark)) == 1
    device = DeviceEnd(platform, tunnel.url, token, protocol="other, " + SUBPROTOCOL)
    assert device.status == 101 and device.headers["sec-websocket-protocol"] == SUBPROTOCOL
    tunnel.wait("device connected")
    device.close()
    tunnel.wait("device disconnected code=1000")
    assert device.close_code == 1000


def test_sessions_relay_both_ways_and_end_from_either_side(platform, tunnel, mqtt_device, echo):
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    c = console(tunnel)
    create = device.frame(2)
    assert create["header"] == {"frame_type": 2, "frame_id": 1, "session_id": "s1", "service_type": "_SSH"}
    assert create["payload"] == b""
    tunnel.wait("session s1 _SSH created")
    device.serve(create, echo)
    tunnel.wait("session s1 accepted")
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert c.recv(100) == b"SSH-2.0-OpenSSH_9.2\r\n"

    # 1 MB each way at once, in frames of at most 4096 bytes.
    blob, got = os.urandom(1 << 20), bytearray()
    sender = threading.Thread(target=c.sendall, args=(blob,))
    sender.start()
    while len(got) < len(blob):
        chunk = c.recv(65536)
        assert chunk, len(got)
        got += chunk
    sender.join()
    assert got == blob

    # The console hangs up: the device gets a session_release and answers it.
    c.close()
    release = device.frame(3)
    assert release["sid"] == "s1" and release["id"] > create["id"]
    assert json.loads(release["payload"])["code"] == 0
    tunnel.wait("session s1 closed by console")
    tunnel.wait("session s1 release answered code=0")

    # The device's local side ends: its session_release closes the console's socket.
    c2 = console(tunnel)
    create = device.frame(2)
    assert create["sid"] == "s2"
    device.serve(create, echo)
    tunnel.wait("session s2 accepted")
    device.routes["s2"].shutdown(socket.SHUT_WR)  # the echo server then ends its side
    assert closed(c2)
    tunnel.wait('session s2 released by device code=0 msg="local service closed"')
    assert tunnel.errors() == [] and device.problems == []
    device.close()


def test_stock_ssh_reaches_the_boards_sshd(platform, tunnel, mqtt_device, sshd):
    """What the tunnel is for: the console's ssh, through the stand-in and the device."""
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    ssh = subprocess.Popen(["ssh", "-p", str(tunnel.services["_SSH"]), "-i", sshd["key"], "-o", "BatchMode=yes",
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                            f"{getpass.getuser()}@127.0.0.1", "echo tunnel-ok; head -c 300000 /dev/zero | wc -c"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    device.serve(device.frame(2), sshd["port"])
    out, err = ssh.communicate(timeout=30)
    assert ssh.returncode == 0 and out.split() == ["tunnel-ok", "300000"], err
    # Either side may end the session first (or both at once): no protocol error either way.
    tunnel.wait("session s1 accepted")
    ended = tunnel.wait("session s1 ", since=tunnel.lines.index("session s1 accepted") + 1)
    assert "closed by console" in ended or "released by device" in ended, ended
    time.sleep(0.5)
    assert tunnel.errors() == [] and device.problems == []
    device.close()


def test_a_refused_session_closes_the_console_socket(platform, tunnel, mqtt_device):
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    c = console(tunnel)
    create = device.frame(2)
    device.respond(create, 1, "connect to 127.0.0.1:22 refused")
    assert closed(c)
    tunnel.wait('session s1 refused code=1 msg="connect to 127.0.0.1:22 refused"')
    assert tunnel.errors() == []
    device.close()


def test_expire_closes_with_4001_and_the_new_token_comes_by_request(platform, tunnel, mqtt_device):
    old = mqtt_device.request()["data"]
    device = connect(platform, tunnel, old["token"])
    c = console(tunnel)
    create = device.frame(2)
    mark = tunnel.mark()
    tunnel.command("expire")
    assert device.closed.wait(5) and device.close_code == 4001
    tunnel.wait("token expired", since=mark)
    tunnel.wait("device disconnected code=4001", since=mark)
    assert closed(c)
    assert DeviceEnd(platform, tunnel.url, old["token"]).status == 401
    tunnel.wait("device refused: 401 an expired token", since=mark)
    new = mqtt_device.request()["data"]
    assert new["token"] != old["token"] and new["tunnel_id"] == old["tunnel_id"] and new["path"] == old["path"]
    # No notify carries the new token.
    assert not [m for t, m in mqtt_device.seen if m.get("token") == new["token"]]
    device = connect(platform, tunnel, new["token"])
    device.close()
    assert create["id"] == 1 and tunnel.errors() == []


def test_the_token_expires_by_itself(platform, mqtt_device, tmp_path):
    tunnel = Tunnel(platform, tmp_path, "--token-expire", "2")
    try:
        data = mqtt_device.request()["data"]
        assert data["token_expire"] <= 2
        device = connect(platform, tunnel, data["token"])
        assert device.closed.wait(5) and device.close_code == 4001
        tunnel.wait("token expired")
    finally:
        tunnel.proc.terminate()
        tunnel.proc.wait(10)


def test_close_and_open(platform, tunnel, mqtt_device):
    data = mqtt_device.request()["data"]
    device = connect(platform, tunnel, data["token"])
    tunnel.command("close maintenance window")
    notify = mqtt_device.wait("/notify", lambda m: m.get("operation") == "close" and m.get("tunnel_id") == data["tunnel_id"])
    assert notify == {"operation": "close", "tunnel_id": data["tunnel_id"], "close_reason": "maintenance window"}
    assert device.closed.wait(5) and device.close_code == 1000
    tunnel.wait(f"tunnel closed tunnel={data['tunnel_id']}")
    reply = mqtt_device.request()
    assert reply["code"] == 404 and reply["message"]
    assert DeviceEnd(platform, tunnel.url, data["token"]).status == 404
    c = console(tunnel)
    assert closed(c)
    tunnel.wait("console _SSH: no tunnel open")

    mark = tunnel.mark()
    tunnel.command("open")
    tid = tunnel.wait("notify connect tunnel=", since=mark).rpartition("=")[2]
    assert tunnel.wait("tunnel opened", since=mark) == f"tunnel opened tunnel={tid}"
    notify = mqtt_device.wait("/notify", lambda m: m.get("tunnel_id") == tid)
    assert tid != data["tunnel_id"] and notify["operation"] == "connect"
    device = DeviceEnd(platform, f"wss://127.0.0.1:{notify['port']}{notify['path']}", notify["token"])
    assert device.status == 101
    device.close()
    assert tunnel.errors() == []


def test_answers_due_in_10_s(platform, tunnel, mqtt_device):
    """A session_create unanswered for 10 s is a protocol error and ends the console's
    connection; a session_release that crossed the device's own needs no answer."""
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    c1 = console(tunnel)
    device.respond(device.frame(2), 0)
    tunnel.wait("session s1 accepted")
    c1.close()
    assert device.frame(3)["sid"] == "s1"
    device.send(3, "s1", b'{"code":0,"msg":"the local side closed too"}')  # instead of an answer
    tunnel.wait("session s1 released by device code=0")

    c2 = console(tunnel)
    create = device.frame(2)
    started = time.time()
    assert closed(c2, timeout=15)
    assert 9 < time.time() - started < 12
    tunnel.wait("protocol error: no common_response")  # printed around the close: no race
    assert tunnel.errors() == [f"protocol error: no common_response to session_create {create['id']} of session s2 "
                               "within 10 s (1 so far)"]
    tunnel.wait("session s2 timed out")
    device.respond(create, 0)  # too late
    assert "awaits no answer" in tunnel.wait(f"protocol error: common_response to frame {create['id']}")
    device.close()


MALFORMED = [
    ("one byte", b"\x00", "message of 1 bytes with header length 0"),
    ("empty header", b"\x00\x00{}", "with header length 0"),
    ("header past the end", b"\x00\x10{}", "message of 4 bytes with header length 16"),
    ("header too long", b"\x08\x01" + b" " * 2049, "header length 2049"),
    ("header not JSON", b"\x00\x03{x}", "header is not JSON"),
    ("header an array", b"\x00\x02[]", "header is not a JSON object"),
    ("header nested deep", b"\x07\xd0" + b"[" * 1000 + b"]" * 1000, "header is not JSON"),
    ("a number of 2000 digits", b"\x07\xd0" + b"1" * 2000, "header is not a JSON object"),
    ("key twice", None, "header is not JSON (a key twice)"),
    ("frame_type 9", {"frame_type": 9, "frame_id": 1, "session_id": "s1"}, "frame_type 9"),
    ("frame_type a string", {"frame_type": "4", "frame_id": 1, "session_id": "s1"}, 'frame_type "4"'),
    ("frame_id negative", {"frame_type": 4, "frame_id": -1, "session_id": "s1"}, "frame_id -1"),
    ("frame_id a float", {"frame_type": 4, "frame_id": 1.5, "session_id": "s1"}, "frame_id 1.5"),
    ("no session_id", {"frame_type": 4, "frame_id": 1}, "with session_id null"),
    ("unknown field", {"frame_type": 4, "frame_id": 1, "session_id": "s1", "extra": 1}, 'unknown field "extra"'),
    ("unknown session", {"frame_type": 4, "frame_id": 1, "session_id": "zz"}, 'unknown session "zz"'),
    ("payload 4097", ({"frame_type": 4, "frame_id": 1, "session_id": "s1"}, 4097), "payload of 4097 bytes"),
    ("answer to nothing", {"frame_type": 1, "frame_id": 77, "session_id": "s1"}, "common_response to frame 77, which awaits no answer"),
    ("session_create", {"frame_type": 2, "frame_id": 1, "session_id": "s9", "service_type": "_SSH"}, "session_create 1 from the device"),
]


@pytest.mark.parametrize("what, message, error", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_a_malformed_frame_is_a_protocol_error_and_the_connection_goes_on(platform, tunnel, mqtt_device, echo, what, message, error):
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    mark = tunnel.mark()
    if isinstance(message, dict) or isinstance(message, tuple) or message is None:
        header, size = message if isinstance(message, tuple) else (message, 0)
        raw = b'{"frame_type":4,"frame_type":4,"frame_id":1,"session_id":"s1"}' if header is None else json.dumps(header).encode()
        device.send(0, "", b"x" * size, header=raw)
        device.last_id = 1  # the device's ids go on after the malformed frame's
    else:
        device.ws(2, message)
    assert error in tunnel.wait("protocol error:", since=mark), what
    assert len(tunnel.errors(mark)) == 1, tunnel.errors(mark)
    # Still connected and serving.
    c = console(tunnel)
    device.serve(device.frame(2), echo)
    c.sendall(b"still here")
    assert c.recv(100) == b"still here"
    assert not device.closed.is_set()
    c.close()
    device.close()


def test_bad_proxy_requests_are_protocol_errors(tunnel, mqtt_device):
    mark = tunnel.mark()
    for payload in [b"\xff", b"[]", b"[" * 5000 + b"]" * 5000, b'{"id":7,"params":{}}', b'{"id":"8"}']:
        mqtt_device.client.publish(BASE + "/proxy/request", payload, qos=1)
    assert mqtt_device.request()["code"] == 200
    assert len(tunnel.errors(mark)) == 5, tunnel.lines[mark:]
    assert 'is not {"id":"N","params":{}}' in tunnel.errors(mark)[-1]
    # Answered all the same when there is an id.
    assert mqtt_device.wait("/request_reply", lambda m: m.get("id") == 7)["code"] == 200


def test_out_of_order_frames_and_release_payloads(platform, tunnel, mqtt_device, echo):
    device = connect(platform, tunnel, mqtt_device.request()["data"]["token"])
    c = console(tunnel)
    create = device.frame(2)
    device.respond(create, 0)
    tunnel.wait("session s1 accepted")
    mark = tunnel.mark()
    device.send(4, "s1", b"five", fid=5)
    device.send(4, "s1", b"three", fid=3)
    assert c.recv(100).startswith(b"five")
    assert "with frame_id 3 after 5" in tunnel.wait("protocol error:", since=mark)
    device.send(4, "s1", b"", fid=6)
    assert "without a payload" in tunnel.wait("protocol error: data_transport 6", since=mark)
    device.send(3, "s1", b'{"code":"0"}', fid=7)
    assert closed(c)
    tunnel.wait("session s1 released by device code=-1", since=mark)
    assert len(tunnel.errors(mark)) == 3, tunnel.errors(mark)
    device.close()


VIOLATIONS = [
    ("text", lambda d: d.ws(1, b"hello"), 1003, "text message"),
    ("unmasked", lambda d: d.ws(2, b"\x00\x02{}", mask=False), 1002, "unmasked WebSocket frame"),
    ("reserved bits", lambda d: d.tls.run(d.tls.tls.write, b"\xc2\x80" + os.urandom(4)), 1002, "reserved bits"),
    ("opcode 3", lambda d: d.ws(3, b""), 1002, "WebSocket opcode 3"),
]


@pytest.mark.parametrize("what, send, code, error", VIOLATIONS, ids=[case[0] for case in VIOLATIONS])
def test_a_websocket_violation_closes_the_connection_and_the_next_one_is_served(platform, tunnel, mqtt_device, what, send, code, error):
    token = mqtt_device.request()["data"]["token"]
    device = connect(platform, tunnel, token)
    mark = tunnel.mark()
    send(device)
    assert device.closed.wait(5) and device.close_code == code, what
    assert error in tunnel.wait("protocol error:", since=mark)
    tunnel.wait(f"device disconnected code={code}", since=mark)
    again = connect(platform, tunnel, token)
    again.ws(9, b"ping?")
    again.close()
    assert again.pongs == [b"ping?"] and again.close_code == 1000 and again.problems == []
