"""Over-the-air upgrades against the stand-in platform (platform/run + platform/push ota).

A board here is a directory: BOARD/usr/bin/wisp (a copy of the shipping Embedded build),
its key file and state_dir. Two small emulations stand in for systemd, doing what the units
in packaging/ do: a supervisor restarts `wisp run` whenever it exits (wisp.service,
Restart=always), and a watcher runs `wisp apply-update` as soon as staged.ready or the
journal exists (wisp-update.path → wisp-update.service); apply-update restarts the service
through a fake systemctl that stops the supervised process.

The "newer" wisp is the same build with its version marker rewritten (sys.c keeps
`wisp-version=0.1.0` once in the binary): a binary that really reports another version.
"""
import hashlib
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from test_platform import DN, PK, SECRET, platform  # noqa: F401  (the module's platform fixture)

BINARY = ROOT / ".build-embedded/release/wisp"
pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="no Embedded build (WISP_EMBEDDED=1 swift build -c release)")


def versioned(src, dst, version):
    """A copy of wisp `src` that reports `version` (same length as the original's)."""
    data = pathlib.Path(src).read_bytes()
    marker = b"wisp-version=0.1.0"
    assert data.count(marker) == 1, "the version marker is not in the binary once"
    new = b"wisp-version=" + version.encode()
    assert len(new) == len(marker)
    pathlib.Path(dst).write_bytes(data.replace(marker, new))
    os.chmod(dst, 0o755)
    out = subprocess.run([str(dst), "--version"], capture_output=True, text=True).stdout
    assert out.startswith(f"wisp {version} "), out
    return pathlib.Path(dst)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("builds")
    base = d / "wisp-0.1.0"
    subprocess.run(["strip", "-o", str(base), str(BINARY)], check=True)
    return dict(base=base, newer=versioned(base, d / "wisp-0.1.1", "0.1.1"), dir=d)


class Board:
    def __init__(self, root, platform, binary_path="usr/bin/wisp", confirm=30, extra=None):
        self.root = pathlib.Path(root)
        self.binary = self.root / binary_path
        self.state = self.root / "var/lib/wisp"
        self.state.mkdir(parents=True, exist_ok=True)
        self.key = self.root / "device.key"
        values = dict(endpoint=platform["wss"].replace("127.0.0.1", "localhost"), product_key=PK, device_name=DN,
                      device_secret=SECRET, client_id="ota-board", ca_file=platform["ca_file"], telemetry_interval="2",
                      state_dir=str(self.state), ota_confirm_seconds=str(confirm))
        values.update(extra or {})
        self.key.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        os.chmod(self.key, 0o600)
        self.log_path = self.root / "wisp.log"
        self.pidfile = self.root / "wisp.pid"
        self.systemctl = self.root / "systemctl"
        # restart: stop the supervised wisp (the supervisor starts it again, uncounted);
        # show --property=NRestarts: the restarts after wisp exited by itself.
        self.restarts = self.root / "restarts"
        self.restarts.write_text("0")
        self.systemctl.write_text(f"#!/bin/sh\necho \"$@\" >> {self.root}/systemctl.calls\n"
                                  f"if [ \"$1\" = show ]; then echo NRestarts=$(cat {self.restarts}); exit 0; fi\n"
                                  f"touch {self.root}/restart-requested\nkill -TERM $(cat {self.pidfile})\n")
        os.chmod(self.systemctl, 0o755)
        self.applies = queue.Queue()
        self.stopping = threading.Event()
        self.threads = []

    def start(self):
        for target in (self.supervise, self.watch):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self.threads.append(t)

    def supervise(self):
        """wisp.service: Restart=always (no RestartSec pause worth waiting for here)."""
        with open(self.log_path, "a") as log:
            while not self.stopping.is_set():
                p = subprocess.Popen([str(self.binary), "run", "--config", str(self.key), "--verbose"],
                                     stdout=subprocess.DEVNULL, stderr=log)
                self.pidfile.write_text(str(p.pid))
                while p.poll() is None:
                    if self.stopping.wait(0.1):
                        p.terminate()
                        p.wait(10)
                log.write(f"== supervisor: wisp exited with {p.returncode}\n")
                log.flush()
                requested = self.root / "restart-requested"
                if requested.exists():
                    requested.unlink()
                elif not self.stopping.is_set():
                    self.restarts.write_text(str(int(self.restarts.read_text()) + 1))
                time.sleep(0.3)

    def watch(self):
        """wisp-update.path: PathExists= staged.ready, the journal or a reboot request → wisp-update.service."""
        ota = self.state / "ota"
        while not self.stopping.is_set():
            if (ota / "staged.ready").exists() or (ota / "applying").exists() or (ota / "reboot").exists():
                r = subprocess.run([str(self.binary), "apply-update", "--config", str(self.key),
                                    "--systemctl", str(self.systemctl)], capture_output=True, text=True, timeout=120)
                self.applies.put(r)
            time.sleep(0.2)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)
        assert SECRET not in self.log(), "the device secret reached the log"

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def version(self):
        return subprocess.run([str(self.binary), "--version"], capture_output=True, text=True).stdout.split()[1]

    def status(self):
        return subprocess.run([str(self.binary), "ota", "status", "--config", str(self.key)],
                              capture_output=True, text=True).stdout


