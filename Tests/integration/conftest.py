"""Shared fixtures: the wisp binaries under test, key files, and brokers on 127.0.0.1."""
import hashlib
import hmac
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-DO-NOT-LEAK-7f3a"


def binaries():
    """Every build that exists, as a command prefix: the host build, the host Embedded
    build, and the cross builds for the boards under qemu-user. All must behave alike."""
    found = []
    for name, path, prefix in [
        ("host", ROOT / ".build/debug/wisp", []),
        ("embedded", ROOT / ".build-embedded/release/wisp", []),
        ("aarch64", ROOT / ".build-cross/aarch64-linux-gnu/wisp", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]),
        ("armv7", ROOT / ".build-cross/armv7-linux-gnueabihf/wisp", ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"]),
    ]:
        if path.exists() and not (VALGRIND and prefix):
            if VALGRIND:
                path = stripped(path, name)
            found.append(pytest.param((VALGRIND if not prefix else []) + prefix + [str(path)], id=name))
    return found


def stripped(path, name):
    """A copy without debug info: valgrind 3.19 cannot read the toolchain's DWARF 5."""
    copy = ROOT / f".build-valgrind/{name}/wisp"
    copy.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["strip", "-o", str(copy), str(path)], check=True)
    return copy


# WISP_VALGRIND=1: run the host builds under memcheck; an invalid access or a definite
# leak makes the process exit 99, which every test notices as a wrong exit code.
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite"] if os.environ.get("WISP_VALGRIND") == "1" else []


@pytest.fixture(params=binaries())
def wisp(request):
    return request.param


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def keyfile(tmp_path):
    """Writes a key file (mode 0600) from keyword values and returns its path."""
    def make(mode=0o600, **values):
        path = tmp_path / "device.key"
        path.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        os.chmod(path, mode)
        return str(path)
    return make


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


# ---------------------------------------------------------------- certificates

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def make_server_cert(directory, ca, name, dns, ip=None, extra=""):
    san = f"DNS:{dns}" + (f",IP:{ip}" if ip else "")
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n{extra}")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={dns}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A test CA with a server certificate for 127.0.0.1/localhost, one for another
    host name, one only for TLS clients, and a second CA nobody trusts."""
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_server_cert(d, "ca", "server", "localhost", "127.0.0.1")
    make_server_cert(d, "ca", "wrongname", "other.example")
    make_server_cert(d, "otherca", "untrusted", "localhost", "127.0.0.1")
    make_server_cert(d, "ca", "clientonly", "localhost", "127.0.0.1", extra="extendedKeyUsage=clientAuth\n")
    return d


# ---------------------------------------------------------------- broker

PK, DN, CLIENT = "pk", "device", "12345"


def platform_password(secret, method="sha256", client=CLIENT, pk=PK, dn=DN, timestamp=None):
    """The platform's signature, computed independently of wisp."""
    content = f"clientId{client}deviceName{dn}productKey{pk}" + (f"timestamp{timestamp}" if timestamp else "")
    return hmac.new(secret.encode(), content.encode(), getattr(hashlib, method)).hexdigest()


