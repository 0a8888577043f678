"""`wisp run` against a real mosquitto on 127.0.0.1: ws, wss, refusals, restarts, keep-alive."""
import json
import signal
import socket
import threading
import time

import pytest

from conftest import CLIENT, DN, PK, SECRET, Mosquitto, Observer, platform_password, run

POST = f"/sys/{PK}/{DN}/thing/event/property/post"
# Samples kept while offline go out in history batches: observers of samples take both.
HISTORY = f"/sys/{PK}/{DN}/thing/event/property/history/post"
SAMPLES = [POST, HISTORY]


def device(broker, certs=None, scheme="ws", **extra):
    values = dict(product_key=PK, device_name=DN, device_secret=SECRET, client_id=CLIENT,
                  sign_method="hmacsha256", sign_timestamp="off", telemetry_interval="1", keepalive="30")
    if scheme == "ws":
        values["endpoint"] = f"ws://127.0.0.1:{broker.ws}/mqtt"
    else:
        values["endpoint"] = f"wss://localhost:{broker.wss}/mqtt"
        values["ca_file"] = str(certs / "ca.pem")
    values.update(extra)
    return values


def posts(observer, count, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = [json.loads(p) for t, p in observer.messages if t == POST]
        if len(got) >= count:
            return got
        time.sleep(0.05)
    return [json.loads(p) for t, p in observer.messages if t == POST]


def check_post(post):
    assert post["version"] == "1.0"
    assert post["method"] == "thing.event.property.post"
    assert int(post["id"]) >= 1
    params = post["params"]
    assert isinstance(params["load_avg"]["value"], (int, float))
    assert params["mem_available_kb"]["value"] > 0
    # Each value carries when it was sampled (ms since the epoch), in the platform's form.
    assert abs(params["load_avg"]["time"] / 1000 - time.time()) < 120


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_signs_in_and_publishes_property_posts(wisp, scheme, broker, certs, observer, keyfile, start_wisp):
    w = start_wisp(wisp, keyfile(**device(broker, certs, scheme)))
    got = posts(observer, 3, 15)
    assert len(got) >= 3, w.log() + broker.log_text()[-2000:]
    for p in got:
        check_post(p)
    ids = [int(p["id"]) for p in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert "online: " + scheme + "://" in w.log()
    assert w.stop() == 0
    # A clean stop: DISCONNECT reached the broker.
    mode = '2' if scheme == 'wss' else '3'
    expected = f"Received DISCONNECT from {CLIENT}|securemode={mode},signmethod=hmacsha256|"
    deadline = time.time() + 5  # the broker may log it a moment after wisp has exited
    while expected not in broker.log_text() and time.time() < deadline:
        time.sleep(0.05)
    assert expected in broker.log_text()


def test_wrong_secret_is_refused_with_a_clear_message_and_backs_off(wisp, broker, keyfile, start_wisp):
    w = start_wisp(wisp, keyfile(**device(broker, device_secret="wrong-secret")))
    assert w.wait_log("credentials refused: check device_secret, sign_method and the clock", 10), w.log()
    time.sleep(3)
    log = w.log()
    assert log.count("connecting to") == 1, "no tight reconnect loop"
    retry = float(log.split("reconnecting in ")[1].split(" s")[0])
    assert retry >= 60


@pytest.mark.parametrize("server_cert, expected", [
    ("wrongname", "TLS certificate of localhost refused"),
    ("untrusted", "TLS certificate of localhost refused"),
    # Found by the handshake, not by the chain check against the roots: it still counts.
    ("clientonly", "TLS certificate of localhost refused"),
])
def test_wss_refuses_a_bad_certificate(wisp, tmp_path, certs, keyfile, start_wisp, server_cert, expected):
    m = Mosquitto(tmp_path, certs, server_cert=server_cert)
    m.start()
    try:
        w = start_wisp(wisp, keyfile(**device(m, certs, "wss")))
        assert w.wait_log(expected, 10), w.log()
        reason = {"wrongname": "CN", "untrusted": "signed by the trusted CA", "clientonly": "extendedKeyUsage"}[server_cert]
        assert reason in w.log()
        assert "online" not in w.log()
    finally:
        m.stop()


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.parametrize("ours", [True, False])
def test_wss_finds_its_root_in_a_system_sized_bundle(wisp, broker, certs, tmp_path, keyfile, start_wisp, observer, ours):
    """wisp reads the bundle one certificate at a time after the handshake and parses only
    the roots that issued the server's chain: our CA in the middle of the system's ~140
    roots is found; the system roots alone do not vouch for our broker."""
    import os
    if not os.path.exists(SYSTEM_BUNDLE):
        pytest.skip("no system CA bundle (ca-certificates)")
    system = open(SYSTEM_BUNDLE).read()
    cut = system.index("-----BEGIN CERTIFICATE-----", len(system) // 2)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(system[:cut] + ((certs / "ca.pem").read_text() if ours else "") + system[cut:])
    assert bundle.read_text().count("BEGIN CERTIFICATE") > 100
    w = start_wisp(wisp, keyfile(**device(broker, certs, "wss", ca_file=str(bundle))))
    if ours:
        assert len(posts(observer, 1, 20)) >= 1, w.log()
    else:
        assert w.wait_log("TLS certificate of localhost refused", 10), w.log()
        assert "signed by the trusted CA" in w.log()
        assert "online" not in w.log()


def test_wss_verifies_a_chain_through_an_intermediate(wisp, tmp_path, certs, keyfile, start_wisp):
    """The broker sends its certificate and an intermediate CA's; the trusted root sits among
    the system's roots. wisp loads the root that issued the intermediate and verifies the
    whole chain; without the root in the bundle it refuses."""
    import os
    import shutil
    from conftest import make_server_cert, openssl
    if not os.path.exists(SYSTEM_BUNDLE):
        pytest.skip("no system CA bundle (ca-certificates)")
    d = tmp_path / "chain"
    d.mkdir()
    for f in ("ca.pem", "ca.key"):
        shutil.copy(certs / f, d / f)
    (d / "inter.ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=wisp test intermediate", "-keyout", "inter.key",
            "-out", "inter.csr", cwd=d)
    openssl("x509", "-req", "-in", "inter.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "inter.ext", "-out", "inter.pem", cwd=d)
    make_server_cert(d, "inter", "leaf", "localhost", "127.0.0.1")
    (d / "chained.pem").write_text((d / "leaf.pem").read_text() + (d / "inter.pem").read_text())
    shutil.copy(d / "leaf.key", d / "chained.key")
    system = open(SYSTEM_BUNDLE).read()
    cut = system.index("-----BEGIN CERTIFICATE-----", len(system) // 2)
    with_root, without = tmp_path / "with-root.pem", tmp_path / "without.pem"
    with_root.write_text(system[:cut] + (certs / "ca.pem").read_text() + system[cut:])
    without.write_text(system)
    m = Mosquitto(tmp_path, d, server_cert="chained")
    m.start()
    try:
        o = Observer(m)
        try:
            w = start_wisp(wisp, keyfile(**device(m, certs, "wss", ca_file=str(with_root))))
            assert len(posts(o, 1, 20)) >= 1, w.log()
        finally:
            o.close()
        w2 = start_wisp(wisp, keyfile(**device(m, certs, "wss", ca_file=str(without), client_id="12346")))
        assert w2.wait_log("TLS certificate of localhost refused", 10), w2.log()
    finally:
        m.stop()


def test_reconnects_after_the_broker_restarts(wisp, broker, keyfile, start_wisp, observer):
    w = start_wisp(wisp, keyfile(**device(broker)))
    assert w.wait_log("online", 10), w.log()
    broker.stop()
    observer.close()
    assert w.wait_log("offline", 10), w.log()
    time.sleep(2)
    broker.start()
    fresh = __import__("conftest").Observer(broker)
    try:
        got = fresh.wait_for(lambda m: m[0] == POST, 30)
        assert got, w.log()
        assert w.log().count("online: ") >= 2
    finally:
        fresh.close()


def test_sigterm_exits_zero_and_sighup_reloads(wisp, broker, keyfile, start_wisp):
    path = keyfile(**device(broker))
    w = start_wisp(wisp, path)
    assert w.wait_log("online", 10)
    w.signal(signal.SIGHUP)
    assert w.wait_log("SIGHUP: key file unchanged", 5), w.log()
    with open(path, "a") as f:
        f.write("# touched\n")
    w.signal(signal.SIGHUP)
    assert w.wait_log("key file changed", 5), w.log()
    deadline = time.time() + 10
    while w.log().count("online: ") < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert w.log().count("online: ") == 2
    assert w.stop() == 0


def test_tls_insecure_warns_at_every_connect(wisp, broker, certs, keyfile, start_wisp):
    values = device(broker, certs, "wss", tls_insecure="true")
    del values["ca_file"]
    w = start_wisp(wisp, keyfile(**values))
    assert w.wait_log("online", 10), w.log()
    assert "certificate is NOT verified" in w.log()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that counts tunnels."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.tunnels = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(1024)
            if not chunk:
                return
            data += chunk
        target = data.split(b" ")[1].decode()
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def close(self):
        self.sock.close()


def test_http_connect_proxy(wisp, broker, observer, keyfile, start_wisp):
    proxy = ConnectProxy()
    try:
        w = start_wisp(wisp, keyfile(**device(broker, proxy=f"http://127.0.0.1:{proxy.port}")))
        assert posts(observer, 1, 10), w.log()
        assert proxy.tunnels == [f"127.0.0.1:{broker.ws}"]
        assert "via proxy" in w.log()
    finally:
        proxy.close()


def test_last_will_on_a_plain_broker(wisp, broker, observer, keyfile, start_wisp):
    values = dict(endpoint=f"ws://127.0.0.1:{broker.ws}", username="plain", password="plain-pw", client_id="plain-1",
                  will_topic="devices/plain-1/status", will_payload="gone", telemetry_interval="1")
    w = start_wisp(wisp, keyfile(**values))
    assert observer.wait_for(lambda m: m[0] == "wisp/plain-1/thing/event/property/post", 10), w.log()
    w.proc.kill()  # no DISCONNECT: the broker must publish the will
    assert observer.wait_for(lambda m: m == ("devices/plain-1/status", "gone"), 10)


def test_keepalive_30_without_telemetry_for_100_seconds(broker, keyfile, start_wisp, request, tmp_path):
    """The shipped (Embedded) build: PINGREQs keep the link up, and the process sleeps
    between events (few wake-ups, almost no CPU), its status file written as under systemd."""
    binary = [str(__import__("conftest").ROOT / ".build-embedded/release/wisp")]
    status = tmp_path / "status"
    w = start_wisp(binary, keyfile(**device(broker, telemetry_interval="86400", keepalive="30", status_file=str(status))))
    assert w.wait_log("online", 10)
    pid = w.proc.pid

    def counters():
        status = open(f"/proc/{pid}/status").read()
        switches = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return switches, int(stat[11]) + int(stat[12])  # utime + stime, clock ticks

    s0, cpu0 = counters()
    time.sleep(100)
    s1, cpu1 = counters()
    log = broker.log_text()
    assert w.proc.poll() is None
    assert "exceeded timeout" not in log and "disconnecting" not in log.lower()
    assert log.count(f"Received PINGREQ from {CLIENT}|") >= 3, "PINGREQ every ~27 s"
    assert w.log().count("online: ") == 1
    # Wake-ups: a few per ping (send, receive), not a busy loop.
    assert s1 - s0 < 40, f"{s1 - s0} voluntary context switches in 100 s"
    assert cpu1 - cpu0 < 20, f"{cpu1 - cpu0} ticks of CPU in 100 s"
    assert "link=online\n" in status.read_text(), "pings change nothing in the status file"


def test_ipv6_endpoint(wisp, broker, observer, keyfile, start_wisp):
    w = start_wisp(wisp, keyfile(**device(broker, endpoint=f"ws://[::1]:{broker.ws6}/mqtt")))
    assert posts(observer, 1, 10), w.log()
    assert f"online: ws://[::1]:{broker.ws6}/mqtt" in w.log()


def test_post_reply_with_an_error_code_is_logged(wisp, broker, observer, keyfile, start_wisp):
    w = start_wisp(wisp, keyfile(**device(broker)))
    assert posts(observer, 1, 10), w.log()
    observer.publish(POST + "_reply", '{"code":200,"data":{},"id":"1","message":"success"}')
    observer.publish(POST + "_reply", '{"code":460,"data":{},"id":"2","message":"request parameter error"}')
    assert w.wait_log("property post refused by the platform", 5), w.log()
    assert '"code":460' in w.log()
    assert '"code":200' not in w.log()
