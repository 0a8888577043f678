"""What the console sees of a device besides its telemetry (issue 27), against the stand-in
platform over wss: wisp's own log lines go up as thing.log.post while the console's log
switch is on (asked at every connect, followed when pushed), lines wait through an outage,
and the health event arrives with every field README documents."""
import json
import os
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT, free_port
from test_platform import DN, PK, SECRET, start_platform

BINARY = ROOT / ".build-embedded/release/wisp"
pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="no Embedded build")


class Console:
    """The console's view: every message on the device's topics, over the plain listener."""

    def __init__(self, platform):
        self.platform, self.seen, self.lock = platform, [], threading.Lock()
        self.client = mqtt.Client(client_id=f"console-{os.getpid()}-{time.time()}")
        self.client.on_message = self.on_message
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(f"/sys/{PK}/{DN}/#", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect_async("127.0.0.1", platform["ports"]["tcp"])
        self.client.loop_start()
        assert subscribed.wait(20), "the console could not subscribe"

    def on_message(self, c, u, m):
        with self.lock:
            self.seen.append((time.time(), m.topic, m.payload.decode(errors="replace")))

    def messages(self, suffix, since=0):
        with self.lock:
            return [(t, json.loads(p)) for t, topic, p in self.seen if topic.endswith(suffix) and t >= since]

    def wait(self, suffix, predicate=lambda body: True, since=0, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [b for t, b in self.messages(suffix, since) if predicate(b)]
            if found:
                return found
            time.sleep(0.05)
        return []

    def switch(self, mode):
        r = subprocess.run([str(ROOT / "platform/push"), "log", "--mode", mode, "--device", DN, "--product-key", PK,
                            "--platform-dir", str(self.platform["dir"]), "--tcp-port", str(self.platform["ports"]["tcp"])],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def platform(tmp_path):
    d = tmp_path / "platform"
    d.mkdir()
    info = start_platform(d, f"{PK} {DN} {SECRET}\n")
    info["dir"] = d
    yield info
    info["proc"].terminate()
    info["proc"].wait(10)


@pytest.fixture
def console(platform):
    c = Console(platform)
    yield c
    c.close()


def device(platform, **extra):
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-console",
                  keepalive="30", telemetry_interval="60", ca_file=platform["ca_file"])
    values.update(extra)
    return values


def wait_count(w, text, count, timeout):
    """Until the log holds `text` `count` times."""
    deadline = time.time() + timeout
    while time.time() < deadline and w.log().count(text) < count:
        time.sleep(0.05)
    return w.log().count(text) >= count


def wait_file(path, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


def entries(console, since=0):
    return [e for _, body in console.messages("/thing/log/post", since) for e in body["params"]]


def test_logs_go_up_only_while_the_switch_is_on(platform, console, keyfile, start_wisp):
    w = start_wisp([str(BINARY)], keyfile(**device(platform, log_upload_level="info")))
    # At connect wisp asks the switch; it is off: nothing goes up.
    assert console.wait("/thing/config/log/get", lambda b: b["method"] == "thing.config.log.get"
                        and b["params"] == {"configScope": "device", "getType": "content"}), w.log()
    assert w.wait_log("console log switch: off", 10), w.log()
    time.sleep(2)
    assert console.messages("/thing/log/post") == []

    # On: the console's push turns it on; what is logged from then on goes up, checked and
    # accepted by the platform (every value a string, the level named as the console names it).
    console.switch("on")
    assert w.wait_log("console log switch: on", 10), w.log()
    w.proc.send_signal(signal.SIGHUP)
    found = console.wait("/thing/log/post", lambda b: any("SIGHUP: key file unchanged" in e["logContent"] for e in b["params"]))
    assert found, w.log()
    post = found[0]
    assert post["method"] == "thing.log.post" and post["version"] == "1.0" and post["id"].isdigit()
    entry = next(e for e in post["params"] if "SIGHUP" in e["logContent"])
    assert entry["logLevel"] == "INFO" and entry["module"] == "wisp"
    assert all(isinstance(v, str) for e in post["params"] for v in e.values())
    assert abs(time.mktime(time.strptime(entry["utcTime"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone - time.time()) < 30
    # The platform's reply goes to the device only: its log says what it answered.
    assert wait_file(platform["log"], f"log post {post['id']} from wisp-console") , "no answer to the post"
    assert f"refused log post {post['id']}" not in open(platform["log"]).read()

    # Off mid-run: nothing more goes up.
    console.switch("off")
    assert wait_count(w, "console log switch: off", 2, 10), w.log()
    since = time.time()
    w.proc.send_signal(signal.SIGHUP)
    assert wait_count(w, "SIGHUP: key file unchanged", 2, 5), w.log()
    time.sleep(3)
    assert console.messages("/thing/log/post", since) == []
    assert "refused" not in w.log(), w.log()


def test_lines_wait_through_an_outage_and_go_up_after_it(tmp_path, keyfile, start_wisp):
    d = tmp_path / "platform"
    d.mkdir()
    (d / f"log-switch.{PK}.{DN}").write_text("1")
    ports = dict(ws=free_port(), wss=free_port(), tcp=free_port())
    platform = start_platform(d, f"{PK} {DN} {SECRET}\n", ports=ports)
    platform["dir"] = d
    w = start_wisp([str(BINARY)], keyfile(**device(platform)))
    try:
        assert w.wait_log("console log switch: on", 15), w.log()
        platform["proc"].terminate()
        platform["proc"].wait(10)
        outage = time.time()
        assert w.wait_log("cannot connect", 30), w.log()
        time.sleep(2)
        platform = start_platform(d, f"{PK} {DN} {SECRET}\n", ports=ports)
        platform["dir"] = d
        console = Console(platform)
        try:
            found = console.wait("/thing/log/post", lambda b: any("offline:" in e["logContent"] for e in b["params"]), timeout=90)
            assert found, w.log()
            lines = [e for b in found for e in b["params"]]
            offline = next(e for e in lines if "offline:" in e["logContent"])
            assert offline["logLevel"] == "WARN"
            # Stamped when it was logged, during the outage, not when it went up.
            t = time.mktime(time.strptime(offline["utcTime"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            assert outage - 5 <= t <= outage + 10, (offline, outage)
            assert any("cannot connect" in e["logContent"] for e in entries(console)), entries(console)
        finally:
            console.close()
    finally:
        platform["proc"].terminate()
        platform["proc"].wait(10)


def test_health_event_has_every_documented_field(platform, console, keyfile, start_wisp):
    w = start_wisp([str(BINARY)], keyfile(**device(platform, health_interval="10")))
    found = console.wait("/thing/event/health/post", timeout=30)
    assert found, w.log()
    value = found[0]["params"]["value"]
    assert set(value) == {"connect_ms", "rtt_ms", "reply_ms", "reconnects", "last_disconnect", "online_s", "backlog",
                          "backlog_oldest_s", "dropped", "private_dirty_kb", "clock_offset_ms", "uptime_s"}, value
    assert 0 <= value["connect_ms"] < 10_000 and value["reconnects"] == 0 and value["online_s"] >= 0
    assert 0 < value["private_dirty_kb"] < 4096 and value["backlog"] == 0 and value["dropped"] == 0
    assert wait_file(platform["log"], "event health from wisp-console") and "refused event" not in open(platform["log"]).read()
