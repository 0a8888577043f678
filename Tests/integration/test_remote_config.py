"""Remote config through the stand-in platform (platform/push config): a pushed
key-file fragment is downloaded over HTTPS, checked (sha256, allowed keys), kept under
state_dir and applied as SIGHUP would; a bad one keeps the running settings and is
answered with the reason."""
import json
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT
from test_platform import DN, PK, SECRET, platform  # noqa: F401  (the module's platform fixture)

BINARY = ROOT / ".build-embedded/release/wisp"
pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="no Embedded build")


class Push:
    def __init__(self, platform, file, *args):  # noqa: F811
        self.proc = subprocess.Popen([str(ROOT / "platform/push"), "config", "--platform-dir",
                                      str(__import__("pathlib").Path(platform["ca_file"]).parent), "--tcp-port", str(platform["ports"]["tcp"]),
                                      "--product-key", PK, "--device", DN, "--file", str(file), *args], stdout=subprocess.PIPE, text=True)
        self.events = []
        threading.Thread(target=lambda: [self.events.append(json.loads(line)) for line in self.proc.stdout], daemon=True).start()

    def wait(self, kind, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in list(self.events) if e["event"] == kind]
            if found:
                return found[0]
            time.sleep(0.05)
        return None

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def subscribe_posts(platform, record):  # noqa: F811
    """A client on the platform's TCP listener calling record(message) for each property post."""
    c = mqtt.Client(client_id=f"observer-config-{time.time()}")
    c.on_message = lambda cl, u, m: record(m)
    c.connect("127.0.0.1", platform["ports"]["tcp"])
    c.subscribe(f"/sys/{PK}/{DN}/thing/event/property/post", qos=1)
    c.loop_start()
    time.sleep(0.3)
    return c


@pytest.fixture
def posts(platform):  # noqa: F811
    seen = []
    c = subscribe_posts(platform, lambda m: seen.append(time.time()))
    yield seen
    c.loop_stop()
    c.disconnect()


def start(platform, keyfile, start_wisp, tmp_path, binary=(str(BINARY),)):  # noqa: F811
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-config",
                  keepalive="60", telemetry_interval="60", ca_file=platform["ca_file"], state_dir=str(tmp_path / "state"))
    key = keyfile(**values)
    w = start_wisp(list(binary), key)
    assert w.wait_log("subscribed to", 30), w.log()
    return w, key


def test_a_pushed_config_is_applied_kept_and_survives_a_restart(platform, keyfile, start_wisp, tmp_path, posts):  # noqa: F811
    fragment = tmp_path / "fleet.conf"
    fragment.write_text("# every second, for the test\ntelemetry_interval = 1\n")
    w, key = start(platform, keyfile, start_wisp, tmp_path)
    push = Push(platform, fragment)
    try:
        reply = push.wait("push_reply", 15)
        assert reply and reply["code"] == 200 and reply["id"] == "4242", push.events + [w.log()]
        assert w.wait_log("applied; reconnecting with the new settings", 5), w.log()
        t = time.time()
        time.sleep(4)
        assert len([p for p in posts if p > t]) >= 3, "the new interval is not in force"
        kept = (tmp_path / "state/remote.conf").read_text()
        assert kept.startswith("# every second") and "\n# configId = cfg" in kept and "telemetry_interval = 1" in kept
        check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
        assert "telemetry_interval = 1" in check.stdout, check.stdout
        # A restart keeps it; the platform's answer to thing.config.get names the same config: no second download.
        w.stop()
        requests = len(push.events)
        w2 = start(platform, keyfile, start_wisp, tmp_path)[0]
        assert push.wait("config.get", 10)
        assert w2.wait_log("online", 10)
        t = time.time()
        time.sleep(3)
        assert len([p for p in posts if p > t]) >= 2
        assert "downloading" not in w2.log() and len([e for e in push.events[requests:] if e["event"] == "push_reply"]) == 0
    finally:
        push.close()


