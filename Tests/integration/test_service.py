"""Boot service: sd_notify, scripts/install --root, the systemd unit, the Debian packages."""
import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import ROOT, run
from test_agent import device

CROSS = {"aarch64-linux-gnu": "arm64", "armv7-linux-gnueabihf": "armhf"}


def test_sd_notify_ready_after_connack_and_watchdog_at_half_the_period(wisp, broker, keyfile, tmp_path, start_wisp):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = path, "1000000"
    try:
        w = start_wisp(wisp, keyfile(**device(broker, telemetry_interval="3600")))
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    messages = []
    deadline = time.time() + 6
    while time.time() < deadline:
        try:
            messages.append((time.time(), sock.recv(1024).decode()))
        except socket.timeout:
            pass
    w.signal(signal.SIGTERM)
    w.proc.wait(10)
    try:
        while True:
            messages.append((time.time(), sock.recv(1024).decode()))
    except (socket.timeout, BlockingIOError):
        pass
    texts = [m for _, m in messages]
    ready = [i for i, m in enumerate(texts) if m.startswith("READY=1")]
    assert len(ready) == 1, texts
    assert "online" in w.log()
    first_ready = messages[ready[0]][0]
    pings = [t for t, m in messages if m == "WATCHDOG=1" and t > first_ready]
    # 1 s period → a ping every 0.5 s: ~10 in the ~5 s after READY.
    span = max(t for t, _ in messages) - first_ready
    assert abs(len(pings) - span / 0.5) <= 3, (len(pings), span)
    assert texts[-1] == "STOPPING=1"


def tree(root):
    """Every path under root with its type, mode, owner and content digest."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[os.path.relpath(p, root)] = (oct(st.st_mode), st.st_uid, st.st_gid, digest)
    return out


def test_install_into_an_image_root_is_complete_and_idempotent(tmp_path):
    root = tmp_path / "sdcard"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\ngpio:x:997:pi\npi:x:1000:\n")
    binary = ROOT / ".build-cross/aarch64-linux-gnu/wisp"
    r = run([str(ROOT / "scripts/install"), "--root", str(root), "--binary", str(binary)])
    assert r.returncode == 0, r.stderr

    passwd = (root / "etc/passwd").read_text().splitlines()
    wisp_line = [l for l in passwd if l.startswith("wisp:")]
    assert len(wisp_line) == 1 and wisp_line[0].endswith(":/nonexistent:/usr/sbin/nologin")
    uid, gid = int(wisp_line[0].split(":")[2]), int(wisp_line[0].split(":")[3])
    assert 100 <= uid < 1000
    group = (root / "etc/group").read_text().splitlines()
    assert "gpio:x:997:pi,wisp" in group
    assert f"wisp:x:{gid}:" in group

    assert (root / "usr/local/bin/wisp").read_bytes() == binary.read_bytes()
    assert stat.S_IMODE(os.stat(root / "usr/local/bin/wisp").st_mode) == 0o755
    key = root / "etc/wisp/device.key"
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == uid
    assert stat.S_IMODE(os.stat(root / "etc/wisp").st_mode) == 0o750
    unit = (root / "etc/systemd/system/wisp.service").read_text()
    for line in ("After=network-online.target", "Restart=always", "Type=notify", "WatchdogSec=",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "CapabilityBoundingSet=\n", "ReadOnlyPaths=/etc/wisp", "DeviceAllow=char-gpiochip rw",
                 "ExecStart=/usr/local/bin/wisp run --config /etc/wisp/device.key", "User=wisp",
                 "RuntimeDirectory=wisp\nRuntimeDirectoryMode=0755\n"):
        assert line in unit, line
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/wisp.service") == "/etc/systemd/system/wisp.service"
    # The OTA installer: the path unit enabled, the root step's unit pointing at this binary.
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/wisp-update.path") == "/etc/systemd/system/wisp-update.path"
    # It runs from its own copy (OTA replaces /usr/local/bin/wisp, never this one) and reads no key file.
    update_unit = (root / "etc/systemd/system/wisp-update.service").read_text()
    assert ("ExecStart=/usr/local/lib/wisp/wisp-update apply-update --binary /usr/local/bin/wisp --state-dir /var/lib/wisp "
            "--update-dir /var/lib/wisp-update") in update_unit
    assert "device.key" not in update_unit.split("[Service]")[1]
    assert (root / "usr/local/lib/wisp/wisp-update").read_bytes() == binary.read_bytes()
    path_unit = (root / "etc/systemd/system/wisp-update.path").read_text()
    assert "PathExists=/var/lib/wisp/ota/staged.ready" in path_unit and "PathExists=/var/lib/wisp-update/journal" in path_unit
    # Root's board settings: root-owned, not writable by the service user.
    conf = root / "etc/wisp/board.conf"
    assert conf.stat().st_uid == 0 and conf.stat().st_mode & 0o777 == 0o644

    # The user fills in the key file; a second run changes nothing and keeps it.
    key.write_text("endpoint = wss://host:443\n")
    before = tree(root)
    r = run([str(ROOT / "scripts/install"), "--root", str(root), "--binary", str(binary)])
    assert r.returncode == 0, r.stderr
    assert "keeping the existing" in r.stdout
    assert tree(root) == before


@pytest.mark.parametrize("name", ["wisp.service", "wisp-update.service", "wisp-update.path"])
def test_unit_passes_systemd_analyze_verify(tmp_path, name):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    for other in ("wisp.service", "wisp-update.service", "wisp-update.path"):
        src = ROOT / "packaging" / (other + ".in")
        # verify checks that ExecStart exists and is executable: point it at this build.
        (tmp_path / other).write_text(unit_text(src))
    r = run(["systemd-analyze", "verify", str(tmp_path / name)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "", r.stderr


HARDENING = ["SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM", "ProtectKernelLogs=yes", "ProtectClock=yes",
             "ProtectHostname=yes", "RestrictSUIDSGID=yes", "RestrictNamespaces=yes", "LockPersonality=yes",
             "MemoryDenyWriteExecute=yes", "UMask=0077", "ProtectProc=invisible", "NoNewPrivileges=yes"]
# wisp.service's status file (wisp status): under /run/wisp, a tmpfs, readable by all.
RUNTIME = ["RuntimeDirectory=wisp", "RuntimeDirectoryMode=0755"]


def unit_text(src):
    """A unit template with this build for the binaries and the packaged directories."""
    return (src.read_text().replace("@BINDIR@", str(ROOT / ".build/debug")).replace("@LIBDIR@", str(ROOT / ".build/debug"))
            .replace("@STATEDIR@", "/var/lib/wisp").replace("/wisp-update apply-update", "/wisp apply-update"))


@pytest.mark.parametrize("name", ["wisp.service", "wisp-update.service"])
def test_unit_hardening_rates_ok_or_better(tmp_path, name):
    """systemd's own exposure score (0 safe … 10 unsafe): 4.1 for wisp.service before the
    hardening issue; the root step's unit is held to the same bar."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    text = (ROOT / f"packaging/{name}.in").read_text()
    for line in HARDENING + (["ProtectSystem=strict", "PrivateDevices=yes", "CapabilityBoundingSet=CAP_DAC_OVERRIDE"] if "update" in name else RUNTIME):
        assert line in text.splitlines(), line
    unit = tmp_path / name
    unit.write_text(unit_text(ROOT / f"packaging/{name}.in"))
    r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)])
    assert r.returncode == 0, r.stdout + r.stderr
    score = float(r.stdout.split(f"Overall exposure level for {name}: ")[1].split()[0])
    print(f"\nsystemd-analyze security {name}: {score}")
    assert score <= 2.0, r.stdout


