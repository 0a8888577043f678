"""Hardening (issue 12): hostile or broken peers, proxies and disks never crash wisp,
drop a frame or lose a sample; each test fails without its fix."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import CLIENT, DN, PK, ROOT, SECRET, VALGRIND, Mosquitto, Observer, free_port, run, stripped
import bufferfile  # Tests/harness/bufferfile.py (pytest.ini puts Tests/harness on the path)
from test_agent import POST, SAMPLES, device
from test_reliability import assert_complete, sample_ids

EMBEDDED = VALGRIND + [str(stripped(ROOT / ".build-embedded/release/wisp", "embedded") if VALGRIND else ROOT / ".build-embedded/release/wisp")]
REPLY = POST + "_reply"
SET = f"/sys/{PK}/{DN}/thing/service/property/set"
HOST_BUILDS = [p for p in [("host", ROOT / ".build/debug/wisp"), ("embedded", ROOT / ".build-embedded/release/wisp")] if p[1].exists()]


# ------------------------------------------------------------------ 1. TLS write length

class StallProxy:
    """A TCP relay in front of one broker port whose client-to-broker direction can stop
    reading, with small socket buffers so the client's writes soon block."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.stalled = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self.pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(server, client, False), daemon=True).start()

    def pipe(self, src, dst, from_client):
        try:
            while True:
                while from_client and self.stalled.is_set():
                    time.sleep(0.01)
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.listener.close()