@pytest.mark.parametrize("case", ["tampered", "secret-key"])
def test_a_bad_config_keeps_the_running_settings_and_says_why(platform, keyfile, start_wisp, tmp_path, posts, case):  # noqa: F811
    fragment = tmp_path / "fleet.conf"
    fragment.write_text("telemetry_interval = 1\n" + ("device_secret = overwritten\n" if case == "secret-key" else ""))
    w, key = start(platform, keyfile, start_wisp, tmp_path)
    push = Push(platform, fragment, *(["--sign", "0" * 64] if case == "tampered" else []))
    try:
        reply = push.wait("push_reply", 15)
        expected = "sha256" if case == "tampered" else "remote config line 2: 'device_secret' may only be set in the key file"
        assert reply and reply["code"] == 460 and expected in reply["message"], push.events + [w.log()]
        assert w.wait_log("keeping the running settings", 5)
        t = time.time()
        time.sleep(2.5)
        assert [p for p in posts if p > t] == [], "the settings changed"
        assert not (tmp_path / "state/remote.conf").exists()
        assert "reconnecting with the new settings" not in w.log()
    finally:
        push.close()


def test_a_pushed_number_beyond_32_bits_is_refused_on_every_build(platform, keyfile, start_wisp, tmp_path, posts, wisp):  # noqa: F811
    """armv7's Int is 32 bits: `telemetry_interval = 9999999999` once trapped there; now 460."""
    fragment = tmp_path / "fleet.conf"
    fragment.write_text("telemetry_interval = 9999999999\n")
    w, _ = start(platform, keyfile, start_wisp, tmp_path, binary=wisp)
    push = Push(platform, fragment)
    try:
        reply = push.wait("push_reply", 30)
        assert reply and reply["code"] == 460 and "remote config line 1: bad value for 'telemetry_interval'" in reply["message"], \
            push.events + [w.log()]
        assert w.wait_log("keeping the running settings", 5)
        assert w.proc.poll() is None, "wisp ended"
    finally:
        push.close()


@pytest.mark.parametrize("fragment, words", [
    ("sensor.leak = file:/etc/hostname\n", "remote config line 1: 'sensor.leak = file:/etc/hostname (a file outside /sys and /proc)'"),
    ("sensor.leak = file:/proc/../etc/hostname\n", "(a path with an empty, . or .. component)"),
    ("output.relay = gpio:gpiochip0:17\n", "remote config line 1: 'output.relay (an output the key file does not declare"),
])
def test_a_config_reaching_past_the_key_file_is_refused(platform, keyfile, start_wisp, tmp_path, fragment, words):  # noqa: F811
    path = tmp_path / "fleet.conf"
    path.write_text(fragment)
    w, _ = start(platform, keyfile, start_wisp, tmp_path)
    push = Push(platform, path)
    try:
        reply = push.wait("push_reply", 15)
        assert reply and reply["code"] == 460 and words in reply["message"], push.events + [w.log()]
        assert w.wait_log("keeping the running settings", 5)
        assert not (tmp_path / "state/remote.conf").exists()
    finally:
        push.close()


def test_a_pushed_file_sensor_reads_only_kernel_files(platform, keyfile, start_wisp, tmp_path):  # noqa: F811
    """/proc/self/root/… passes the path rule but leads out of procfs: never read, never posted."""
    seen = []
    c = subscribe_posts(platform, lambda m: seen.append(json.loads(m.payload)))
    secret_file = tmp_path / "not-a-kernel-file"
    secret_file.write_text("424242\n")
    path = tmp_path / "fleet.conf"
    path.write_text(f"telemetry_interval = 1\nsensor.up = file:/proc/uptime\nsensor.out = file:/proc/self/root{secret_file}\n")
    w, _ = start(platform, keyfile, start_wisp, tmp_path)
    push = Push(platform, path)
    try:
        reply = push.wait("push_reply", 15)
        assert reply and reply["code"] == 200, push.events + [w.log()]
        assert w.wait_log("not a file of sysfs or procfs", 10), w.log()
        t = time.time()
        time.sleep(3)
        params = [p["params"] for p in list(seen)]
        assert any("up" in p for p in params), params
        assert not any("out" in p for p in params), "a file outside procfs was posted"
        assert "424242" not in json.dumps(params)
    finally:
        push.close()
        c.loop_stop()
        c.disconnect()
