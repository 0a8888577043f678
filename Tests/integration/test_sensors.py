"""Sensors and the thing model against fake sysfs trees (WISP_ROOT) and mosquitto:
thermal, hwmon, IIO, 1-Wire, GPIO (sysfs fallback), property set, NTP."""
import json
import shutil
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import DN, PK, ROOT, VALGRIND, run, stripped
from test_agent import POST, device, posts

EMBEDDED_WISP = VALGRIND + [str(stripped(ROOT / ".build-embedded/release/wisp", "embedded") if VALGRIND else ROOT / ".build-embedded/release/wisp")]

SET = f"/sys/{PK}/{DN}/thing/service/property/set"
GOOD_W1 = "28-0316a2795aff"
BAD_W1 = "28-00000000bad1"


def write(root, path, text):
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def board(root):
    """A board's /sys, /proc and GPIO sysfs, as the kernel lays them out."""
    write(root, "/sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
    write(root, "/sys/class/thermal/thermal_zone0/temp", "45123\n")
    write(root, "/sys/class/hwmon/hwmon0/name", "lm75\n")
    write(root, "/sys/class/hwmon/hwmon0/temp1_input", "23500\n")
    write(root, "/sys/class/hwmon/hwmon0/temp1_label", "board\n")
    write(root, "/sys/class/hwmon/hwmon0/in0_input", "3300\n")
    iio = "/sys/bus/iio/devices/iio:device0"
    write(root, f"{iio}/name", "bme280\n")
    write(root, f"{iio}/in_humidityrelative_input", "45000\n")
    write(root, f"{iio}/in_temp_raw", "2000\n")
    write(root, f"{iio}/in_temp_offset", "350\n")
    write(root, f"{iio}/in_temp_scale", "10.000000\n")
    write(root, f"{iio}/in_pressure_raw", "100325\n")
    write(root, f"{iio}/in_pressure_scale", "0.001\n")
    write(root, f"/sys/bus/w1/devices/{GOOD_W1}/w1_slave",
          "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=21375\n")
    write(root, f"/sys/bus/w1/devices/{BAD_W1}/w1_slave",
          "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=85000\n")
    write(root, "/sys/fake/garbage", "not a number\n")
    write(root, "/proc/cpuinfo", "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n\n"
          "Hardware\t: BCM2835\nRevision\t: a02082\nSerial\t\t: 00000000abcdef01\nModel\t\t: Raspberry Pi 3\n")
    write(root, "/proc/loadavg", "0.25 0.10 0.05 1/100 1234\n")
    write(root, "/proc/meminfo", "MemTotal: 1000000 kB\nMemFree: 100000 kB\nMemAvailable: 512000 kB\n")
    write(root, "/proc/net/wireless", "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
          " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
          " wlan0: 0000   70.  -40.  -256        0      0      0      0     12        0\n")
    # GPIO through sysfs (no /dev/gpiochip0 here): chip base 512, lines 17 (relay) and 18 (button).
    (root / "sys/bus/gpio/devices/gpiochip0/gpio/gpiochip512").mkdir(parents=True)
    write(root, "/sys/class/gpio/export", "")
    write(root, "/sys/class/gpio/gpio529/direction", "in\n")
    write(root, "/sys/class/gpio/gpio529/value", "0\n")
    write(root, "/sys/class/gpio/gpio530/direction", "in\n")
    write(root, "/sys/class/gpio/gpio530/value", "1\n")
    return root


SENSORS = dict(**{
    "sensor.cpu_temp": "thermal:cpu-thermal",
    "sensor.board_temp": "hwmon:lm75:board",
    "sensor.rail": "hwmon:lm75:in0",
    "sensor.humidity": "iio:bme280:humidityrelative",
    "sensor.air_temp": "iio:bme280:temp",
    "sensor.pressure": "iio:bme280:pressure",
    "sensor.water_temp": f"w1:{GOOD_W1}",
    "sensor.bad_probe": f"w1:{BAD_W1}",
    "sensor.broken": "file:/sys/fake/garbage",
    "sensor.load": "system:load",
    "sensor.wifi": "system:wifi_quality",
    "sensor.button": "gpio:gpiochip0:18",
    "output.relay": "gpio:gpiochip0:17",
})

EXPECTED = {"cpu_temp": 45.123, "board_temp": 23.5, "rail": 3.3, "humidity": 45, "air_temp": 23.5,
            "pressure": 100.325, "water_temp": 21.375, "load": 0.25, "wifi": 70, "button": 1, "relay": 0}


def test_wisp_sensors_lists_what_the_board_has(wisp, tmp_path, keyfile):
    root = board(tmp_path / "board")
    r = run([*wisp, "sensors", "--config", keyfile(endpoint="ws://h", **SENSORS)], env={"WISP_ROOT": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in ("sensor.NAME = thermal:cpu-thermal  # 45.123", "sensor.NAME = hwmon:lm75:board  # 23.5",
                 "sensor.NAME = hwmon:lm75:in0  # 3.3", "sensor.NAME = iio:bme280:humidityrelative  # 45",
                 "sensor.NAME = iio:bme280:temp  # 23.5", f"sensor.NAME = w1:{GOOD_W1}  # 21.375",
                 f"sensor.NAME = w1:{BAD_W1}  # unreadable: 1-Wire CRC check failed",
                 "sensor.NAME = system:wifi_quality  # 70", "# GPIO chip: gpiochip0",
                 "sensor.broken = file:/sys/fake/garbage  # unreadable: no number in",
                 "sensor.humidity = iio:bme280:humidityrelative  # 45", "output.relay = gpio:gpiochip0:17"):
        assert line in out, line + "\n" + out


def values(post):
    return {k: v["value"] for k, v in post["params"].items()}


def test_thing_model_posts_sets_and_recovers(wisp, tmp_path, broker, certs, observer, keyfile, start_wisp):
    root = board(tmp_path / "board")
    # Over wss with the certificate checked: property sets may drive outputs.
    w = start_wisp(wisp, keyfile(**device(broker, certs, "wss"), **SENSORS), env={"WISP_ROOT": str(root)})
    got = posts(observer, 3, 15)
    assert len(got) >= 3, w.log()
    for post in got:
        assert values(post) == EXPECTED, values(post)
    log = w.log()
    assert log.count("sensor bad_probe: 1-Wire CRC check failed") == 1, "logged once, not every interval"
    assert log.count("sensor broken: no number in") == 1

    # The platform switches the relay: set_reply 200, the line is driven, the next post shows it.
    observer.publish(SET, '{"method":"thing.service.property.set","id":"42","params":{"relay":1},"version":"1.0"}')
    replies = observer.wait_for(lambda m: m[0] == SET + "_reply", 10)
    assert replies, w.log()
    reply = json.loads(replies[0][1])
    assert reply["code"] == 200 and reply["id"] == "42" and reply["message"] == "success"
    assert (root / "sys/class/gpio/gpio529/value").read_text().strip() == "1"
    assert (root / "sys/class/gpio/gpio529/direction").read_text().strip() == "low"
    seen = len(observer.messages)
    deadline = time.time() + 5
    while time.time() < deadline and not any(t == POST and values(json.loads(p)).get("relay") == 1 for t, p in observer.messages[seen:]):
        time.sleep(0.05)
    assert any(t == POST and values(json.loads(p)).get("relay") == 1 for t, p in observer.messages[seen:])

    # Unknown property and malformed JSON: an error code, nothing set, wisp carries on.
    observer.publish(SET, '{"id":"43","params":{"fan":1}}')
    observer.publish(SET, '{"id":"44","params":{"relay":')
    observer.publish(SET, '{"id":"45","params":{"relay":7}}')
    deadline = time.time() + 10
    while time.time() < deadline and len([m for m in observer.messages if m[0] == SET + "_reply"]) < 4:
        time.sleep(0.05)
    replies = [json.loads(p) for t, p in observer.messages if t == SET + "_reply"]
    assert [r["code"] for r in replies] == [200, 460, 460, 460], replies
    assert "property not settable: fan" in replies[1]["message"]
    assert "malformed JSON" in replies[2]["message"]
    assert (root / "sys/class/gpio/gpio529/value").read_text().strip() == "1"

    # A probe that disappears is left out and logged once; when it returns it is posted again.
    shutil.move(str(root / f"sys/bus/w1/devices/{GOOD_W1}"), str(tmp_path / "unplugged"))
    assert w.wait_log("sensor water_temp: cannot read", 5), w.log()
    seen = len(observer.messages)
    time.sleep(2.5)
    later = [values(json.loads(p)) for t, p in observer.messages[seen:] if t == POST]
    assert later and all("water_temp" not in v for v in later)
    shutil.move(str(tmp_path / "unplugged"), str(root / f"sys/bus/w1/devices/{GOOD_W1}"))
    assert w.wait_log("sensor water_temp recovered", 5), w.log()
    assert w.log().count("sensor water_temp: cannot read") == 1
    assert w.proc.poll() is None


@pytest.mark.parametrize("allow", [None, "true"])
def test_outputs_over_plain_ws_need_allow_plaintext_control(tmp_path, broker, observer, keyfile, start_wisp, allow):
    """Over ws:// anyone on the path can inject a property set: it drives no GPIO unless
    the key file says allow_plaintext_control = true."""
    root = board(tmp_path / "board")
    extra = {"output.relay": "gpio:gpiochip0:17"}
    if allow:
        extra["allow_plaintext_control"] = allow
    w = start_wisp(EMBEDDED_WISP, keyfile(**device(broker), **extra), env={"WISP_ROOT": str(root)})
    assert w.wait_log("online", 10), w.log()
    assert "is not encrypted" in w.log()
    observer.publish(SET, '{"id":"7","params":{"relay":1}}')
    replies = observer.wait_for(lambda m: m[0] == SET + "_reply", 10)
    assert replies, w.log()
    reply = json.loads(replies[0][1])
    value = (root / "sys/class/gpio/gpio529/value").read_text().strip()
    if allow:
        assert reply["code"] == 200 and value == "1"
    else:
        assert reply["code"] == 403 and "unauthenticated link" in reply["message"]
        assert value == "0", "the line was not driven"
        assert "property set refused: the link is not authenticated TLS" in w.log()


def test_ntp_over_mqtt_sets_post_timestamps(wisp, tmp_path, broker, observer, keyfile, start_wisp):
    server_time = 2_000_000_000_000  # 2033: clearly not this machine's clock
    responder = mqtt.Client(client_id="ntp-responder")
    responder.username_pw_set("observer", "observer-pw")

    def on_message(client, userdata, msg):
        request = json.loads(msg.payload)
        client.publish(f"/ext/ntp/{PK}/{DN}/response", json.dumps({
            "deviceSendTime": request["deviceSendTime"],
            "serverRecvTime": str(server_time), "serverSendTime": str(server_time + 2)}))
    responder.on_message = on_message
    responder.connect("127.0.0.1", broker.tcp)
    responder.subscribe(f"/ext/ntp/{PK}/{DN}/request", qos=1)
    responder.loop_start()
    try:
        time.sleep(0.5)
        w = start_wisp(wisp, keyfile(**device(broker)))
        assert w.wait_log("clock: platform time received", 10), w.log()
        seen = len(observer.messages)
        deadline = time.time() + 5
        stamps = []
        while time.time() < deadline and not stamps:
            stamps = [p["params"]["load_avg"]["time"] for p in
                      (json.loads(m[1]) for m in observer.messages[seen:] if m[0] == POST)]
            time.sleep(0.05)
        assert stamps, w.log()
        assert abs(stamps[0] - server_time) < 10_000, stamps
    finally:
        responder.loop_stop()
        responder.disconnect()


def test_client_id_defaults_to_the_board_serial(wisp, tmp_path, keyfile):
    root = board(tmp_path / "board")
    r = run([*wisp, "check", "--config", keyfile(endpoint="ws://h")], env={"WISP_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    assert "client_id = 00000000abcdef01 (from the board)" in r.stdout


def test_deadband_posts_a_steady_value_only_every_n_intervals(wisp, tmp_path, broker, observer, keyfile, start_wisp):
    root = board(tmp_path / "board")
    values_ = dict(**{"sensor.steady": "file:/sys/fake/steady deadband=5 every=3", "sensor.load": "system:load"})
    write(root, "/sys/fake/steady", "20\n")
    w = start_wisp(wisp, keyfile(**device(broker), **values_), env={"WISP_ROOT": str(root)})
    got = posts(observer, 7, 15)
    assert len(got) >= 7, w.log()
    has = ["steady" in values(p) for p in got[:7]]
    assert has == [True, False, False, True, False, False, True], has
    write(root, "/sys/fake/steady", "30\n")  # moved by more than the deadband: posted at once
    seen = len(observer.messages)
    deadline = time.time() + 5
    while time.time() < deadline:
        later = [values(json.loads(p)) for t, p in observer.messages[seen:] if t == POST]
        if later:
            break
        time.sleep(0.05)
    assert later and later[0].get("steady") == 30


def test_a_value_scaled_out_of_range_is_left_out_not_a_crash(wisp, tmp_path, broker, observer, keyfile, start_wisp):
    """A file's number times a large scale no longer fits the post's fixed-point Int64:
    that sensor is left out with a warning; wisp and the other sensors go on."""
    root = board(tmp_path / "board")
    write(root, "/sys/fake/huge", "123456789\n")
    values_ = {"sensor.huge": "file:/sys/fake/huge:999999999999999999", "sensor.load": "system:load"}
    w = start_wisp(wisp, keyfile(**device(broker), **values_), env={"WISP_ROOT": str(root)})
    got = posts(observer, 2, 15)
    assert len(got) >= 2, w.log()
    assert all("huge" not in values(p) and "load" in values(p) for p in got), got
    assert "sensor huge: the value after scale and offset is out of range" in w.log()
    assert w.proc.poll() is None, w.log()


def test_a_fifo_as_a_file_sensor_never_stalls_the_loop(tmp_path, broker, observer, keyfile, start_wisp):
    """A FIFO nobody writes would block a plain read forever: it is not read, and posts go on."""
    import os
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    w = start_wisp(EMBEDDED_WISP, keyfile(**device(broker, telemetry_interval="1", **{"sensor.load": "system:load",
                                                                                      "sensor.pipe": f"file:{fifo}"})))
    assert w.wait_log("not a regular file", 10), w.log()
    n = len(posts(observer, 0, 0))
    time.sleep(3.5)
    fresh = posts(observer, 0, 0)[n:]
    assert len(fresh) >= 3, f"{len(fresh)} posts in 3.5 s: the loop stalled"
    assert all("pipe" not in p["params"] for p in fresh)