class PlatformOTA:
    """platform/push ota, its JSON lines collected."""

    def __init__(self, platform, file, version, *args):
        self.proc = subprocess.Popen([str(ROOT / "platform/push"), "ota", "--platform-dir", str(pathlib.Path(platform["ca_file"]).parent),
                                      "--tcp-port", str(platform["ports"]["tcp"]), "--product-key", PK, "--device", DN,
                                      "--file", str(file), "--version", version, *args],
                                     stdout=subprocess.PIPE, text=True)
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    def wait(self, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [e for e in self.events if predicate(e)]
            if found:
                return found[0]
            time.sleep(0.1)
        return None

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def board(tmp_path, platform):  # noqa: F811
    made = []

    def make(binary, root=None, **kw):
        b = Board(root or tmp_path / f"board{len(made)}", platform, **kw)
        b.binary.parent.mkdir(parents=True, exist_ok=True)
        if not b.binary.exists():
            shutil.copy(binary, b.binary)
        made.append(b)
        b.start()
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def push(platform):  # noqa: F811
    pushed = []

    def make(file, version, *args):
        p = PlatformOTA(platform, file, version, *args)
        pushed.append(p)
        return p
    yield make
    for p in pushed:
        p.close()


def fake_wisp(directory, name, version, run):
    """A C program for this machine whose --version names `version` and whose `run` does `run`."""
    src = directory / f"{name}.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n'
                   'int main(int c, char **v) { if (c > 1 && !strcmp(v[1], "--version")) '
                   f'{{ puts("wisp {version} ({name} test build)"); return 0; }} {run} }}\n')
    binary = directory / f"wisp-{name}"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(src)], check=True)
    return binary


