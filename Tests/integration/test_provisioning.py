"""Dynamic registration ("one type, one secret") against the stand-in platform: a key file
with product_secret instead of device_secret registers the board once over wss, keeps the
device secret in state_dir/identity (0600) before using it, and signs in with it from then
on. The plugin hands a device its secret once; a second registration is refused."""
import os
import stat
import subprocess
import time

import pytest

from conftest import ROOT
from test_platform import start_platform

BINARY = ROOT / ".build-embedded/release/wisp"
pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="no Embedded build (WISP_EMBEDDED=1 swift build -c release)")
PK, PRODUCT_SECRET = "a1RegProd", "product-secret-DO-NOT-LEAK-41"
DEVICES = {f"board-{i}": f"device-secret-DO-NOT-LEAK-{i}" for i in range(5)}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    info = start_platform(tmp_path_factory.mktemp("regplatform"),
                          f"product {PK} {PRODUCT_SECRET}\n" + "".join(f"{PK} {dn} {s}\n" for dn, s in DEVICES.items()))
    yield info
    info["proc"].terminate()
    info["proc"].wait(10)


def key_file(tmp_path, platform, dn, secret=PRODUCT_SECRET, **extra):
    state = tmp_path / "state"
    values = dict(endpoint=f"wss://localhost:{platform['ports']['wss']}/mqtt", product_key=PK, device_name=dn,
                  product_secret=secret, client_id=f"reg-{dn}", ca_file=platform["ca_file"], state_dir=str(state),
                  telemetry_interval="1", **extra)
    values = {k: v for k, v in values.items() if v is not None}
    key = tmp_path / "device.key"
    key.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    os.chmod(key, 0o600)
    return key, state / "identity"


def broker_log(platform):
    return open(platform["log"], errors="replace").read()


def no_secrets(text):
    assert PRODUCT_SECRET not in text, "the product secret reached the output"
    for s in DEVICES.values():
        assert s not in text, "a device secret reached the output"


