"""Device info over wss against the stand-in platform: after a connect wisp sends
thing.deviceinfo.update with the board's facts and the key file's tag.NAME lines (values
sanitised), the platform answers 200 and wisp records it; a restart with nothing changed
sends nothing, a changed tag sends again. The platform's own checks (460, 6100) too."""
import json
import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from test_platform import DN, PK, SECRET, log_after, log_mark, paho_connect, platform  # noqa: F401  (the module's platform fixture)

UPDATE = f"/sys/{PK}/{DN}/thing/deviceinfo/update"


def pretty_name():
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.exists(path):
            for line in open(path):
                if line.startswith("PRETTY_NAME="):
                    return line.strip().split("=", 1)[1].strip("\"'")
    return None


def sanitised(value):
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-#@%&:.")
    return "".join(c if c in allowed else "_" for c in value)[:128]


class Updates:
    """Every update the device publishes, seen on the tcp listener."""

    def __init__(self, platform):
        self.seen = []
        self.client = mqtt.Client(client_id="observer-deviceinfo")
        self.client.on_message = lambda c, u, m: self.seen.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", platform["ports"]["tcp"])
        self.client.subscribe(UPDATE, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def wait(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.seen) < n:
            time.sleep(0.05)
        return self.seen

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def updates(platform):  # noqa: F811
    u = Updates(platform)
    yield u
    u.close()


def machine(wisp):
    """What uname says to this build: qemu-user reports the emulated machine."""
    return {"qemu-aarch64": "aarch64", "qemu-arm": "armv7l"}.get(wisp[0], os.uname().machine)


def board_tree(tmp_path):
    """A board whose device-tree model is NUL-terminated and whose default route goes through lo."""
    board = tmp_path / "board"
    (board / "proc/device-tree").mkdir(parents=True)
    (board / "proc/device-tree/model").write_bytes(b"Stand-in Board v1\0")
    (board / "proc/net").mkdir(parents=True)
    (board / "proc/net/route").write_text("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                                          "lo\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    return board


def test_device_info_is_sent_once_and_again_when_a_tag_changes(wisp, platform, updates, keyfile, start_wisp, tmp_path):  # noqa: F811
    board = board_tree(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-deviceinfo",
                  keepalive="60", telemetry_interval="60", ca_file=platform["ca_file"], state_dir=str(state),
                  **{"tag.site": "plant 3", "tag.odd": "a/b (c) ü"})
    env = {"WISP_ROOT": str(board)}
    mark = log_mark(platform)
    w = start_wisp(wisp, keyfile(**values), env=env)
    assert w.wait_log("device info: 8 entries accepted by the platform", 20), w.log()
    [first] = updates.wait(1)
    assert first["method"] == "thing.deviceinfo.update" and first["version"] == "1.0" and first["id"].isdigit()
    entries = [(e["attrKey"], e["attrValue"]) for e in first["params"]]
    expected = [("board_model", "Stand-in_Board_v1"), ("os_release", sanitised(pretty_name())),
                ("kernel_release", sanitised(os.uname().release)), ("arch", machine(wisp)), ("wisp_version", "0.1.0"),
                ("ipv4", "127.0.0.1"), ("site", "plant_3"), ("odd", "a_b__c___")]
    assert entries == expected
    assert log_after(platform, mark, f"device info {first['id']} from wisp-deviceinfo|"), "the platform's log"
    assert (state / "deviceinfo").exists()
    assert w.stop() == 0

    w = start_wisp(wisp, keyfile(**values), env=env)
    assert w.wait_log("device info: unchanged since the platform accepted it", 20), w.log()
    time.sleep(1)
    assert len(updates.seen) == 1, "a restart with nothing changed sends nothing"
    assert w.stop() == 0

    values["tag.site"] = "plant 4"
    w = start_wisp(wisp, keyfile(**values), env=env)
    assert w.wait_log("device info: 8 entries accepted by the platform", 20), w.log()
    second = updates.wait(2)[1]
    assert ("site", "plant_4") in [(e["attrKey"], e["attrValue"]) for e in second["params"]]
    assert "device info refused" not in w.log()


def device_client(platform, name):
    """An independent device on ws that collects its update replies."""
    replies = []
    got = threading.Event()
    c, rc = paho_connect(platform, "ws", client=name)
    assert rc == 0
    c.on_message = lambda cl, u, m: (replies.append(json.loads(m.payload)), got.set())
    c.subscribe(UPDATE + "_reply", qos=0)
    time.sleep(0.3)
    return c, replies, got


@pytest.mark.parametrize("params, code, reason", [
    ([{"attrKey": "site", "attrValue": "plant-3"}], 200, None),
    ([{"attrKey": "site", "attrValue": "plant 3"}], 460, "entry 0 (site): attrValue is not 1..128"),
    ([{"attrKey": "site", "attrValue": "v" * 129}], 460, "attrValue is not 1..128"),
    ([{"attrKey": "1site", "attrValue": "x"}], 460, "attrKey '1site' is not a letter"),
    ([{"attrKey": "k" * 31, "attrValue": "x"}], 460, "attrKey"),
    ([{"attrKey": "site"}], 460, "entry 0 is not an object with string attrKey and attrValue"),
    ([], 460, "params is empty"),
    ({"site": "x"}, 460, "params is not a list"),
    ([{"attrKey": f"k{i}", "attrValue": "v"} for i in range(201)], 6100, "201 entries: at most 200"),
])
def test_the_platform_checks_updates(platform, params, code, reason):  # noqa: F811
    c, replies, got = device_client(platform, f"dev-info-{code}-{len(str(params))}")
    mark = log_mark(platform)
    try:
        c.publish(UPDATE, json.dumps({"id": "31", "version": "1.0", "params": params, "method": "thing.deviceinfo.update"}), qos=0)
        assert got.wait(5), "no reply"
        assert replies[0]["id"] == "31" and replies[0]["code"] == code and replies[0]["method"] == "thing.deviceinfo.update"
        if reason:
            assert reason in replies[0]["message"]
            assert log_after(platform, mark, reason), "the reason in the broker's log"
        else:
            assert replies[0]["message"] == "success" and replies[0]["data"] == {}
    finally:
        c.loop_stop()
        c.disconnect()