def wait_for(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_full_upgrade_resumes_a_cut_download_and_ends_with_the_new_version_reported(builds, board, push):
    b = board(builds["base"], extra={"telemetry_interval": "1"})
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(builds["newer"], "0.1.1", "--cut-at", "40", "--rate", "200000")
    # The link is cut at 40 %: wisp asks for the rest with Range and gets a 206.
    assert ota.wait(lambda e: e["event"] == "cut", 20), ota.events
    resumed = ota.wait(lambda e: e["event"] == "request" and e["range"], 20)
    assert resumed and resumed["status"] == 206 and resumed["range"] == f"bytes={ota.of('cut')[0]['at']}-", ota.events
    assert ota.wait(lambda e: e["event"] == "progress" and e["step"] == 100, 30), ota.events + [b.log()]
    # The root step installs it, restarts wisp, and the new version reports itself.
    assert ota.wait(lambda e: e["event"] == "inform" and e["version"] == "0.1.1", 30), b.log()
    r = b.applies.get(timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "upgrade complete" in r.stderr
    assert b.version() == "0.1.1"
    previous = b.binary.with_name("wisp.previous")
    assert subprocess.run([str(previous), "--version"], capture_output=True, text=True).stdout.startswith("wisp 0.1.0 ")
    steps = [e["step"] for e in ota.of("progress")]
    assert steps == sorted(steps) and steps[-1] == 100 and all(s > 0 for s in steps), steps
    # Reported at most every 10 %: no two downloading steps closer than that.
    downloading = [s for s in steps if s not in (1, 100)]
    assert all(b2 - a >= 10 for a, b2 in zip(downloading, downloading[1:])), steps
    assert not any((b.state / "ota" / n).exists() for n in ("staged", "staged.ready", "applying", "package.part")), \
        list((b.state / "ota").iterdir())
    status = b.status()
    assert "version: 0.1.1" in status and "last connected: version 0.1.1" in status, status
    assert (b.root / "systemctl.calls").read_text().splitlines()[0] == "--no-block restart wisp.service"
    # Telemetry went on while downloading: posts were sent between the push and the staging.
    log = b.log()
    start = log.index("OTA: upgrade 0.1.0 → 0.1.1")
    end = log.index("downloaded and verified")
    assert log[start:end].count("acknowledged") >= 2, log[start:end][:3000]


def test_wrong_digest_is_refused_and_the_old_binary_keeps_running(builds, board, push):
    b = board(builds["base"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(builds["newer"], "0.1.1", "--sign", "0" * 64)
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -3 and "sha256" in failed["desc"], ota.events
    assert "0.1.1" in (b.state / "ota" / "failed").read_text(), "the failed version is remembered"
    time.sleep(1)
    assert b.applies.empty()
    assert b.version() == "0.1.0"
    assert not any((b.state / "ota" / n).exists() for n in ("staged", "staged.ready", "package.part", "package.want"))
    assert "upgrade failed" in b.log()
    assert "== supervisor: wisp exited" not in b.log(), "wisp restarted"


def test_an_offer_over_ws_is_refused_and_nothing_is_downloaded(builds, board, push, platform):  # noqa: F811
    """Anyone on the path of a ws:// link can write an upgrade message: the offer points at a
    live HTTPS server with a matching digest, and that server never gets a request."""
    b = board(builds["base"], extra={"endpoint": platform["ws"]})
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(builds["newer"], "0.1.1")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -1 and "allow_plaintext_control" in failed["desc"], ota.events
    time.sleep(2)
    assert not ota.of("request"), "the package server got a request over a ws:// link"
    assert b.version() == "0.1.0" and b.applies.empty()
    assert not any((b.state / "ota" / n).exists() for n in ("package.part", "package.want", "staged", "staged.ready"))


@pytest.mark.parametrize("kind", ["oversize", "size-mismatch", "other-arch"])
def test_bad_packages_are_refused_before_anything_is_installed(builds, board, push, kind, tmp_path):
    extra = {"ota_max_bytes": "1024"} if kind == "oversize" else {}
    b = board(builds["base"], extra=extra)
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    if kind == "oversize":
        ota = push(builds["newer"], "0.1.1")
        expect, words = -1, "ota_max_bytes"
    elif kind == "size-mismatch":
        ota = push(builds["newer"], "0.1.1", "--size", "1000")
        expect, words = -2, "announced 1000"
    else:
        other = tmp_path / "wisp-arm64"
        arm = ROOT / ".build-cross/aarch64-linux-gnu/wisp"
        if not arm.exists():
            pytest.skip("no aarch64 cross build")
        shutil.copy(arm, other)
        ota = push(other, "0.1.1")
        expect, words = -3, "aarch64"
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == expect and words in failed["desc"], ota.events
    assert b.version() == "0.1.0" and b.applies.empty()


def test_a_new_binary_that_never_connects_is_rolled_back(builds, board, push, tmp_path):
    """The new binary passes every check (an ELF for this machine, --version names the
    version) but never reaches CONNACK: apply-update restores the previous binary after
    ota_confirm_seconds, and the old wisp reports progress -1 saying why."""
    mute = fake_wisp(tmp_path, "mute", "0.1.2", "for (;;) pause();")
    b = board(builds["base"], confirm=5)
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(mute, "0.1.2")
    assert ota.wait(lambda e: e["event"] == "progress" and e["step"] == 100, 30), ota.events
    r = b.applies.get(timeout=40)
    assert r.returncode == 1 and "did not reach the platform within 5 s" in r.stderr, r.stderr
    assert b.version() == "0.1.0"
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] == -1, 30)
    assert failed and "0.1.2 did not reach the platform" in failed["desc"] and "rolled back to 0.1.0" in failed["desc"], ota.events
    assert ota.wait(lambda e: e["event"] == "inform" and e["version"] == "0.1.0", 5)
    assert not (b.state / "ota" / "result").exists(), "the result was reported and removed"
    assert ota.wait(lambda e: e["event"] == "progress" and "already failed on this board" in (e["desc"] or ""), 15), ota.events
    assert b.applies.empty(), "apply-update ran again"


def test_a_new_binary_that_keeps_exiting_is_rolled_back_without_waiting_out_the_window(builds, board, push, tmp_path):
    crash = fake_wisp(tmp_path, "crash", "0.1.3", "return 70;")
    b = board(builds["base"], confirm=120)
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(crash, "0.1.3")
    started = time.time()
    try:
        r = b.applies.get(timeout=60)
    except queue.Empty:
        raise AssertionError(f"apply-update did not end; restarts={b.restarts.read_text()} calls="
                             f"{(b.root / 'systemctl.calls').read_text() if (b.root / 'systemctl.calls').exists() else None}\n{b.log()[-3000:]}")
    assert time.time() - started < 40, "waited out the confirmation window"
    # Counted once a second: at least three restarts (systemd's NRestarts) since the install.
    assert r.returncode == 1 and re.search(r"0\.1\.3 exited [3-9] times without reaching the platform", r.stderr), r.stderr
    assert b.version() == "0.1.0"
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] == -1, 30)
    assert failed and re.search(r"exited [3-9] times", failed["desc"]), ota.events
    # The platform offers the same upgrade again at the old wisp's connect: it is not retried.
    assert ota.wait(lambda e: e["event"] == "progress" and "already failed on this board" in (e["desc"] or ""), 15), ota.events
    time.sleep(1)
    assert b.applies.empty() and b.version() == "0.1.0"


