"""The local stand-in platform (platform/run + platform/plugin.c): a correct device
is accepted on ws and wss, by wisp and by an independent client; each of the platform's
refusals happens, for the reason the broker log gives."""
import hashlib
import hmac
import json
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT, free_port
import bufferfile  # Tests/harness/bufferfile.py (pytest.ini puts Tests/harness on the path)

PK, DN, SECRET = "a1TestProd", "sensor-7", "platform-secret-0123456789"


def start_platform(d, registry, ports=None):
    """platform/run in `d` with the registry text, on free ports (or `ports`): its ready
    lines as a dict, the ports, and the process (`proc`)."""
    devices = d / "devices"
    devices.write_text(registry)
    ports = ports or dict(ws=free_port(), wss=free_port(), tcp=free_port())
    proc = subprocess.Popen([str(ROOT / "platform/run"), "--devices", str(devices), "--dir", str(d),
                             "--ws-port", str(ports["ws"]), "--wss-port", str(ports["wss"]), "--tcp-port", str(ports["tcp"])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = {}
    while "log" not in info:
        line = proc.stdout.readline()
        assert line, "platform/run ended before it was ready"
        k, _, v = line.strip().partition("=")
        info[k] = v
    info["ports"] = ports
    info["proc"] = proc
    return info


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    info = start_platform(tmp_path_factory.mktemp("platform"), f"{PK} {DN} {SECRET}\nother otherdev othersecret\n")
    yield info
    info["proc"].terminate()
    info["proc"].wait(10)


def log_after(platform, mark, text, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(platform["log"], errors="replace") as f:
            f.seek(mark)
            tail = f.read()
        if text in tail:
            return tail
        time.sleep(0.05)
    return None


def log_mark(platform):
    with open(platform["log"], "rb") as f:
        return len(f.read())


def paho_connect(platform, scheme="ws", client=None, method="hmacsha256", label=None, secret=SECRET,
                 keepalive=60, securemode=None, timestamp="1700000000000"):
    """An independent device: Paho over websockets with its own HMAC."""
    client = client or "dev-1"
    content = f"clientId{client}deviceName{DN}productKey{PK}timestamp{timestamp}"
    digest = hmac.new(secret.encode(), content.encode(), {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1,
                                                          "hmacsha256": hashlib.sha256}[method]).hexdigest()
    mode = securemode or (2 if scheme == "wss" else 3)
    cid = f"{client}|securemode={mode},signmethod={label or method},timestamp={timestamp}|"
    c = mqtt.Client(client_id=cid, transport="websockets")
    c.ws_set_options(path="/mqtt")
    if scheme == "wss":
        c.tls_set(ca_certs=platform["ca_file"])
    c.username_pw_set(f"{DN}&{PK}", digest)
    result = {}
    done = threading.Event()
    c.on_connect = lambda cl, u, f, rc: (result.setdefault("rc", rc), done.set())
    c.on_disconnect = lambda cl, u, rc: done.set()
    c.connect("localhost" if scheme == "wss" else "127.0.0.1", platform["ports"][scheme], keepalive=keepalive)
    c.loop_start()
    done.wait(10)
    return c, result.get("rc")


@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("method", ["hmacmd5", "hmacsha1", "hmacsha256"])
def test_independent_client_is_accepted(platform, scheme, method):
    c, rc = paho_connect(platform, scheme, method=method)
    c.loop_stop()
    c.disconnect()
    assert rc == 0


@pytest.mark.parametrize("name, kwargs, reason", [
    ("wrong secret", dict(secret="not-the-secret"), "signature mismatch"),
    ("wrong signmethod label", dict(method="hmacsha256", label="hmacsha1"), "signature mismatch"),
    ("unknown signmethod", dict(label="hmacsha512"), "unknown signmethod 'hmacsha512'"),
    ("keep-alive 29", dict(keepalive=29), "keep-alive 29 s is outside 30..1200"),
    ("keep-alive 1201", dict(keepalive=1201), "keep-alive 1201 s is outside 30..1200"),
    ("65-character clientId", dict(client="c" * 65), "clientId has 65 characters"),
    ("securemode 2 on the plain listener", dict(securemode=2), "securemode=2 on a plain listener"),
])
def test_refusals_name_their_reason(platform, name, kwargs, reason):
    mark = log_mark(platform)
    c, rc = paho_connect(platform, "ws", **kwargs)
    c.loop_stop()
    c.disconnect()
    assert rc in (4, 5), f"{name}: rc {rc}"
    assert log_after(platform, mark, "wisp-platform: refused"), name
    assert log_after(platform, mark, reason), f"{name}: log lacks '{reason}'"


def test_publish_to_another_devices_topic_is_refused(platform):
    received = []
    observer = mqtt.Client(client_id="observer-platform")
    observer.on_message = lambda c, u, m: received.append(m.topic)
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe("#")
    observer.loop_start()
    time.sleep(0.3)
    mark = log_mark(platform)
    c, rc = paho_connect(platform, "ws")
    assert rc == 0
    c.publish("/sys/other/otherdev/thing/event/property/post", "{}", qos=1).wait_for_publish()
    c.publish(f"/sys/{PK}/{DN}/thing/event/property/post", '{"id":"5","params":{}}', qos=1).wait_for_publish()
    time.sleep(0.5)
    c.loop_stop()
    c.disconnect()
    observer.loop_stop()
    assert "/sys/other/otherdev/thing/event/property/post" not in received
    assert f"/sys/{PK}/{DN}/thing/event/property/post" in received
    assert log_after(platform, mark, "publish on topic /sys/other/otherdev/thing/event/property/post, which is not this device's")


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_wisp_is_accepted_and_gets_platform_replies(wisp, platform, scheme, keyfile, start_wisp):
    values = dict(endpoint=platform[scheme], product_key=PK, device_name=DN, device_secret=SECRET,
                  client_id="wisp-board-1", sign_method="hmacsha1", keepalive="60", telemetry_interval="1",
                  ca_file=platform["ca_file"])
    w = start_wisp(wisp, keyfile(**values))
    assert w.wait_log("online", 15), w.log()
    assert w.wait_log("clock: platform time received", 10), w.log()
    assert w.wait_log("property post accepted", 10), w.log()
    assert "refused" not in w.log()


@pytest.mark.parametrize("module", [None, "default"])
def test_wisp_reports_its_version_to_ota_after_each_connect(wisp, platform, module, keyfile, start_wisp):
    """OTA: after every CONNACK wisp publishes {"id","params":{"version","module"}} on
    /ota/device/inform/{pk}/{dn}; the stand-in platform lets the device use that topic. The
    module is `wisp` unless the key file's ota_module says otherwise."""
    informs = []
    observer = mqtt.Client(client_id=f"observer-ota-{module}")
    observer.on_message = lambda c, u, m: informs.append((m.topic, json.loads(m.payload)))
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe("/ota/device/inform/#", qos=1)
    observer.loop_start()
    time.sleep(0.3)
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET,
                  client_id=f"wisp-ota-{module}", keepalive="60", telemetry_interval="60", ca_file=platform["ca_file"])
    if module:
        values["ota_module"] = module
    mark = log_mark(platform)
    w = start_wisp(wisp, keyfile(**values))
    try:
        deadline = time.time() + 15
        while time.time() < deadline and not informs:
            time.sleep(0.05)
        assert informs, w.log()
        topic, body = informs[0]
        assert topic == f"/ota/device/inform/{PK}/{DN}"
        assert body["params"] == {"version": "0.1.0", "module": module or "wisp"}
        assert body["id"].isdigit()
        assert not log_after(platform, mark, "which is not this device's", timeout=0.5)
    finally:
        observer.loop_stop()
        observer.disconnect()


def test_service_calls_and_rrpc_are_answered(platform, keyfile, start_wisp):
    """Built-in services over the platform's async topics and over RRPC (answered within
    1 s on the request's message id); an unknown service gets 460 "service not found"."""
    binary = ROOT / ".build-embedded/release/wisp"
    if not binary.exists():
        pytest.skip("no Embedded build")
    seen = []
    observer = mqtt.Client(client_id="observer-services")
    observer.on_message = lambda c, u, m: seen.append((time.time(), m.topic, m.payload.decode()))
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe(f"/sys/{PK}/{DN}/#", qos=1)
    observer.loop_start()
    time.sleep(0.3)
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-services",
                  keepalive="60", telemetry_interval="60", ca_file=platform["ca_file"])
    w = start_wisp([str(binary)], keyfile(**values))
    base = f"/sys/{PK}/{DN}"

    def wait(pred, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [s for s in list(seen) if pred(s)]
            if found:
                return found
            time.sleep(0.05)
        return []

    def posts_after(t):
        return [s for s in list(seen) if s[1] == f"{base}/thing/event/property/post" and s[0] > t]

    try:
        assert w.wait_log("subscribed to", 15), w.log()
        t0 = time.time()
        observer.publish(f"{base}/thing/service/sample_now", json.dumps({"id": "77", "version": "1.0", "params": {},
                                                                        "method": "thing.service.sample_now"}), qos=1)
        reply = wait(lambda s: s[1] == f"{base}/thing/service/sample_now_reply", 5)
        assert reply and json.loads(reply[0][2])["code"] == 200 and json.loads(reply[0][2])["id"] == "77", seen
        assert wait(lambda s: s[1] == f"{base}/thing/event/property/post" and s[0] > t0, 3), "sample_now did not post"

        observer.publish(f"{base}/thing/service/set_interval", json.dumps({"id": "78", "params": {"interval": 1}}), qos=1)
        reply = wait(lambda s: s[1] == f"{base}/thing/service/set_interval_reply", 5)
        assert reply and json.loads(reply[0][2])["data"] == {"interval": 1}, seen
        t1 = time.time()
        time.sleep(3.5)
        assert len(posts_after(t1)) >= 3, posts_after(t1)

        observer.publish(f"{base}/thing/service/nope", json.dumps({"id": "79", "params": {}}), qos=1)
        reply = wait(lambda s: s[1] == f"{base}/thing/service/nope_reply", 5)
        assert reply and json.loads(reply[0][2])["code"] == 460 and "service not found: nope" in reply[0][2], seen

        t2 = time.time()
        observer.publish(f"{base}/rrpc/request/1234567", json.dumps({"id": "80", "version": "1.0", "params": {},
                                                                     "method": "thing.service.sample_now"}), qos=0)
        reply = wait(lambda s: s[1] == f"{base}/rrpc/response/1234567", 5)
        assert reply and json.loads(reply[0][2])["code"] == 200 and json.loads(reply[0][2])["id"] == "80", seen
        assert reply[0][0] - t2 < 1.0, "RRPC answered after 1 s"
        assert "refused" not in w.log().replace("service nope refused", "")
    finally:
        observer.loop_stop()
        observer.disconnect()


@pytest.mark.parametrize("scheme", ["wss", "ws"])
def test_sample_now_is_rate_limited_and_gated(platform, keyfile, start_wisp, scheme):
    """Each sample_now samples, posts and fsyncs the buffer file: at most one per second
    (a second call at once gets 429 and why); over ws:// it controls nothing (403)."""
    binary = ROOT / ".build-embedded/release/wisp"
    if not binary.exists():
        pytest.skip("no Embedded build")
    seen = []
    observer = mqtt.Client(client_id="observer-sample-now")
    observer.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    base = f"/sys/{PK}/{DN}"
    observer.subscribe(f"{base}/thing/service/sample_now_reply", qos=1)
    observer.loop_start()
    time.sleep(0.3)
    values = dict(endpoint=platform[scheme], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-sample-now",
                  keepalive="60", telemetry_interval="60", ca_file=platform["ca_file"])
    w = start_wisp([str(binary)], keyfile(**values))
    try:
        assert w.wait_log("subscribed to", 15), w.log()
        for i in range(3):
            observer.publish(f"{base}/thing/service/sample_now", json.dumps({"id": f"9{i}", "params": {}}), qos=1)
        deadline = time.time() + 5
        while time.time() < deadline and len(seen) < 3:
            time.sleep(0.05)
        codes = sorted((body["id"], body["code"]) for _, body in seen)
        if scheme == "ws":
            assert codes == [("90", 403), ("91", 403), ("92", 403)], seen
            assert "service sample_now: posting now" not in w.log()
        else:
            assert codes == [("90", 200), ("91", 429), ("92", 429)], seen
            assert "at most once per second" in seen[1][1]["message"]
            assert w.log().count("service sample_now: posting now") == 1
            time.sleep(1.1)
            observer.publish(f"{base}/thing/service/sample_now", json.dumps({"id": "93", "params": {}}), qos=1)
            deadline = time.time() + 5
            while time.time() < deadline and len(seen) < 4:
                time.sleep(0.05)
            assert seen[-1][1]["id"] == "93" and seen[-1][1]["code"] == 200, seen
    finally:
        observer.loop_stop()
        observer.disconnect()


def test_events_startup_sensor_lost_and_back_and_power(platform, keyfile, start_wisp, tmp_path):
    """Built-in events through the stand-in platform: `startup` with why the process started
    (boot, restart after a clean stop, crash after a kill), `sensor_lost`/`sensor_back`, and
    `power` when the Pi firmware's throttled word changes (a fake /sys tree)."""
    binary = ROOT / ".build-embedded/release/wisp"
    if not binary.exists():
        pytest.skip("no Embedded build")
    board = tmp_path / "board"
    firmware = board / "sys/devices/platform/soc/soc:firmware"
    firmware.mkdir(parents=True)
    (firmware / "get_throttled").write_text("throttled=0x0\n")
    (board / "proc/sys/kernel/random").mkdir(parents=True)
    (board / "proc/sys/kernel/random/boot_id").write_text("1b5e0c6e-0000-4000-8000-000000000001\n")
    value = tmp_path / "value"
    value.write_text("21.5\n")
    state = tmp_path / "state"
    state.mkdir()
    seen = []
    observer = mqtt.Client(client_id="observer-events")
    observer.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe(f"/sys/{PK}/{DN}/thing/event/+/post", qos=1)
    observer.loop_start()
    time.sleep(0.3)
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-events",
                  keepalive="60", telemetry_interval="1", ca_file=platform["ca_file"], state_dir=str(state),
                  **{"sensor.x": f"file:{value}"})
    key = keyfile(**values)

    def events(name):
        return [body for topic, body in list(seen) if topic == f"/sys/{PK}/{DN}/thing/event/{name}/post"]

    def wait(name, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and len(events(name)) < n:
            time.sleep(0.05)
        return events(name)

    try:
        w = start_wisp([str(binary)], key, env={"WISP_ROOT": str(board)})
        first = wait("startup", 1)
        assert first and first[0]["params"]["value"] == {"reason": "boot"}, seen
        assert first[0]["method"] == "thing.event.startup.post" and first[0]["params"]["time"] > 1.6e12
        value.unlink()
        lost = wait("sensor_lost", 1)
        assert lost and lost[0]["params"]["value"] == {"sensor": "x"}, seen
        value.write_text("22\n")
        back = wait("sensor_back", 1)
        assert back and back[0]["params"]["value"] == {"sensor": "x"}, seen
        (firmware / "get_throttled").write_text("throttled=0x50005\n")
        power = wait("power", 1)
        assert power and power[0]["params"]["value"] == {"under_voltage": 1, "freq_capped": 0, "throttled": 1,
                                                         "soft_temp_limit": 0, "flags": 0x50005}, seen
        assert w.stop() == 0
        w = start_wisp([str(binary)], key, env={"WISP_ROOT": str(board)})
        assert [e["params"]["value"]["reason"] for e in wait("startup", 2)] == ["boot", "restart"]
        time.sleep(1)
        w.signal(signal.SIGKILL)
        w.proc.wait(5)
        start_wisp([str(binary)], key, env={"WISP_ROOT": str(board)})
        assert [e["params"]["value"]["reason"] for e in wait("startup", 3)] == ["boot", "restart", "crash"]
        assert not [l for l in w.log().splitlines() if "event refused" in l]
    finally:
        observer.loop_stop()
        observer.disconnect()


def buffer_file(path, names, samples):
    """A buffer file for properties `names` holding `samples` waiting records: (seq, time ms,
    values), each value with 2 decimals."""
    path.write_bytes(bufferfile.header(names) + b"".join(
        bufferfile.sample(seq, t, [(round(v * 100), 2) for v in values]) for seq, t, values in samples))


def test_backlog_goes_out_as_history_batches_and_each_sample_arrives_once(platform, keyfile, start_wisp, tmp_path):
    """Samples kept while offline (a buffer file of 120 samples from an outage) go out as
    `thing.event.property.history.post` batches that the stand-in checks and accepts, each
    sample once with its own time and value; live samples keep coming as property posts, and
    the file ends with nothing waiting."""
    binary = ROOT / ".build-embedded/release/wisp"
    if not binary.exists():
        pytest.skip("no Embedded build")
    names = ["t", "h"]
    base = int(time.time() * 1000) - 3_600_000
    kept = [(seq, base + seq * 30_000, [seq / 100, 50 + seq / 100]) for seq in range(1, 121)]
    path = tmp_path / "wisp.buffer"
    buffer_file(path, names, kept)
    (tmp_path / "t").write_text("21.5\n")
    (tmp_path / "h").write_text("40\n")
    history, live = [], []
    observer = mqtt.Client(client_id="observer-history")

    def on_message(c, u, m):
        body = json.loads(m.payload)
        (history if m.topic.endswith("/history/post") else live).append(body)
    observer.on_message = on_message
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe([(f"/sys/{PK}/{DN}/thing/event/property/post", 1), (f"/sys/{PK}/{DN}/thing/event/property/history/post", 1)])
    observer.loop_start()
    time.sleep(0.3)
    mark = log_mark(platform)
    key = keyfile(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-history",
                  keepalive="60", telemetry_interval="1", ca_file=platform["ca_file"], buffer_file=str(path),
                  **{"sensor.t": f"file:{tmp_path / 't'}", "sensor.h": f"file:{tmp_path / 'h'}"})
    try:
        w = start_wisp([str(binary)], key)
        assert w.wait_log("120 undelivered samples from before the restart", 10), w.log()

        def kept_seen():
            # Batched, plus the newest kept sample, which goes as a property post (the
            # console's current value) when no newer one was taken yet.
            batched = [s for body in list(history) for s in body["params"][0]["properties"]]
            posted = [body["params"] for body in list(live) if body["params"]["t"]["time"] <= kept[-1][1]]
            return batched + posted
        deadline = time.time() + 20
        while time.time() < deadline and len(kept_seen()) < 120:
            time.sleep(0.1)
        seen = kept_seen()
        # Each kept sample once, in order, with its time on every value and its values.
        assert [s["t"]["time"] for s in seen] == [t for _, t, _ in kept], w.log()
        assert all(s["h"]["time"] == s["t"]["time"] for s in seen)
        assert [(s["t"]["value"], s["h"]["value"]) for s in seen] == [(v[0], v[1]) for _, _, v in kept]
        assert all(body["method"] == "thing.event.property.history.post" and body["params"][0]["identity"] == {"productKey": PK, "deviceName": DN}
                   for body in history)
        print("samples per history post:", [len(b["params"][0]["properties"]) for b in history])
        # Batches, not one post per sample: as many samples as the post buffer holds.
        assert len(history) <= 120 // 2, [len(b["params"][0]["properties"]) for b in history]
        # The stand-in checked and accepted every batch, and wisp saw no refusal.
        accepted = log_after(platform, mark, f"history post {history[-1]['id']} from wisp-history", timeout=5)
        assert accepted and accepted.count("history post ") >= len(history), accepted
        assert "refused wisp-history" not in accepted
        # Live samples are property posts with today's values.
        deadline = time.time() + 5
        while time.time() < deadline and not any(body["params"]["t"]["value"] == 21.5 for body in list(live)):
            time.sleep(0.1)
        assert any(body["params"]["t"]["value"] == 21.5 for body in live), live
        assert "refused" not in w.log()
        assert w.stop() == 0
    finally:
        observer.loop_stop()
        observer.disconnect()
    # Nothing waits in the file: a restart offers nothing again.
    w = start_wisp([str(binary)], key)
    assert w.wait_log("online", 15), w.log()
    assert "undelivered samples from before the restart" not in w.log()


def test_buffer_overflow_event_counts_samples_the_full_buffer_dropped(platform, keyfile, start_wisp, tmp_path):
    """A buffer file holding more samples than `buffer_samples` (a long outage on a small
    buffer): the oldest are dropped at start-up, the newest kept, and once online a
    `buffer_overflow` event tells the platform how many were lost."""
    binary = ROOT / ".build-embedded/release/wisp"
    if not binary.exists():
        pytest.skip("no Embedded build")
    base = int(time.time() * 1000) - 600_000
    kept = [(seq, base + seq * 1000, [20 + seq / 100]) for seq in range(1, 11)]
    path = tmp_path / "wisp.buffer"
    buffer_file(path, ["x"], kept)
    (tmp_path / "x").write_text("21.5\n")
    seen = []
    observer = mqtt.Client(client_id="observer-overflow")
    observer.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.subscribe([(f"/sys/{PK}/{DN}/thing/event/+/post", 1), (f"/sys/{PK}/{DN}/thing/event/property/history/post", 1)])
    observer.loop_start()
    time.sleep(0.3)
    key = keyfile(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-overflow",
                  keepalive="60", telemetry_interval="1", ca_file=platform["ca_file"], buffer_file=str(path),
                  buffer_samples="4", **{"sensor.x": f"file:{tmp_path / 'x'}"})
    try:
        w = start_wisp([str(binary)], key)
        assert w.wait_log("4 undelivered samples from before the restart", 10), w.log()
        deadline = time.time() + 10
        overflow = []
        while time.time() < deadline and not overflow:
            overflow = [b for t, b in list(seen) if t.endswith("/thing/event/buffer_overflow/post")]
            time.sleep(0.05)
        assert overflow, (seen, w.log())
        assert overflow[0]["method"] == "thing.event.buffer_overflow.post"
        assert overflow[0]["params"]["value"]["dropped"] >= 6, overflow
        # The four newest kept samples were the ones delivered, the six oldest were not.
        time.sleep(1)
        times = {v["x"]["time"] for t, b in list(seen) if t.endswith("/property/post") for v in [b["params"]]}
        times |= {p["x"]["time"] for t, b in list(seen) if t.endswith("/history/post") for p in b["params"][0]["properties"]}
        assert {t for _, t, _ in kept[-4:]} <= times, (sorted(times), kept)
        assert not {t for _, t, _ in kept[:6]} & times
        assert len(overflow) == 1, overflow
        assert w.stop() == 0
    finally:
        observer.loop_stop()
        observer.disconnect()


def subscribes_in_log(text, client):
    """The topic filters of each SUBSCRIBE `client` sent, from mosquitto's `log_type all`
    lines: "Received SUBSCRIBE from ID", a "\tFILTER (QoS n)" line each, "Sending SUBACK"."""
    packets, current = [], None
    for line in text.splitlines():
        _, _, msg = line.partition(": ")
        if msg.startswith("Received SUBSCRIBE from " + client):
            current = []
            packets.append(current)
        elif current is not None and msg.startswith("\t") and msg.endswith(")") and " (QoS " in msg:
            current.append(msg[1:msg.rindex(" (QoS ")])
        elif msg.startswith("Sending SUBACK to " + client):
            current = None
    return packets


def test_subscribes_carry_at_most_eight_filters_and_each_reply_arrives_once(platform, wisp, keyfile, start_wisp):
    """Some brokers take at most 8 filters per SUBSCRIBE (AWS IoT Core): wisp's platform
    topics go out in more than one SUBSCRIBE, none over 8, all of them subscribed. No two
    filters overlap: a reply published once (here by another client, as the platform does)
    reaches wisp once — the property post's reply used to match …/event/+/post_reply too."""
    client = "wisp-subscribe"
    base = f"/sys/{PK}/{DN}/thing/event"
    mark = log_mark(platform)
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id=client,
                  keepalive="60", telemetry_interval="3600", ca_file=platform["ca_file"])
    w = start_wisp(wisp, keyfile(**values))
    assert w.wait_log("subscribed to", 15), w.log()
    assert log_after(platform, mark, "Sending SUBACK to " + client)
    time.sleep(0.3)
    with open(platform["log"], errors="replace") as f:
        f.seek(mark)
        packets = subscribes_in_log(f.read(), client)
    assert len(packets) > 1, packets
    assert all(1 <= len(p) <= 8 for p in packets), packets
    filters = [t for p in packets for t in p]
    assert len(filters) == len(set(filters)) and f"{base}/+/post_reply" in filters, filters
    assert "subscribed to %d topic(s)" % len(filters) in w.log()

    observer = mqtt.Client(client_id="observer-replies")
    observer.connect("127.0.0.1", platform["ports"]["tcp"])
    observer.loop_start()
    replies = {f"{base}/property/post_reply": "property post refused by the platform",
               f"{base}/property/history/post_reply": "property post refused by the platform",
               f"{base}/power/post_reply": "event refused by the platform"}
    try:
        for n, topic in enumerate(replies):
            body = json.dumps({"code": 460, "id": str(900 + n), "message": f"marker-{n}", "version": "1.0"})
            observer.publish(topic, body, qos=1).wait_for_publish()
        for n, (topic, says) in enumerate(replies.items()):
            assert w.wait_log(f"marker-{n}", 5), w.log()
        time.sleep(1)
        log = w.log()
        for n, (topic, says) in enumerate(replies.items()):
            lines = [line for line in log.splitlines() if f"marker-{n}" in line]
            assert len(lines) == 1 and says in lines[0], (topic, lines)
    finally:
        observer.loop_stop()
        observer.disconnect()
