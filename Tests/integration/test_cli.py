"""The command line: check, sign, version, help, and their exit codes."""
import hashlib
import hmac
import os

from conftest import SECRET, run

PLATFORM = dict(endpoint="wss://pk.example.com:443", product_key="pk", device_name="device",
                device_secret=SECRET, client_id="12345", sign_method="hmacsha1")


def test_sign_matches_the_documents_example_and_an_independent_hmac(wisp, keyfile):
    r = run([*wisp, "sign", "--config", keyfile(**PLATFORM), "--timestamp", "789"])
    assert r.returncode == 0, r.stderr
    content = b"clientId12345deviceNamedeviceproductKeypktimestamp789"
    expected = hmac.new(SECRET.encode(), content, hashlib.sha1).hexdigest()
    assert r.stdout.splitlines() == [
        "mqttClientId=12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
        "mqttUsername=device&pk",
        "mqttPassword=" + expected,
    ]


def test_sign_without_timestamp_and_with_ws(wisp, keyfile):
    values = dict(PLATFORM, endpoint="ws://h:443", sign_timestamp="off", sign_method="hmacsha256")
    r = run([*wisp, "sign", "--config", keyfile(**values)])
    expected = hmac.new(SECRET.encode(), b"clientId12345deviceNamedeviceproductKeypk", hashlib.sha256).hexdigest()
    assert r.stdout.splitlines() == [
        "mqttClientId=12345|securemode=3,signmethod=hmacsha256|",
        "mqttUsername=device&pk",
        "mqttPassword=" + expected,
    ]


def test_check_prints_settings_and_never_the_secret(wisp, keyfile):
    r = run([*wisp, "check", "--config", keyfile(**PLATFORM)])
    assert r.returncode == 0, r.stderr
    assert "device_secret = (set, redacted)" in r.stdout
    assert "endpoint = wss://pk.example.com:443/mqtt" in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_check_shows_that_ws_to_the_platform_goes_to_443(wisp, keyfile):
    """The platform serves ws:// on 443: without a port its host names get 443, other ws://
    hosts 80, and `wisp check` prints the host, port and path wisp will use."""
    for endpoint, shown in [("ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", "ws://pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:443/mqtt"),
                            ("ws://iot-06z00abc.mqtt.iothub.aliyuncs.com/mqtt", "ws://iot-06z00abc.mqtt.iothub.aliyuncs.com:443/mqtt"),
                            ("ws://broker.example.com", "ws://broker.example.com:80/mqtt")]:
        r = run([*wisp, "check", "--config", keyfile(**dict(PLATFORM, endpoint=endpoint))])
        assert r.returncode == 0, r.stderr
        assert f"endpoint = {shown}\n" in r.stdout, (endpoint, r.stdout)


def test_check_refuses_a_key_file_others_can_read(wisp, keyfile):
    path = keyfile(mode=0o644, **PLATFORM)
    r = run([*wisp, "check", "--config", path])
    assert r.returncode == 78
    assert f"chmod 600 {path}" in r.stderr
    assert SECRET not in r.stderr


def test_check_names_the_bad_line(wisp, keyfile):
    r = run([*wisp, "check", "--config", keyfile(**PLATFORM, keepalive="20")])
    assert r.returncode == 78
    assert "line 7: bad value for 'keepalive': expected seconds, 30 to 1200" in r.stderr
    assert SECRET not in r.stderr


def test_key_file_past_16_kib_is_refused(wisp, tmp_path):
    path = tmp_path / "huge.key"
    path.write_text("endpoint = ws://127.0.0.1:1/mqtt\n" + "# comment\n" * 2000)
    os.chmod(path, 0o600)
    r = run([*wisp, "check", "--config", str(path)])
    assert r.returncode == 78
    assert f"cannot read key file {path}: File too large" in r.stderr


def test_missing_key_file(wisp, tmp_path):
    r = run([*wisp, "check", "--config", str(tmp_path / "nope.key")])
    assert r.returncode == 78
    assert "No such file or directory" in r.stderr


def test_usage_errors_exit_64(wisp, keyfile):
    for args in (["frobnicate"], ["check", "--bogus", "x"], ["check", "--config"], [],
                 ["sign", "--config", keyfile(**PLATFORM), "--timestamp", "soon"]):
        r = run([*wisp, *args])
        assert r.returncode == 64, args
        assert "wisp help" in r.stderr


def test_help_documents_commands_and_keys(wisp):
    r = run([*wisp, "--help"])
    assert r.returncode == 0
    for word in ("run", "check", "sign", "status [--config PATH] [--json]", "version", "keepalive", "sign_timestamp", "tls_insecure", "proxy"):
        assert word in r.stdout


def test_version(wisp):
    r = run([*wisp, "version"])
    assert r.returncode == 0
    assert r.stdout.startswith("wisp ") and "linux-gnu" in r.stdout and "git " in r.stdout


# Numbers beyond 32 bits: armv7's Int is 32 bits, and each of these once ended in SIGILL
# there (a crash loop under systemd for the key file). Run on every build, armv7 included.
def test_sign_with_a_millisecond_timestamp_beyond_32_bits(wisp, keyfile):
    r = run([*wisp, "sign", "--config", keyfile(**PLATFORM), "--timestamp", "1700000000000"])
    assert r.returncode == 0, r.stderr
    content = b"clientId12345deviceNamedeviceproductKeypktimestamp1700000000000"
    assert r.stdout.splitlines()[2] == "mqttPassword=" + hmac.new(SECRET.encode(), content, hashlib.sha1).hexdigest()


def test_a_key_file_with_a_fixed_sign_timestamp_beyond_32_bits(wisp, keyfile):
    key = keyfile(**dict(PLATFORM, sign_timestamp="1700000000000"))
    r = run([*wisp, "sign", "--config", key])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "mqttClientId=12345|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|"
    assert run([*wisp, "check", "--config", key]).returncode == 0


def test_numbers_too_large_for_32_bits_are_refused_by_line_not_a_trap(wisp, keyfile):
    for extra, line, key in [(dict(telemetry_interval="9999999999"), 7, "telemetry_interval"),
                             (dict(buffer_samples="99999999999999"), 7, "buffer_samples"),
                             (dict(ota_max_bytes="999999999999999999"), 7, "ota_max_bytes"),
                             ({"sensor.t": "system:load every=99999999999"}, 7, "sensor.t"),
                             ({"sensor.b": "gpio:gpiochip0:4294967313"}, 7, "sensor.b"),
                             ({"output.r": "gpio:gpiochip0:99999999999"}, 7, "output.r")]:
        r = run([*wisp, "check", "--config", keyfile(**dict(PLATFORM, **extra))])
        assert r.returncode == 78, (extra, r.returncode, r.stderr)
        assert f"line {line}: bad value for '{key}'" in r.stderr, r.stderr