@pytest.mark.parametrize("target", sorted(CROSS))
@pytest.mark.parametrize("linking", ["shared", "static"])
def test_debian_package(target, linking, tmp_path):
    """The .deb ships wisp-shared, linked against Debian's mbedTLS and depending on its
    packages (apt delivers TLS fixes); a static binary given by hand is packaged with a
    lintian override instead."""
    binary = ROOT / f".build-cross/{target}/" / ("wisp-shared" if linking == "shared" else "wisp")
    r = run([str(ROOT / "scripts/package"), target, str(binary)])
    assert r.returncode == 0, r.stderr
    deb = r.stdout.strip().splitlines()[-1]
    assert deb.endswith(f"wisp_0.1.0_{CROSS[target]}.deb")
    info = run(["dpkg-deb", "--info", deb]).stdout
    assert f"Architecture: {CROSS[target]}" in info and "postinst" in info
    needs = "libmbedtls14 (>= 2.28), libmbedx509-1 (>= 2.28), libmbedcrypto7 (>= 2.28)"
    assert (needs in info) == (linking == "shared"), info
    overrides = run(["dpkg-deb", "--contents", deb]).stdout
    assert ("lintian/overrides/wisp" in overrides) == (linking == "static")
    contents = run(["dpkg-deb", "--contents", deb]).stdout
    for path in ("./usr/bin/wisp", "./usr/lib/wisp/wisp-update", "./lib/systemd/system/wisp.service", "./lib/systemd/system/wisp-update.service",
                 "./lib/systemd/system/wisp-update.path", "./usr/share/wisp/device.key.template", "./usr/share/wisp/board.conf.template"):
        assert path in contents
    postinst = run(["dpkg-deb", "--ctrl-tarfile", deb], ).stdout  # noqa: F841 (text of a tar)
    extracted = tmp_path / "ctrl"
    subprocess.run(["dpkg-deb", "--control", deb, str(extracted)], check=True)
    script = (extracted / "postinst").read_text()
    assert "if [ ! -e /etc/wisp/device.key ]" in script, "postinst must never overwrite a key file"
    assert "install -m 0644 -o root -g root /usr/share/wisp/board.conf.template /etc/wisp/board.conf" in script
    assert "adduser wisp gpio" in script
    if shutil.which("lintian"):
        lint = run(["lintian", deb])
        errors = [l for l in lint.stdout.splitlines() if l.startswith("E:")]
        assert errors == [], lint.stdout