class Mosquitto:
    """mosquitto on 127.0.0.1 with a plain TCP listener (for observers), ws, and wss."""

    def __init__(self, directory, certs, server_cert="server", persistent=False, extra=""):
        self.dir = directory
        self.args = (certs, server_cert, persistent, extra)
        self.configure()
        self.proc = None

    def configure(self):
        """Free ports and the config for them (again when another process took one first)."""
        certs, server_cert, persistent, extra = self.args
        directory = self.dir
        self.tcp, self.ws, self.wss, self.ws6 = free_port(), free_port(), free_port(), free_port()
        self.log = directory / "mosquitto.log"
        passwords = directory / "passwd"
        passwords.write_text("")
        for user, password in ((f"{DN}&{PK}", platform_password(SECRET)), ("observer", "observer-pw"),
                               ("plain", "plain-pw")):
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
        (directory / "mosquitto.conf").write_text(f"""
user root
per_listener_settings false
allow_anonymous false
password_file {passwords}
log_dest file {self.log}
log_type all
connection_messages true
listener {self.tcp} 127.0.0.1
listener {self.ws} 127.0.0.1
protocol websockets
listener {self.ws6} ::1
protocol websockets
listener {self.wss} 127.0.0.1
protocol websockets
cafile {certs}/ca.pem
certfile {certs}/{server_cert}.pem
keyfile {certs}/{server_cert}.key
""" + (f"persistence true\npersistence_location {directory}/\nautosave_interval 1\n" if persistent else "") + extra)

    def start(self):
        # free_port() closes its socket before mosquitto binds: another process may take a
        # port in between. A broker that never ran gets new ports (a restarted one keeps its
        # own: clients come back to them).
        for attempt in range(3):
            mark = len(self.log_text())
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self.wait_listening():
                self.started_once = True
                return
            taken = "Unable to create" in self.log_text()[mark:]
            if self.proc.poll() is None or not taken or getattr(self, "started_once", False) or attempt == 2:
                raise RuntimeError("mosquitto did not start: " + self.log_text())
            self.configure()

    def wait_listening(self):
        """True once every listener accepts; False when mosquitto exits or 10 s pass."""
        deadline = time.time() + 10
        for port in (self.tcp, self.ws, self.wss):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.time() > deadline or self.proc.poll() is not None:
                        return False
                    time.sleep(0.05)
        return True

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def broker(tmp_path, certs):
    m = Mosquitto(tmp_path, certs)
    m.start()
    yield m
    m.stop()


class Observer:
    """A paho subscriber over plain TCP that records (topic, payload); `topic` is a filter or a
    list of them."""

    def __init__(self, broker, topic="#", persistent=False):
        import paho.mqtt.client as mqtt
        self.messages = []
        self.arrivals = []  # time.time() of each message, for the record of a failed run
        self.lock = threading.Lock()
        name = "observer-persistent" if persistent else f"observer-{os.getpid()}-{time.time()}"
        self.client = mqtt.Client(client_id=name, clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.username_pw_set("observer", "observer-pw")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        connects = []  # CONNACK codes, for the record of a failed start
        filters = [(t, 1) for t in topic] if isinstance(topic, list) else [(topic, 1)]

        def on_connect(client, userdata, flags, rc):
            # Subscribing here, not before the loop runs: a first connection that fails (a
            # loaded machine, a broker that was still starting) is retried and subscribes again.
            connects.append(rc)
            if rc == 0:
                client.subscribe(filters)
        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect_async("127.0.0.1", broker.tcp)
        self.client.loop_start()
        if not subscribed.wait(20):
            self.client.loop_stop()
            raise AssertionError(f"observer could not subscribe (CONNACK codes {connects}); broker log:\n"
                                 + broker.log_text()[-3000:])

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(errors="replace")))
            self.arrivals.append(time.time())

    def save(self, path):
        """The record: one JSON line per message (arrival time, topic, payload)."""
        with self.lock, open(path, "w") as f:
            for at, (t, p) in zip(self.arrivals, self.messages):
                f.write(json.dumps({"at": round(at, 3), "topic": t, "payload": p}) + "\n")

    def publish(self, topic, payload, qos=1):
        self.client.publish(topic, payload, qos=qos).wait_for_publish()

    def wait_for(self, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        return []

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def observer(broker):
    o = Observer(broker)
    yield o
    o.close()


class Wisp:
    """`wisp run` in the background, its stderr captured to a file."""

    def __init__(self, binary, config, directory, env=None):
        self.stderr_path = directory / f"wisp-{time.time()}.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([*binary, "run", "--config", config, "--verbose"],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     env={**os.environ, **(env or {})})

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def wait_log(self, text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                return text in self.log()
            time.sleep(0.05)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        assert SECRET not in self.log(), "the device secret reached the log"
        assert self.proc.returncode != 99, "valgrind: " + self.log()[-3000:]
        return self.proc.returncode


@pytest.fixture
def start_wisp(tmp_path):
    started = []

    def start(binary, config, env=None):
        w = Wisp(binary, config, tmp_path, env)
        started.append(w)
        return w
    yield start
    for w in started:
        w.stop()