def test_a_deb_package_upgrades_a_board_installed_with_scripts_install(builds, board, push, tmp_path):
    """scripts/package makes .deb files: one pushed to a board set up by `scripts/install
    --root` (binary in /usr/local/bin, no dpkg database) has its usr/bin/wisp unpacked,
    verified and installed like a bare binary."""
    tree = tmp_path / "deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/bin").mkdir(parents=True)
    shutil.copy(builds["newer"], tree / "usr/bin/wisp")
    (tree / "DEBIAN/control").write_text("Package: wisp\nVersion: 0.1.1\nArchitecture: amd64\nMaintainer: wisp <wisp@localhost>\n"
                                         "Description: wisp test package\n")
    deb = tmp_path / "wisp_0.1.1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)], check=True, capture_output=True)
    root = tmp_path / "board-root"
    root.mkdir()
    subprocess.run([str(ROOT / "scripts/install"), "--root", str(root), "--binary", str(builds["base"])], check=True, capture_output=True)
    b = board(builds["base"], root=root, binary_path="usr/local/bin/wisp")
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(deb, "0.1.1")
    assert ota.wait(lambda e: e["event"] == "inform" and e["version"] == "0.1.1", 40), ota.events + [b.log()]
    assert b.applies.get(timeout=30).returncode == 0
    assert b.version() == "0.1.1"
    assert (root / "usr/local/bin/wisp.previous").exists()
    assert not (b.state / "ota" / "deb").exists(), "the unpacked .deb was left behind"


@pytest.mark.parametrize("allowed", [True, False])
def test_the_reboot_service_goes_through_the_root_step_only_when_allowed(builds, board, platform, allowed):  # noqa: F811
    import paho.mqtt.client as mqtt
    b = board(builds["base"], extra={"allow_reboot": "true" if allowed else "false"})
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    replies = []
    c = mqtt.Client(client_id=f"console-reboot-{allowed}")
    c.on_message = lambda cl, u, m: replies.append(json.loads(m.payload))
    c.connect("127.0.0.1", platform["ports"]["tcp"])
    c.subscribe(f"/sys/{PK}/{DN}/thing/service/reboot_reply", qos=1)
    c.loop_start()
    try:
        time.sleep(0.3)
        c.publish(f"/sys/{PK}/{DN}/thing/service/reboot", json.dumps({"id": "31", "params": {}, "method": "thing.service.reboot"}), qos=1)
        assert wait_for(lambda: replies, 10), b.log()
        calls = b.root / "systemctl.calls"
        if allowed:
            assert replies[0]["code"] == 200 and replies[0]["id"] == "31"
            assert wait_for(lambda: calls.exists() and "--no-block reboot" in calls.read_text(), 10), b.log()
            assert b.applies.get(timeout=5).returncode == 0
            assert not (b.state / "ota" / "reboot").exists()
        else:
            assert replies[0]["code"] == 460 and "allow_reboot = false" in replies[0]["message"]
            time.sleep(1)
            assert not calls.exists() and not (b.state / "ota" / "reboot").exists()
    finally:
        c.loop_stop()
        c.disconnect()


def test_a_power_cut_during_the_install_is_resumed_from_the_journal(builds, board, push):
    """The root step was cut off after writing its journal and before the rename (a power
    cut): BINARY is still the old one. At the next start the path unit sees the journal;
    apply-update puts the new binary in place, restarts wisp and confirms it."""
    b = board(builds["base"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = b.state / "ota"
    ota.mkdir(exist_ok=True)
    new = builds["newer"].read_bytes()
    (ota / "staged").write_bytes(new)
    os.chmod(ota / "staged", 0o755)
    shutil.copy(b.binary, b.binary.with_name("wisp.previous"))
    journal = (f"version = 0.1.1\nsha256 = {hashlib.sha256(new).hexdigest()}\nfrom = 0.1.0\n"
               f"previous = {b.binary.with_name('wisp.previous')}\n")
    (ota / "applying.tmp").write_text(journal)
    os.rename(ota / "applying.tmp", ota / "applying")  # the path unit fires on this
    r = b.applies.get(timeout=40)
    assert r.returncode == 0 and "resuming the trial of version 0.1.1" in r.stderr and "upgrade complete" in r.stderr, r.stderr
    assert b.version() == "0.1.1"
    assert not (ota / "applying").exists() and not (ota / "staged").exists()