def run_until_a_post_is_accepted(key, tmp_path):
    """`wisp run` until the platform accepts a property post, then SIGTERM; its log file."""
    log = tmp_path / "wisp.log"
    with open(log, "w") as err:
        p = subprocess.Popen([str(BINARY), "run", "--config", str(key), "--verbose"], stderr=err, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and "property post accepted" not in log.read_text():
            time.sleep(0.1)
        assert "property post accepted" in log.read_text(), log.read_text()
    finally:
        p.terminate()
        p.wait(10)
    return log


def test_first_run_registers_keeps_the_secret_then_signs_in_with_it(platform, tmp_path):
    key, identity = key_file(tmp_path, platform, "board-0")
    log = run_until_a_post_is_accepted(key, tmp_path)
    text = log.read_text()
    assert text.index("registered: the device secret is kept in") < text.index("online:")
    record = identity.read_text()
    assert f"device_secret = {DEVICES['board-0']}" in record and f"product_key = {PK}" in record
    assert stat.S_IMODE(os.stat(identity).st_mode) == 0o600
    assert f"wisp-platform: registered {PK}/board-0" in broker_log(platform)
    assert f"accepted reg-board-0|securemode=2,signmethod=hmacsha256" in broker_log(platform)
    no_secrets(log.read_text())
    check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert "identity = registered, from " + str(identity) in check.stdout, check.stdout
    no_secrets(check.stdout + check.stderr)


def test_a_restart_between_receiving_and_using_the_secret_uses_the_identity_file(platform, tmp_path):
    """`wisp register` receives and keeps the secret, then stops: the next start signs in
    with it (the platform would refuse a second registration of the same device)."""
    key, identity = key_file(tmp_path, platform, "board-1")
    r = subprocess.run([str(BINARY), "register", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and identity.exists(), r.stdout + r.stderr
    no_secrets(r.stdout + r.stderr)
    again = subprocess.run([str(BINARY), "register", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and "already registered" in again.stdout
    online = subprocess.run([str(BINARY), "check", "--online", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert online.returncode == 0, online.stdout + online.stderr
    assert broker_log(platform).count(f"registered {PK}/board-1") == 1


@pytest.mark.parametrize("case", ["wrong-product-secret", "already-activated", "not-in-console"])
def test_refused_registrations_say_why_and_keep_nothing(platform, tmp_path, case):
    dn = {"wrong-product-secret": "board-2", "already-activated": "board-3", "not-in-console": "board-99"}[case]
    key, identity = key_file(tmp_path, platform, dn, secret="wrong-secret" if case == "wrong-product-secret" else PRODUCT_SECRET)
    if case == "already-activated":
        first = subprocess.run([str(BINARY), "register", "--config", str(key)], capture_output=True, text=True, timeout=30)
        assert first.returncode == 0, first.stderr
        identity.unlink()
    r = subprocess.run([str(BINARY), "register", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 77, r.stdout + r.stderr
    assert "refused the registration" in r.stderr and "reset it in the console" in r.stderr
    assert not identity.exists()
    reason = {"wrong-product-secret": "wrong product secret", "already-activated": "already activated",
              "not-in-console": "add it in the console first"}[case]
    assert reason in broker_log(platform)
    no_secrets(r.stdout + r.stderr)


def test_an_identity_file_for_another_device_is_refused(platform, tmp_path):
    key, identity = key_file(tmp_path, platform, "board-0")
    identity.parent.mkdir()
    identity.write_text(f"product_key = {PK}\ndevice_name = someone-else\ndevice_secret = x\n")
    os.chmod(identity, 0o600)
    r = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert r.returncode == 78 and "is not the identity of this key file" in r.stderr, r.stderr


def test_registration_without_pre_registration_uses_the_token_it_gets(platform, tmp_path):
    """register_mode = regnwl (here on a new-style instance: instance_id, securemode=-2): the
    platform creates the device and hands out a client id and a token; wisp keeps both in
    the identity file and signs in with authType=connwl from then on."""
    key, identity = key_file(tmp_path, platform, "fresh-1", register_mode="regnwl", instance_id="iot-06z00test")
    log = run_until_a_post_is_accepted(key, tmp_path)
    record = dict(line.split(" = ", 1) for line in identity.read_text().splitlines())
    assert record["client_id"] == f"{PK}.fresh-1" and len(record["device_token"]) == 32 and "device_secret" not in record
    text = broker_log(platform)
    assert f"registered without pre-registration {PK}/fresh-1" in text
    assert "securemode=-2,authType=regnwl" in text and "instanceId=iot-06z00test" in text
    assert f"accepted {PK}.fresh-1|securemode=-2,authType=connwl| as {PK}/fresh-1 (token)" in text
    assert record["device_token"] not in log.read_text(), "the token reached the log"
    no_secrets(log.read_text())
    online = subprocess.run([str(BINARY), "check", "--online", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert online.returncode == 0, online.stdout + online.stderr
    assert record["device_token"] not in online.stdout + online.stderr


def test_one_image_for_every_board_the_device_name_is_the_boards(platform, tmp_path):
    """A key file with product_secret and no device_name: the board's client id (here set;
    on a board its serial or MAC) is the device name it registers as."""
    key, identity = key_file(tmp_path, platform, None, register_mode="regnwl")
    text = "".join(l for l in key.read_text().splitlines(keepends=True) if not l.startswith("device_name") and not l.startswith("client_id"))
    key.write_text(text + "client_id = pi-00000000c0ffee01\n")
    check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert check.returncode == 0 and "device_name = pi-00000000c0ffee01" in check.stdout and "device_name is the board's" in check.stdout, check.stdout
    r = subprocess.run([str(BINARY), "register", "--config", str(key)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "device_name = pi-00000000c0ffee01" in identity.read_text()
    assert f"registered without pre-registration {PK}/pi-00000000c0ffee01" in broker_log(platform)


def test_after_registration_the_product_secret_can_go_and_check_warns_while_it_stays(platform, tmp_path):
    """The fleet's secret should not stay on every board: once registered, a key file with
    product_key and device_name only signs in with the identity file; until the line is
    removed, `wisp check` and `wisp run` warn."""
    key, identity = key_file(tmp_path, platform, "board-4")
    log = run_until_a_post_is_accepted(key, tmp_path)
    assert "still holds product_secret" in log.read_text()
    check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert check.returncode == 0 and "still holds product_secret though this board is registered" in check.stderr, check.stderr
    # Remove the line: the identity file is enough.
    key.write_text("".join(line + "\n" for line in key.read_text().splitlines() if not line.startswith("product_secret")))
    check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert check.returncode == 0 and "identity = registered" in check.stdout and "product_secret" not in check.stderr, check
    log = run_until_a_post_is_accepted(key, tmp_path)
    assert "registered: the device secret" not in log.read_text() and "still holds" not in log.read_text()
    no_secrets(log.read_text() + check.stdout + check.stderr)
    # Without the identity file there is nothing to sign in with: exit 78 naming the fix.
    identity.unlink()
    check = subprocess.run([str(BINARY), "check", "--config", str(key)], capture_output=True, text=True)
    assert check.returncode == 78 and "no registered identity in " + str(identity) in check.stderr, check.stderr


def test_a_product_secret_with_tls_insecure_is_refused(platform, tmp_path):
    """A man-in-the-middle could answer the registration and plant a secret kept for good."""
    key, identity = key_file(tmp_path, platform, "board-2", tls_insecure="true")
    for command in ("check", "run"):
        r = subprocess.run([str(BINARY), command, "--config", str(key)], capture_output=True, text=True, timeout=20)
        assert r.returncode == 78 and "'product_secret' cannot be combined with tls_insecure" in r.stderr, r.stderr
    assert not identity.exists()