SMALL_SNDBUF = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
/* wisp's own socket gets a 4 KiB send buffer before it connects. */
int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    int size = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    return real(fd, addr, len);
}
"""


def test_tls_writes_that_would_block_lose_no_frame(tmp_path, certs, keyfile, start_wisp):
    """The peer stops reading while the broker floods wisp with QoS 1 messages; wisp's
    socket has a 4 KiB send buffer (an LD_PRELOAD shim) and the relay a 4 KiB receive
    buffer, so its TLS writes return WANT_WRITE while its output keeps growing. Every
    PUBACK and every post must arrive once, with no reconnect and no protocol error."""
    (tmp_path / "sndbuf.c").write_text(SMALL_SNDBUF)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "sndbuf.so"), str(tmp_path / "sndbuf.c"), "-ldl"], check=True)
    broker = Mosquitto(tmp_path, certs, extra="max_inflight_messages 0\nmax_queued_messages 0\n")
    broker.start()
    proxy = StallProxy(broker.wss)
    observer = Observer(broker, topic=SAMPLES)
    flood = 10_000
    try:
        values = device(broker, certs, "wss", endpoint=f"wss://localhost:{proxy.port}/mqtt", keepalive="60")
        w = start_wisp(EMBEDDED, keyfile(**values), env={"LD_PRELOAD": str(tmp_path / "sndbuf.so")})
        assert w.wait_log("online", 15), w.log()
        time.sleep(1.5)
        proxy.stalled.set()
        for i in range(flood):
            observer.client.publish(REPLY, '{"code":200,"id":"%d"}' % i, qos=1)
        time.sleep(4)
        proxy.stalled.clear()
        deadline = time.time() + 60
        pattern = f"Received PUBACK from {CLIENT}|securemode=2"
        while time.time() < deadline and broker.log_text().count(pattern) < flood:
            time.sleep(0.2)
        time.sleep(2)
        log = broker.log_text()
        assert log.count(pattern) >= flood, f"{log.count(pattern)} of {flood} PUBACKs reached the broker\n" + w.log()[-3000:]
        assert "protocol error" not in log.lower(), log[-3000:]
        assert "offline:" not in w.log(), w.log()[-3000:]
        ids = sample_ids(observer)
        assert len(ids) >= 5
        assert assert_complete(ids, min(ids), max(ids)) == 0, "no post lost, none resent"
        assert w.stop() == 0
    finally:
        observer.close()
        proxy.close()
        broker.stop()


# ------------------------------------------------------------------ IP-literal endpoints

@pytest.mark.parametrize("cert, ok", [("server", True), ("wrongname", False)])
def test_ip_literal_wss_is_checked_against_ip_sans(tmp_path, certs, keyfile, start_wisp, cert, ok):
    """server.pem lists IP:127.0.0.1; wrongname.pem only DNS:other.example."""
    broker = Mosquitto(tmp_path, certs, server_cert=cert)
    broker.start()
    try:
        values = device(broker, certs, "wss", endpoint=f"wss://127.0.0.1:{broker.wss}/mqtt")
        w = start_wisp(EMBEDDED, keyfile(**values))
        if ok:
            assert w.wait_log("online: wss://127.0.0.1", 10), w.log()
        else:
            assert w.wait_log("TLS certificate of 127.0.0.1 refused: the certificate's subjectAltName has no iPAddress "
                              "entry 127.0.0.1", 10), w.log()
            assert "online" not in w.log()
    finally:
        broker.stop()


# ------------------------------------------------------------------ key file

PLATFORM = dict(endpoint="wss://pk.example.com:443", product_key="pk", device_name="device",
                device_secret=SECRET, client_id="12345")


def test_key_file_symlink_is_refused(wisp, keyfile, tmp_path):
    real = keyfile(**PLATFORM)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    r = run([*wisp, "check", "--config", str(link)])
    assert r.returncode == 78, r.stderr
    assert "is a symbolic link" in r.stderr and "point --config at the file itself" in r.stderr


def test_key_file_group_readable_by_our_own_group_is_accepted(wisp, keyfile):
    path = keyfile(mode=0o640, **PLATFORM)
    os.chown(path, 0, os.getegid())
    r = run([*wisp, "check", "--config", path])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("mode, uid, gid, expected", [
    (0o644, None, None, "is readable by others (mode 0644)"),
    (0o640, None, 4242, "readable by group 4242 (mode 0640), which is not wisp's own group"),
    (0o660, None, None, "is writable by its group"),
    (0o600, 4242, None, "belongs to uid 4242, neither root nor the user wisp runs as"),
])
def test_key_file_access_refusals_name_the_fix(wisp, keyfile, mode, uid, gid, expected):
    if os.geteuid() != 0 and (uid or gid):
        pytest.skip("chown needs root")
    path = keyfile(mode=mode, **PLATFORM)
    if uid or gid:
        os.chown(path, uid if uid is not None else -1, gid if gid is not None else -1)
    r = run([*wisp, "check", "--config", path])
    assert r.returncode == 78
    assert expected in r.stderr, r.stderr
    assert "chmod 600" in r.stderr or "chown root" in r.stderr
    assert SECRET not in r.stderr


# ------------------------------------------------------------------ getrandom

SHIM = r"""
#include <errno.h>
#include <sys/types.h>
ssize_t getrandom(void *buf, size_t len, unsigned flags) { (void)buf; (void)len; (void)flags; errno = ENOSYS; return -1; }
"""


@pytest.mark.parametrize("name, binary", HOST_BUILDS, ids=[n for n, _ in HOST_BUILDS])
def test_failing_getrandom_is_fatal_not_a_zero_mask(tmp_path, broker, keyfile, name, binary):
    (tmp_path / "shim.c").write_text(SHIM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "shim.so"), str(tmp_path / "shim.c")], check=True)
    r = subprocess.run([str(binary), "run", "--config", keyfile(**device(broker))], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "LD_PRELOAD": str(tmp_path / "shim.so")})
    assert r.returncode == 71, r.stderr
    assert "the kernel's random generator failed" in r.stderr
    assert "WebSocket upgrade" not in r.stderr and "online" not in r.stderr


# ------------------------------------------------------------------ logs

def test_network_text_cannot_forge_journal_lines(broker, observer, keyfile, start_wisp):
    """Under systemd each line starts with <priority>: a newline in a payload or topic must
    not start a new, forged entry, and network text is capped."""
    w = start_wisp(EMBEDDED, keyfile(**device(broker)), env={"JOURNAL_STREAM": "8:1234"})
    assert w.wait_log("online", 10), w.log()
    observer.publish(REPLY, '{"code":460,"message":"x\n<0>wisp: forged emergency\n' + "A" * 500 + '"}')
    assert w.wait_log("property post refused by the platform", 10), w.log()
    lines = w.log().splitlines()
    assert not any(line.startswith("<0>") for line in lines), lines
    refused = [line for line in lines if "property post refused" in line][0]
    assert refused.startswith("<4>warning: ")
    assert "\\x0a<0>wisp: forged emergency\\x0a" in refused
    assert "more bytes)" in refused and len(refused) < 400


# ------------------------------------------------------------------ SUBACK

class RefusingBroker:
    """A minimal MQTT 3.1.1 broker over plain TCP that refuses (SUBACK 0x80) every topic
    filter containing `refuse` and acknowledges everything else: mosquitto's acl_file
    grants subscriptions and filters at delivery, so it never says 0x80. With `max_filters`
    it closes the connection on a SUBSCRIBE carrying more (as AWS IoT Core does past 8);
    with `hold` it keeps SUBACKs until that many SUBSCRIBEs came and sends them last first."""

    def __init__(self, refuse, max_filters=None, hold=1):
        self.refuse = refuse
        self.max_filters = max_filters
        self.hold = hold
        self.subscribes = 0
        self.filters = []  # the number of filters in each SUBSCRIBE
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    @staticmethod
    def read_packet(c):
        def exact(n):
            data = b""
            while len(data) < n:
                more = c.recv(n - len(data))
                if not more:
                    raise EOFError
                data += more
            return data
        header = exact(1)[0]
        length, shift = 0, 0
        while True:
            b = exact(1)[0]
            length |= (b & 0x7F) << shift
            shift += 7
            if b & 0x80 == 0:
                break
        return header, exact(length)

    def session(self, c):
        held = []
        try:
            while True:
                header, body = self.read_packet(c)
                kind = header >> 4
                if kind == 1:
                    c.sendall(b"\x20\x02\x00\x00")
                elif kind == 8:
                    self.subscribes += 1
                    codes, i = b"", 2
                    while i < len(body):
                        n = int.from_bytes(body[i:i + 2], "big")
                        topic = body[i + 2:i + 2 + n].decode()
                        codes += b"\x80" if self.refuse in topic else bytes([body[i + 2 + n]])
                        i += 3 + n
                    self.filters.append(len(codes))
                    if self.max_filters and len(codes) > self.max_filters:
                        break
                    held.append(bytes([0x90, 2 + len(codes)]) + body[:2] + codes)
                    if len(held) >= self.hold:
                        for suback in reversed(held):
                            c.sendall(suback)
                        held = []
                elif kind == 3 and header & 0x06:
                    n = int.from_bytes(body[:2], "big")
                    c.sendall(b"\x40\x02" + body[2 + n:4 + n])
                elif kind == 12:
                    c.sendall(b"\xd0\x00")
                elif kind == 14:
                    break
        except (OSError, EOFError):
            pass
        c.close()

    def close(self):
        self.listener.close()


def test_refused_subscription_is_named(keyfile, start_wisp, broker):
    fake = RefusingBroker(refuse="/property/set")
    try:
        w = start_wisp(EMBEDDED, keyfile(**device(broker, endpoint=f"mqtt://127.0.0.1:{fake.port}")))
        assert w.wait_log("the broker refused the subscription to " + SET, 10), w.log()
        assert "property sets from the platform will not arrive; asking again at the next connect" in w.log()
        assert "refused the subscription to " + REPLY not in w.log()
        assert w.wait_log("post 2 sent", 5), "still posting"
        assert w.proc.poll() is None
    finally:
        fake.close()


def test_filters_go_eight_per_subscribe_and_a_refusal_in_the_second_is_named(keyfile, start_wisp, broker):
    """A broker that ends the connection on a SUBSCRIBE of more than 8 filters (AWS IoT
    Core) and answers the SUBSCRIBEs last first: wisp subscribes in chunks of at most 8,
    matches each SUBACK to its own, and names the topic refused in the second one."""
    history_reply = f"/sys/{PK}/{DN}/thing/event/property/history/post_reply"
    fake = RefusingBroker(refuse="/history/post_reply", max_filters=8, hold=2)
    try:
        w = start_wisp(EMBEDDED, keyfile(**device(broker, endpoint=f"mqtt://127.0.0.1:{fake.port}")))
        assert w.wait_log("the broker refused the subscription to " + history_reply, 10), w.log()
        assert "post replies will not arrive; asking again at the next connect" in w.log()
        assert w.log().count("the broker refused the subscription") == 1, w.log()
        assert len(fake.filters) > 1 and max(fake.filters) <= 8, fake.filters
        assert w.wait_log("post 2 sent", 5), "still posting"
        assert "offline" not in w.log(), w.log()
    finally:
        fake.close()


# ------------------------------------------------------------------ NTP

@pytest.mark.parametrize("answer", [
    {"serverRecvTime": "999999999999999999", "serverSendTime": "999999999999999999"},
    {"serverRecvTime": -9223372036854775807, "serverSendTime": 9223372036854775807},
    {"serverRecvTime": "5", "serverSendTime": "7"},
])
def test_implausible_ntp_answers_are_ignored(broker, observer, keyfile, start_wisp, answer):
    responder = Observer(broker, topic=f"/ext/ntp/{PK}/{DN}/request")
    responder.client.on_message = lambda c, u, m: c.publish(f"/ext/ntp/{PK}/{DN}/response",
                                                            json.dumps(dict(answer, deviceSendTime="1")))
    try:
        w = start_wisp(EMBEDDED, keyfile(**device(broker)))
        assert w.wait_log("clock: NTP answer ignored", 10), w.log()
        seen = len(observer.messages)
        time.sleep(2.5)
        later = [json.loads(p) for t, p in observer.messages[seen:] if t == POST]
        assert later, "still posting"
        stamp = later[-1]["params"]["load_avg"]["time"]
        assert abs(stamp / 1000 - time.time()) < 60, "the system clock is kept"
        assert w.proc.poll() is None
    finally:
        responder.close()


# ------------------------------------------------------------------ proxy

def test_proxy_status_line_without_a_space(keyfile, broker, start_wisp):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            c.recv(4096)
            c.sendall(b"HTTP/1.1200\r\n\r\n")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        w = start_wisp(EMBEDDED, keyfile(**device(broker, proxy=f"http://127.0.0.1:{port}")))
        assert w.wait_log("proxy: the proxy's answer to CONNECT is not HTTP", 10), w.log()
        time.sleep(1)
        assert w.proc.poll() is None, "wisp is still running"
    finally:
        listener.close()


# ------------------------------------------------------------------ buffer file

def sample(seq, value):
    return bufferfile.sample(seq, int(time.time() * 1000), [(value * 1000, 0)])


def buffer_file(path, delivered, waiting):
    """A buffer file for the single property `load`: `delivered` acknowledged records
    (type 2, 16 bytes each), then the samples 1…`waiting` still to send."""
    data = bufferfile.header(["load"])
    for i in range(delivered):
        data += bufferfile.delivered(100_000 + i)
    for seq in range(1, waiting + 1):
        data += sample(seq, seq)
    path.write_bytes(data)
    return len(data)


def test_a_large_buffer_file_is_replayed_not_wiped(durable_broker, keyfile, start_wisp, tmp_path):
    """A file bigger than the old whole-file read (4 × its old bound, 36,544 bytes here) used to be
    truncated to nothing; now it is replayed in chunks and every waiting sample is sent."""
    path = tmp_path / "wisp.buffer"
    size = buffer_file(path, delivered=4000, waiting=30)
    assert size > 4 * 9136
    observer = Observer(durable_broker, topic=SAMPLES)
    values = device(durable_broker, **{"buffer_file": str(path), "buffer_samples": "60", "sensor.load": "system:load"})
    w = start_wisp(EMBEDDED, keyfile(**values))
    assert w.wait_log("30 undelivered samples from before the restart", 10), w.log()
    deadline = time.time() + 15
    while time.time() < deadline and not set(range(1, 31)) <= set(sample_ids(observer)):
        time.sleep(0.1)
    assert set(range(1, 31)) <= set(sample_ids(observer)), w.log()
    assert path.stat().st_size < size, "compacted after the replay"
    observer.close()


@pytest.fixture
def durable_broker(tmp_path, certs):
    m = Mosquitto(tmp_path, certs)
    m.start()
    yield m
    m.stop()


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "card"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def test_compaction_on_a_full_disk_keeps_the_old_file(small_disk, durable_broker, keyfile, start_wisp, tmp_path):
    path = small_disk / "wisp.buffer"
    buffer_file(path, delivered=700, waiting=30)   # past the 8,296-byte bound: compacted at start
    before = path.read_bytes()
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512) > 0:
            pass
    except OSError:
        pass
    os.close(fd)
    values = device(durable_broker, **{"buffer_file": str(path), "buffer_samples": "60", "sensor.load": "system:load",
                                       "endpoint": f"ws://127.0.0.1:{free_port()}/mqtt"})
    first = start_wisp(EMBEDDED, keyfile(**values))
    assert first.wait_log("compaction failed", 10), first.log()
    assert "the old file is kept" in first.log()
    assert first.stop() == 0
    assert path.read_bytes()[:len(before)] == before, "the good file is untouched"
    assert not (small_disk / "wisp.buffer.tmp").exists()
    filler.unlink()
    observer = Observer(durable_broker, topic=SAMPLES)
    values["endpoint"] = f"ws://127.0.0.1:{durable_broker.ws}/mqtt"
    second = start_wisp(EMBEDDED, keyfile(**values))
    deadline = time.time() + 15
    while time.time() < deadline and not set(range(1, 31)) <= set(sample_ids(observer)):
        time.sleep(0.1)
    assert set(range(1, 31)) <= set(sample_ids(observer)), second.log()
    observer.close()


# ------------------------------------------------------------------ exit codes

def test_check_online_exit_codes(wisp, broker, keyfile):
    """0 signed in, 77 credentials refused, 69 unreachable: each documented code has a test."""
    ok = run([*wisp, "check", "--online", "--config", keyfile(**device(broker))])
    assert ok.returncode == 0, ok.stderr
    assert "online check: signed in and disconnected" in ok.stdout
    refused = run([*wisp, "check", "--online", "--config", keyfile(**device(broker, device_secret="wrong"))])
    assert refused.returncode == 77, refused.stderr
    assert "sign-in failed: credentials refused" in refused.stderr
    unreachable = run([*wisp, "check", "--online", "--config",
                       keyfile(**device(broker, endpoint=f"ws://127.0.0.1:{free_port()}/mqtt"))])
    assert unreachable.returncode == 69, unreachable.stderr
    assert "sign-in failed" in unreachable.stderr
    for r in (ok, refused, unreachable):
        assert SECRET not in r.stdout + r.stderr
