"""Remote access (issue 28): a stock `ssh` reaches the board's sshd through wisp's secure
tunnel. The stand-in platform (platform/run) and its console side (platform/tunnel, which
checks every frame wisp sends) run on 127.0.0.1, Debian's sshd on a loopback port with a
test key; wisp runs as a platform device whose board settings allow remote access."""
import hashlib
import os
import queue
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT, free_port
from test_platform import DN, PK, SECRET
from test_tunnel_platform import platform  # noqa: F401 (the stand-in platform, one per module)

BINARY = ROOT / ".build-embedded/release/wisp"
SSHD = "/usr/sbin/sshd"
pytestmark = [pytest.mark.skipif(not BINARY.exists(), reason="no Embedded build"),
              pytest.mark.skipif(not os.path.exists(SSHD), reason="no sshd (scripts/setup installs openssh-server)")]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """Debian's sshd on 127.0.0.1, a fresh host key, one user key allowed (root's)."""
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        if subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True).stdout.count("LISTEN"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("sshd did not start: " + (d / "sshd.log").read_text())
    yield dict(port=port, key=d / "user", dir=d)
    proc.terminate()
    proc.wait(10)


class Console:
    """platform/tunnel: its event lines, its commands, its services' ports."""

    def __init__(self, platform, services=()):
        args = [str(ROOT / "platform/tunnel"), "--dir", str(platform["dir"]), "--tcp-port", str(platform["ports"]["tcp"]),
                "--product-key", PK, "--device", DN, "--service", "_SSH=0"]
        for s in services:
            args += ["--service", s + "=0"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines, self.events = [], queue.Queue()
        self.ports = {}
        while True:
            line = self.proc.stdout.readline()
            assert line, "platform/tunnel ended before it was ready: " + "".join(self.lines)
            self.lines.append(line)
            if line.startswith("service "):
                name, _, where = line.split()[1].partition("=")
                self.ports[name] = int(where.rsplit(":", 1)[1])
            if line.strip() == "ready":
                break
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def wait(self, text, timeout=20, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.text().count(text) >= count:
                return True
            time.sleep(0.05)
        return False

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        assert "protocol error:" not in self.text(), self.text()


class Device:
    """wisp run as the platform device, with root's board settings."""

    def __init__(self, tmp_path, platform, board, **extra):
        values = dict(endpoint=platform["wss"], product_key=PK, device_name=DN, device_secret=SECRET, client_id="wisp-tunnel",
                      keepalive="30", telemetry_interval="1", ca_file=platform["ca_file"])
        values.update(extra)
        key = tmp_path / "device.key"
        key.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        os.chmod(key, 0o600)
        conf = tmp_path / "board.conf"
        conf.write_text(board)
        os.chmod(conf, 0o644)
        self.log_path = tmp_path / "wisp.log"
        self.proc = subprocess.Popen([str(BINARY), "run", "--config", str(key), "--board-config", str(conf), "--verbose"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        assert SECRET not in self.log()


@pytest.fixture
def board(tmp_path, platform, sshd):
    """A console with a tunnel to the device, and the device; both stopped after the test."""
    made = []

    def start(services=(), board_lines=None, **extra):
        console = Console(platform, services)
        lines = board_lines if board_lines is not None else f"remote_access = true\ntunnel_hosts = 127.0.0.1\ntunnel_service._SSH = 127.0.0.1:{sshd['port']}\n"
        device = Device(tmp_path, platform, lines, **extra)
        made.append((console, device))
        return console, device
    yield start
    for console, device in made:
        device.stop()
        console.close()


def ssh(sshd, port, *command, timeout=60):
    return subprocess.run(["ssh", "-p", str(port), "-i", str(sshd["key"]), "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                           "root@127.0.0.1", *command], capture_output=True, text=True, timeout=timeout)


def test_a_command_runs_through_the_tunnel_and_the_token_never_shows(board, sshd):
    console, device = board()
    assert console.wait("device connected"), console.text() + device.log()
    r = ssh(sshd, console.ports["_SSH"], "echo", "hello from $(hostname)")
    assert r.returncode == 0 and r.stdout.startswith("hello from "), r.stderr + console.text() + device.log()
    assert console.wait("session s1 accepted") and console.wait("session s1 ", count=3)
    assert device.wait("remote access: session s1 (_SSH) to 127.0.0.1:")
    assert "tunnel-access-token" not in device.log() and "token for" in device.log()


def test_ten_megabytes_go_up_and_down_with_scp_while_telemetry_goes_on(board, sshd, platform, tmp_path):
    console, device = board()
    assert console.wait("device connected"), console.text() + device.log()
    posts = []
    observer = mqtt.Client(client_id=f"observer-{time.time()}")
    observer.on_connect = lambda c, u, f, rc: c.subscribe(f"/sys/{PK}/{DN}/thing/event/property/post", qos=0)
    observer.on_message = lambda c, u, m: posts.append(time.time())
    observer.connect_async("127.0.0.1", platform["ports"]["tcp"])
    observer.loop_start()
    try:
        data = os.urandom(10 * 1024 * 1024)
        src = tmp_path / "ten.bin"
        src.write_bytes(data)
        remote = tmp_path / "copied.bin"
        base = ["scp", "-q", "-P", str(console.ports["_SSH"]), "-i", str(sshd["key"]), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
        digest = hashlib.sha256(data).hexdigest()
        started, rounds = time.time(), 0
        # Copies up and down, again until 8 s have passed: the window telemetry is watched in.
        while rounds == 0 or time.time() - started < 8:
            up = subprocess.run([*base, str(src), f"root@127.0.0.1:{remote}"], capture_output=True, text=True, timeout=180)
            assert up.returncode == 0, up.stderr + console.text()[-2000:] + device.log()[-2000:]
            down = subprocess.run([*base, f"root@127.0.0.1:{remote}", str(tmp_path / "back.bin")], capture_output=True, text=True, timeout=180)
            assert down.returncode == 0, down.stderr + device.log()[-2000:]
            assert hashlib.sha256(remote.read_bytes()).hexdigest() == digest, "the copy up differs"
            assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest, "the copy down differs"
            remote.unlink()
            rounds += 1
        took = time.time() - started
        during = [t for t in posts if started <= t <= started + took]
        # telemetry_interval = 1: about a post a second goes on through the tunnel's traffic.
        assert len(during) >= int(took * 0.6), f"{len(during)} posts in {took:.1f} s"
        print(f"scp: {rounds} x 2 x 10 MB through the tunnel in {took:.1f} s, {len(during)} posts meanwhile")
    finally:
        observer.loop_stop()
        observer.disconnect()


def test_two_sessions_at_once(board, sshd):
    console, device = board()
    assert console.wait("device connected"), console.text() + device.log()
    started = time.time()
    results = [None, None]

    def one(i):
        results[i] = ssh(sshd, console.ports["_SSH"], f"sleep 3; echo session-{i}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.time() - started
    assert [r.stdout.strip() for r in results] == ["session-0", "session-1"], [r.stderr for r in results]
    assert took < 5.9, f"the two 3 s sessions took {took:.1f} s: not at once"
    assert console.wait("session s2 accepted")


def test_closing_the_tunnel_from_the_console_ends_its_sessions(board, sshd):
    console, device = board()
    assert console.wait("device connected"), console.text() + device.log()
    held = subprocess.Popen(["ssh", "-p", str(console.ports["_SSH"]), "-i", str(sshd["key"]), "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                             "root@127.0.0.1", "echo up; sleep 60"], stdout=subprocess.PIPE, text=True)
    assert held.stdout.readline().strip() == "up"
    console.command("close maintenance over")
    held.wait(15)
    assert device.wait("remote access: the console closed tunnel"), device.log()
    assert device.wait("ended: the console closed the tunnel"), device.log()
    time.sleep(2)
    assert console.text().count("device connected") == 1, "no reconnect to a closed tunnel"


def test_an_expired_token_is_asked_for_again_and_the_tunnel_comes_back(board, sshd):
    console, device = board()
    assert console.wait("device connected"), console.text() + device.log()
    console.command("expire")
    assert device.wait("asking the platform for a new token"), device.log()
    assert console.wait("device connected", count=2), console.text() + device.log()
    assert "device refused" not in console.text(), "the old token was tried again"
    r = ssh(sshd, console.ports["_SSH"], "echo", "back")
    assert r.stdout.strip() == "back", r.stderr + device.log()


def test_a_service_type_the_board_does_not_declare_is_refused(board, sshd):
    console, device = board(services=("VNC",))
    assert console.wait("device connected"), console.text() + device.log()
    import socket
    with socket.create_connection(("127.0.0.1", console.ports["VNC"]), timeout=10) as s:
        s.settimeout(15)
        assert s.recv(16) == b"", "the console's socket is closed"
    assert console.wait("refused code=1"), console.text()
    assert device.wait("service type VNC is not declared in the board settings"), device.log()


@pytest.mark.parametrize("why", ["off", "ws", "tls_insecure", "host"])
def test_nothing_is_opened_without_remote_access_or_over_a_link_anyone_can_write(board, sshd, platform, why):
    if why == "off":
        console, device = board(board_lines="allow_reboot = false\n")
    elif why == "host":  # the default tunnel_hosts: the platform's domains, not this stand-in's 127.0.0.1
        console, device = board(board_lines=f"remote_access = true\ntunnel_service._SSH = 127.0.0.1:{sshd['port']}\n")
    elif why == "ws":
        console, device = board(endpoint=platform["ws"])
    else:
        console, device = board(tls_insecure="true")
    assert device.wait("online:", 20), device.log()
    time.sleep(3)
    assert "device connected" not in console.text(), console.text()
    if why != "host":
        assert "proxy request" not in console.text(), "subscribed and asked though it may not take tunnels: " + console.text()
    r = ssh(sshd, console.ports["_SSH"], "echo", "never", timeout=30)
    assert r.returncode != 0 and "never" not in r.stdout
    if why == "off":
        assert "remote access" not in device.log() and "remote_access" not in device.log()
    elif why == "host":
        assert device.wait("a tunnel at 127.0.0.1 is refused: not a host the board settings' tunnel_hosts allow"), device.log()
    else:
        assert device.wait("remote_access = true in the board settings is refused"), device.log()
