"""Over-the-air upgrades against the stand-in platform (platform/run + platform/push ota).

A board here is a directory: BOARD/usr/bin/wisp (a copy of the shipping Embedded build),
the root step's own copy BOARD/usr/lib/wisp/wisp-update, its key file, its board settings
(BOARD/etc/wisp/board.conf naming the publisher key BOARD/etc/wisp/ota.pub), state_dir and
the root step's update dir. Two small emulations stand in for systemd, doing what the units
in packaging/ do: a supervisor restarts `wisp run` whenever it exits (wisp.service,
Restart=always), and a watcher runs `wisp-update apply-update` as soon as staged.ready, a
reboot request or root's journal exists (wisp-update.path → wisp-update.service);
apply-update restarts the service through a fake systemctl that stops the supervised process.
Everything runs as one user here; the boot test runs the same steps as root and wisp.

Packages are signed with a key pair made per module by `openssl` (scripts/ota-package).

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


def countered(src, dst, counter):
    """A copy of wisp `src` that carries OTA security counter `counter` (sys.c's marker)."""
    data = pathlib.Path(src).read_bytes()
    marker = b"wisp-ota-counter=0000000000"
    assert data.count(marker) == 1, "the counter marker is not in the binary once"
    pathlib.Path(dst).write_bytes(data.replace(marker, b"wisp-ota-counter=%010d" % counter))
    os.chmod(dst, 0o755)
    return pathlib.Path(dst)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("builds")
    base = d / "wisp-0.1.0"
    subprocess.run(["strip", "-o", str(base), str(BINARY)], check=True)
    keys = {}
    for name in ("publisher", "other"):
        private = d / f"{name}.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(private)], check=True)
        subprocess.run(["openssl", "ec", "-in", str(private), "-pubout", "-out", str(d / f"{name}.pub")], check=True, capture_output=True)
        keys[name] = private
    return dict(base=base, newer=versioned(base, d / "wisp-0.1.1", "0.1.1"), dir=d, keys=keys)


def signed(builds, payload, version, key="publisher", counter=0, module="wisp"):
    """`payload` as a package signed by `key` (scripts/ota-package)."""
    out = builds["dir"] / f"{pathlib.Path(payload).name}-{version}-{key}-{counter}-{module}.wota"
    r = subprocess.run([str(ROOT / "scripts/ota-package"), "--key", str(builds["keys"][key]), "--version", version,
                        "--counter", str(counter), "--module", module, str(payload), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


class Board:
    def __init__(self, root, platform, publisher, binary_path="usr/bin/wisp", confirm=30, extra=None, settings=None):
        self.root = pathlib.Path(root)
        self.binary = self.root / binary_path
        self.installer = self.root / "usr/lib/wisp/wisp-update"
        self.state = self.root / "var/lib/wisp"
        self.state.mkdir(parents=True, exist_ok=True)
        self.update = self.root / "var/lib/wisp-update"
        self.key = self.root / "device.key"
        values = dict(endpoint=platform["wss"].replace("127.0.0.1", "localhost"), product_key=PK, device_name=DN,
                      device_secret=SECRET, client_id="ota-board", ca_file=platform["ca_file"], telemetry_interval="2",
                      state_dir=str(self.state))
        values.update(extra or {})
        self.key.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        os.chmod(self.key, 0o600)
        # The board settings, root's on a board (here: the user's, like the binary).
        etc = self.root / "etc/wisp"
        etc.mkdir(parents=True, exist_ok=True)
        os.chmod(etc, 0o755)
        self.public_key = etc / "ota.pub"
        if publisher:
            shutil.copy(publisher, self.public_key)
            os.chmod(self.public_key, 0o644)
        self.board_conf = etc / "board.conf"
        conf = dict(ota_public_key=str(self.public_key), ota_confirm_seconds=str(confirm))
        conf.update(settings or {})
        self.board_conf.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        os.chmod(self.board_conf, 0o644)
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
                p = subprocess.Popen([str(self.binary), "run", "--config", str(self.key), "--board-config", str(self.board_conf), "--verbose"],
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
        """wisp-update.path: PathExists= staged.ready, a reboot request or root's journal → wisp-update.service."""
        ota = self.state / "ota"
        while not self.stopping.is_set():
            if (ota / "staged.ready").exists() or (self.update / "journal").exists() or (ota / "reboot").exists():
                self.applies.put(self.apply())
            time.sleep(0.2)

    def apply(self):
        """wisp-update.service's ExecStart, from the installer's own copy."""
        return subprocess.run([str(self.installer), "apply-update", "--board-config", str(self.board_conf), "--state-dir", str(self.state),
                               "--update-dir", str(self.update), "--binary", str(self.binary), "--systemctl", str(self.systemctl)],
                              capture_output=True, text=True, timeout=120)

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
        return subprocess.run([str(self.binary), "ota", "status", "--config", str(self.key), "--board-config", str(self.board_conf)],
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
def board(tmp_path, platform, builds):  # noqa: F811
    made = []

    def make(binary, root=None, publisher="publisher", **kw):
        b = Board(root or tmp_path / f"board{len(made)}", platform, publisher and builds["dir"] / f"{publisher}.pub", **kw)
        b.binary.parent.mkdir(parents=True, exist_ok=True)
        if not b.binary.exists():
            shutil.copy(binary, b.binary)
        b.installer.parent.mkdir(parents=True, exist_ok=True)
        if not b.installer.exists():
            shutil.copy(binary, b.installer)
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


def fake_wisp(directory, name, version, run, on_version=""):
    """A C program for this machine whose --version does `on_version` and names `version`,
    and whose `run` does `run`."""
    src = directory / f"{name}.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n'
                   'int main(int c, char **v) { if (c > 1 && !strcmp(v[1], "--version")) '
                   f'{{ {on_version} puts("wisp {version} ({name} test build)"); return 0; }} {run} }}\n')
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
    ota = push(signed(builds, builds["newer"], "0.1.1", counter=3), "0.1.1", "--cut-at", "40", "--rate", "200000")
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
    # Root's directory: 0700, the installed counter kept, the trial's files gone.
    assert b.update.stat().st_mode & 0o777 == 0o700
    assert "counter = 3" in (b.update / "installed").read_text()
    assert sorted(p.name for p in b.update.iterdir()) == ["installed"], list(b.update.iterdir())
    steps = [e["step"] for e in ota.of("progress")]
    assert steps == sorted(steps) and steps[-1] == 100 and all(s > 0 for s in steps), steps
    # Reported at most every 10 %: no two downloading steps closer than that.
    downloading = [s for s in steps if s not in (1, 100)]
    assert all(b2 - a >= 10 for a, b2 in zip(downloading, downloading[1:])), steps
    assert not any((b.state / "ota" / n).exists() for n in ("staged", "staged.ready", "candidate", "package.part")), \
        list((b.state / "ota").iterdir())
    status = b.status()
    assert "version: 0.1.1" in status and "last connected: version 0.1.1" in status and "security counter 3" in status, status
    assert (b.root / "systemctl.calls").read_text().splitlines()[0] == "--no-block restart wisp.service"
    # Telemetry went on while downloading: posts were sent between the push and the staging.
    log = b.log()
    start = log.index("OTA: upgrade 0.1.0 → 0.1.1")
    end = log.index("downloaded and its signature verified")
    assert log[start:end].count("acknowledged") >= 2, log[start:end][:3000]


def test_wrong_digest_is_refused_and_the_old_binary_keeps_running(builds, board, push):
    b = board(builds["base"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1", "--sign", "0" * 64)
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
    ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1")
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
        ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1")
        expect, words = -1, "ota_max_bytes"
    elif kind == "size-mismatch":
        ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1", "--size", "1000")
        expect, words = -2, "announced 1000"
    else:
        other = tmp_path / "wisp-arm64"
        arm = ROOT / ".build-cross/aarch64-linux-gnu/wisp"
        if not arm.exists():
            pytest.skip("no aarch64 cross build")
        shutil.copy(arm, other)
        ota = push(signed(builds, other, "0.1.1"), "0.1.1")
        expect, words = -3, "built for arm64"
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
    ota = push(signed(builds, mute, "0.1.2"), "0.1.2")
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
    ota = push(signed(builds, crash, "0.1.3"), "0.1.3")
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
    """scripts/package makes .deb files: a signed one pushed to a board set up by
    `scripts/install --root` (binary in /usr/local/bin, no dpkg database) has its
    usr/bin/wisp unpacked by the root step from its own verified copy and installed like a
    bare binary."""
    tree = tmp_path / "deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/bin").mkdir(parents=True)
    shutil.copy(builds["newer"], tree / "usr/bin/wisp")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    (tree / "DEBIAN/control").write_text(f"Package: wisp\nVersion: 0.1.1\nArchitecture: {arch}\nMaintainer: wisp <wisp@localhost>\n"
                                         "Description: wisp test package\n")
    deb = tmp_path / f"wisp_0.1.1_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)], check=True, capture_output=True)
    root = tmp_path / "board-root"
    root.mkdir()
    subprocess.run([str(ROOT / "scripts/install"), "--root", str(root), "--binary", str(builds["base"])], check=True, capture_output=True)
    assert (root / "usr/local/lib/wisp/wisp-update").exists() and (root / "etc/wisp/board.conf").exists()
    b = board(builds["base"], root=root, binary_path="usr/local/bin/wisp")
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(signed(builds, deb, "0.1.1"), "0.1.1")
    assert ota.wait(lambda e: e["event"] == "inform" and e["version"] == "0.1.1", 40), ota.events + [b.log()]
    assert b.applies.get(timeout=30).returncode == 0
    assert b.version() == "0.1.1"
    assert not (b.state / "ota" / "deb").exists(), "the unpacked .deb was left behind"
    assert sorted(p.name for p in b.update.iterdir()) == ["installed"], list(b.update.iterdir())


@pytest.mark.parametrize("allowed", [True, False])
def test_the_reboot_service_goes_through_the_root_step_only_when_the_board_settings_allow_it(builds, board, platform, allowed):  # noqa: F811
    """allow_reboot is root's (board.conf): in the key file it is ignored, with a warning."""
    import paho.mqtt.client as mqtt
    b = board(builds["base"], settings={"allow_reboot": "true" if allowed else "false"}, extra={"allow_reboot": "true"})
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    assert "allow_reboot is ignored in the key file" in b.log()
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
            assert replies[0]["code"] == 460 and "allow_reboot = false in the board settings" in replies[0]["message"]
            time.sleep(1)
            assert not calls.exists() and not (b.state / "ota" / "reboot").exists()
    finally:
        c.loop_stop()
        c.disconnect()


def test_the_root_step_refuses_a_reboot_request_the_board_settings_do_not_allow(builds, board):
    """The service user can write the request itself: root still asks board.conf."""
    b = board(builds["base"])
    (b.state / "ota").mkdir(exist_ok=True)
    (b.state / "ota" / "reboot").write_text("asked = 1\n")
    r = b.applies.get(timeout=10)
    assert r.returncode == 0 and "do not allow it" in r.stderr, r.stderr
    assert not (b.root / "systemctl.calls").exists()


def trial_journal(b, state, version="0.1.1"):
    (b.state / "ota").mkdir(mode=0o700, exist_ok=True)  # where the package was staged
    b.update.mkdir(mode=0o700, exist_ok=True)
    (b.update / "journal.tmp").write_text(f"state = {state}\nversion = {version}\ncounter = 0\nkind = elf\nfrom = 0.1.0\n")
    os.rename(b.update / "journal.tmp", b.update / "journal")  # the path unit fires on this


def test_a_power_cut_during_the_trial_is_resumed_from_roots_journal(builds, board):
    """The root step was cut off after writing its journal and before the rename (a power
    cut): BINARY is still the old one. At the next start the path unit sees the journal;
    apply-update puts the new binary in place, restarts wisp and confirms it."""
    b = board(builds["base"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    b.update.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(builds["newer"], b.update / "new")
    shutil.copy(b.binary, b.update / "previous")
    trial_journal(b, "trial")
    r = b.applies.get(timeout=40)
    assert r.returncode == 0 and "resuming the trial of version 0.1.1" in r.stderr and "upgrade complete" in r.stderr, r.stderr
    assert b.version() == "0.1.1"
    assert sorted(p.name for p in b.update.iterdir()) == ["installed"]


def test_a_power_cut_during_a_rollback_finishes_the_rollback(builds, board, push):
    """Cut while rolling back (journal `rolling-back`, BINARY still the failed version): the
    next start restores the previous binary instead of trying the bad version again."""
    b = board(builds["newer"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    b.update.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(builds["base"], b.update / "previous")
    shutil.copy(builds["newer"], b.update / "new")
    trial_journal(b, "rolling-back")
    r = b.applies.get(timeout=40)
    assert r.returncode == 1 and "finishing the rollback of version 0.1.1" in r.stderr, r.stderr
    assert b.version() == "0.1.0"
    assert not (b.update / "journal").exists()
    assert wait_for(lambda: "the last upgrade (0.1.1) failed" in b.log(), 20), b.log()


@pytest.mark.parametrize("kind", ["unsigned", "other-key"])
def test_unsigned_and_foreign_packages_are_refused_before_anything_runs(builds, board, push, kind, tmp_path):
    """Neither is run, not even for --version: a fake that would leave a mark proves it."""
    marker = tmp_path / "ran"
    payload = fake_wisp(tmp_path, "marker", "0.1.4", "return 0;", on_version=f'fclose(fopen("{marker}", "w"));')
    b = board(builds["base"])
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    package = payload if kind == "unsigned" else signed(builds, payload, "0.1.4", key="other")
    ota = push(package, "0.1.4")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    words = "unsigned" if kind == "unsigned" else "signature"
    assert failed and failed["step"] == -3 and words in failed["desc"], ota.events
    time.sleep(1)
    assert not marker.exists(), "the package ran before its signature was checked"
    assert b.applies.empty() and b.version() == "0.1.0"


def test_without_a_publisher_key_nothing_is_downloaded(builds, board, push):
    b = board(builds["base"], publisher=None)
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -1 and "no publisher key at" in failed["desc"] and "ota_public_key" in failed["desc"], ota.events
    time.sleep(1)
    assert not ota.of("request") and b.applies.empty()


def test_board_settings_the_service_user_could_change_are_refused(builds, board, push):
    b = board(builds["base"])
    os.chmod(b.board_conf, 0o666)
    b.stop()
    b.stopping.clear()
    b.threads = []
    b.start()
    assert wait_for(lambda: "board settings refused" in b.log(), 15), b.log()
    ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -1 and "writable by group or others" in failed["desc"], ota.events
    r = b.apply()
    assert r.returncode == 78 and "board settings refused" in r.stderr, r.stderr


@pytest.mark.parametrize("floor", ["recorded", "carried"])
def test_a_counter_below_the_installed_one_is_refused(builds, board, push, floor, tmp_path):
    """The floor is what the root step recorded, or what the running build carries (a
    board flashed or installed from the .deb has no record)."""
    if floor == "recorded":
        b = board(builds["base"])
        (b.state / "ota").mkdir(exist_ok=True)
        (b.state / "ota" / "installed").write_text("version = 0.1.0\ncounter = 5\n")
    else:
        b = board(countered(builds["base"], tmp_path / "wisp-counter-5", 5))
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(signed(builds, builds["newer"], "0.1.1", counter=4), "0.1.1")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -3 and "below the installed 5" in failed["desc"], ota.events


def test_ota_package_signs_with_the_counter_the_payload_carries(builds, tmp_path):
    payload = countered(builds["newer"], tmp_path / "wisp-7", 7)
    out = tmp_path / "p.wota"
    r = subprocess.run([str(ROOT / "scripts/ota-package"), "--key", str(builds["keys"]["publisher"]), "--version", "0.1.1",
                        str(payload), str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and b"\ncounter = 7\n" in out.read_bytes()[:1024], r.stderr
    r = subprocess.run([str(ROOT / "scripts/ota-package"), "--key", str(builds["keys"]["publisher"]), "--version", "0.1.1",
                        "--counter", "6", str(payload), str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and "below the counter" in r.stderr, r.stderr


def test_the_key_files_module_must_be_the_board_settings_one(builds, board, push):
    b = board(builds["base"], settings={"ota_module": "firmware"})
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = push(signed(builds, builds["newer"], "0.1.1"), "0.1.1")
    failed = ota.wait(lambda e: e["event"] == "progress" and e["step"] < 0, 30)
    assert failed and failed["step"] == -1 and "board settings' firmware" in failed["desc"], ota.events
    assert not ota.of("request")


@pytest.mark.parametrize("plant", ["unsigned", "symlink", "hardlink", "low-counter", "carried-counter", "other-module", "old-journal", "cue-only"])
def test_the_root_step_installs_nothing_the_service_user_planted(builds, board, plant, tmp_path):
    """What the service user can write in state_dir/ota (a binary with matching records, a
    link, the old journal format) makes root install nothing, and it says why."""
    b = board(countered(builds["base"], tmp_path / "wisp-counter-3", 3) if plant == "carried-counter" else builds["base"])
    # Online first: at a later CONNACK wisp would report the root step's result and remove it.
    assert wait_for(lambda: "online:" in b.log(), 15), b.log()
    ota = b.state / "ota"
    ota.mkdir(exist_ok=True)
    if plant == "unsigned":
        shutil.copy(builds["newer"], ota / "staged")
        sha = hashlib.sha256(builds["newer"].read_bytes()).hexdigest()
        (ota / "staged.ready").write_text(f"version = 0.1.1\nsha256 = {sha}\nfrom = 0.1.0\n")
        why = "unsigned"
    elif plant == "symlink":
        target = tmp_path / "elsewhere"
        shutil.copy(signed(builds, builds["newer"], "0.1.1"), target)
        os.symlink(target, ota / "staged")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "cannot take the staged package"
    elif plant == "hardlink":
        target = tmp_path / "elsewhere"
        shutil.copy(signed(builds, builds["newer"], "0.1.1"), target)
        os.link(target, ota / "staged")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "one link"
    elif plant == "low-counter":
        b.update.mkdir(mode=0o700, exist_ok=True)
        (b.update / "installed").write_text("version = 0.1.0\ncounter = 9\n")
        shutil.copy(signed(builds, builds["newer"], "0.1.1", counter=2), ota / "staged")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "below the installed 9"
    elif plant == "carried-counter":
        shutil.copy(signed(builds, builds["newer"], "0.1.1", counter=2), ota / "staged")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "below the installed 3"
    elif plant == "other-module":
        shutil.copy(signed(builds, builds["newer"], "0.1.1", module="modem"), ota / "staged")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "signed for module modem"
    elif plant == "cue-only":
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        r = b.applies.get(timeout=20)
        assert r.returncode == 0 and "without a package; removed" in r.stderr, r.stderr
        assert not (ota / "staged.ready").exists()
        time.sleep(1)
        assert b.applies.empty(), "the path unit would start the root step again and again"
        return
    else:
        (ota / "staged").write_bytes(builds["newer"].read_bytes())
        (ota / "applying").write_text("version = 0.1.1\nsha256 = " + "0" * 64 + "\n")
        (ota / "staged.ready").write_text("version = 0.1.1\n")
        why = "unsigned"
    r = b.applies.get(timeout=20)
    assert r.returncode == 1 and why in r.stderr and "nothing installed" in r.stderr, r.stderr
    assert b.version() == "0.1.0"
    assert not (ota / "staged").exists() and not (ota / "staged.ready").exists()
    assert "step = -" in (ota / "result").read_text()
    assert not (b.root / "systemctl.calls").exists()
    if plant in ("symlink", "hardlink"):
        assert (tmp_path / "elsewhere").exists(), "root followed the link"
