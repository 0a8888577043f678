"""The boot test's OTA rows (issue 26): signed upgrades through the stand-in platform on the
emulated board, under real systemd, as root and the wisp user (imported by boot-test).

Rows: (a) a signed upgrade runs under systemd and reports its version, progress 100;
(b) an unsigned package and one signed by another key → -3, binary unchanged; (c) a
signed version that exits at start → rolled back, the old version reports -1 and why;
(d) qemu killed during a trial → the next boot resumes the trial and the new version
reports itself and posts; (e) the wisp user plants a binary with matching records, and a
link, in its state directory → the root step installs nothing and says why; (f) the
platform's reboot service: refused without allow_reboot in root's board.conf, a reboot
with it, and the next start reports startup reason `boot`.
"""
import json
import pathlib
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKER = b"wisp-version=0.1.0"
CRASH_C = r"""#include <stdio.h>
#include <string.h>
int main(int c, char **v) {
    if (c > 1 && !strcmp(v[1], "--version")) { puts("wisp 0.1.3 (boot-test crash build)"); return 0; }
    fputs("boot-test crash build: exiting at start\n", stderr);
    return 70;
}
"""


def versioned(src, dst, version):
    """A copy of wisp `src` that reports `version` (the version marker rewritten in place)."""
    data = pathlib.Path(src).read_bytes()
    assert data.count(MARKER) == 1, "the version marker is not in the binary once"
    pathlib.Path(dst).write_bytes(data.replace(MARKER, b"wisp-version=" + version.encode()))
    return pathlib.Path(dst)


class Packages:
    """The payloads, the publisher's key pair and another, and packages signed with them."""

    def __init__(self, work, deb):
        self.dir = work / "ota"
        self.dir.mkdir()
        tree = self.dir / "deb"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        self.base = tree / "usr/bin/wisp"
        for name in ("publisher", "other"):
            subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(self.dir / f"{name}.pem")], check=True)
            subprocess.run(["openssl", "ec", "-in", str(self.dir / f"{name}.pem"), "-pubout", "-out", str(self.dir / f"{name}.pub")],
                           check=True, capture_output=True)
        (self.dir / "crash.c").write_text(CRASH_C)
        self.crash = self.dir / "wisp-crash"
        subprocess.run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-o", str(self.crash), str(self.dir / "crash.c")], check=True)

    def version(self, version):
        return versioned(self.base, self.dir / f"wisp-{version}", version)

    def signed(self, payload, version, key="publisher", counter=1):
        out = self.dir / f"{payload.name}-{key}.wota"
        subprocess.run([str(ROOT / "scripts/ota-package"), "--key", str(self.dir / f"{key}.pem"), "--version", version,
                        "--counter", str(counter), str(payload), str(out)], check=True, capture_output=True)
        return out


class Push:
    """platform/push ota, serving on the port the guest reaches as platform.test."""

    def __init__(self, pdir, ports, file, version):
        self.proc = subprocess.Popen([str(ROOT / "platform/push"), "ota", "--platform-dir", str(pdir), "--tcp-port", str(ports["tcp"]),
                                      "--product-key", PK, "--device", DN, "--file", str(file), "--version", version,
                                      "--url-host", "platform.test", "--http-port", str(ports["package"])],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events, self.lock = [], threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if predicate(e)]
            if found:
                return found[0]
            time.sleep(0.2)
        return None

    def failure(self, timeout):
        return self.wait(lambda e: e["event"] == "progress" and e["step"] < 0, timeout)

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


class Watcher:
    """What the board says on its own: version reports, startup events, service replies."""

    def __init__(self, port):
        self.messages, self.lock = [], threading.Lock()
        self.client = mqtt.Client(client_id=f"boot-ota-{time.time()}")
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"/ota/device/inform/{PK}/{DN}", 1), (f"/sys/{PK}/{DN}/thing/event/startup/post", 1),
                               (f"/sys/{PK}/{DN}/thing/service/reboot_reply", 1)])
        self.client.loop_start()

    def on_message(self, client, userdata, m):
        with self.lock:
            self.messages.append((time.monotonic(), m.topic, json.loads(m.payload)))

    def wait(self, since, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [(t, topic, body) for t, topic, body in self.messages if t >= since and predicate(topic, body)]
            if found:
                return found[0]
            time.sleep(0.2)
        return None

    def version(self, since, version, timeout):
        return self.wait(since, lambda topic, body: "/ota/device/inform/" in topic and body["params"]["version"] == version, timeout)

    def call_reboot(self, call_id):
        self.client.publish(f"/sys/{PK}/{DN}/thing/service/reboot",
                            json.dumps({"id": call_id, "params": {}, "method": "thing.service.reboot"}), qos=1)
        return self.wait(0, lambda topic, body: topic.endswith("reboot_reply") and body["id"] == call_id, 60)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


PK = DN = None


def rows(t):
    """The OTA rows on the running board `t.q` (boot 3, online); `t` carries the harness's
    Qemu, boot settings, check(), observer, packages and work directory. `t.q` follows the
    Qemu running now (the harness kills it at the end)."""
    global PK, DN
    PK, DN = t.PK, t.DN
    q, check, pk = t.q, t.check, t.packages
    watcher = Watcher(t.ports["tcp"])
    run = lambda command, timeout=60: q.run(command, timeout=timeout)  # noqa: E731
    if not q.connect(300):
        raise SystemExit("boot-test: no control channel for the OTA rows")
    try:
        wisp_version = lambda: run("/usr/bin/wisp --version")[1].split()[1:2]  # noqa: E731
        # (a) a signed upgrade, end to end.
        t0 = time.monotonic()
        push = Push(t.pdir, t.ports, pk.signed(pk.version("0.1.1"), "0.1.1"), "0.1.1")
        done = push.wait(lambda e: e["event"] == "progress" and e["step"] == 100, 300)
        reported = watcher.version(t0, "0.1.1", 300)
        push.close()
        _, state = run("systemctl is-active wisp; systemctl show -p Result --value wisp-update; ls /var/lib/wisp-update")
        check("a. signed upgrade → new version under systemd, progress 100", bool(done and reported) and wisp_version() == ["0.1.1"]
              and state.startswith("active"), f"{reported[0] - t0:.0f} s to the new version's report; " + state.strip().replace("\n", ", ")
              if reported else f"progress 100: {bool(done)}, no report of 0.1.1; {state.strip()}")

        # (b) unsigned, and signed by another key: refused before anything runs.
        verdicts = []
        for payload, version, package, words in [(pk.version("0.1.2"), "0.1.2", None, "unsigned"),
                                                  (pk.version("0.1.5"), "0.1.5", "other", "signature")]:
            push = Push(t.pdir, t.ports, pk.signed(payload, version, key=package) if package else payload, version)
            failed = push.failure(300)
            push.close()
            verdicts.append((failed and failed["step"] == -3 and words in failed["desc"], failed and failed["desc"]))
        check("b. unsigned and foreign-key packages → -3, binary unchanged", all(v[0] for v in verdicts) and wisp_version() == ["0.1.1"],
              "; ".join(str(v[1])[:90] for v in verdicts))

        # (c) a signed version that exits at start: rolled back, the old one says why.
        t0 = time.monotonic()
        push = Push(t.pdir, t.ports, pk.signed(pk.crash, "0.1.3"), "0.1.3")
        staged = push.wait(lambda e: e["event"] == "progress" and e["step"] == 100, 300)
        failed = push.wait(lambda e: e["event"] == "progress" and e["step"] == -1 and "0.1.3" in (e["desc"] or ""), 400)
        push.close()
        check("c. a signed version that exits at start → rolled back, -1 with why",
              bool(staged and failed) and wisp_version() == ["0.1.1"] and run("systemctl is-active wisp")[1].startswith("active"),
              f"{time.monotonic() - t0:.0f} s: {failed['desc'][:110]}" if failed else f"staged: {bool(staged)}, no -1 report")

        # (d) qemu killed during a trial: the next boot resumes it.
        push = Push(t.pdir, t.ports, pk.signed(pk.version("0.1.4"), "0.1.4", counter=2), "0.1.4")
        staged = push.wait(lambda e: e["event"] == "progress" and e["step"] == 100, 300)
        trial = staged and t.wait_for(lambda: run("test -e /var/lib/wisp-update/journal")[0] == 0, 120, step=0.2)
        push.close()
        q.kill()
        t0 = time.monotonic()
        q = t.q = t.Qemu(console=t.work / "console-4-trial-cut.log", **t.boot)
        reported = watcher.version(t0, "0.1.4", 400)
        posts = t.observer.wait(time.monotonic(), 2, 120)
        if not q.connect(120):
            raise SystemExit("boot-test: no control channel after the cut trial")
        _, left = run("ls /var/lib/wisp-update; journalctl -b -u wisp-update --no-pager | grep -o 'resuming the trial.*' | head -1")
        check("d. qemu killed during a trial → next boot resumes it, new version reports, posts",
              bool(trial and reported and posts) and wisp_version() == ["0.1.4"] and "journal" not in left,
              f"{reported[0] - t0:.0f} s from power-on to 0.1.4's report; {left.strip().replace(chr(10), ', ')[:120]}"
              if reported else f"trial seen: {bool(trial)}, no report of 0.1.4; {left.strip()[:120]}")

        # (e) the wisp user plants a binary with matching records, then a link.
        run("mkdir -p /var/lib/wisp/ota && chown wisp:wisp /var/lib/wisp/ota; sha256sum /usr/bin/wisp /etc/shadow > /run/before")
        planted = ("runuser -u wisp -- sh -c 'cp /usr/lib/wisp/wisp-update /var/lib/wisp/ota/staged && "
                   "printf \"version = 0.1.6\\nsha256 = %s\\nfrom = 0.1.4\\n\" $(sha256sum /var/lib/wisp/ota/staged | cut -c1-64) "
                   "> /var/lib/wisp/ota/staged.ready'")
        code, _ = run(planted)
        said = t.wait_for(lambda: run("journalctl -u wisp-update --no-pager | grep -c 'unsigned.*nothing installed'")[1].strip() not in ("", "0"), 60)
        run("runuser -u wisp -- sh -c 'ln -s /etc/shadow /var/lib/wisp/ota/staged && touch /var/lib/wisp/ota/staged.ready'")
        linked = t.wait_for(lambda: run("journalctl -u wisp-update --no-pager | grep -c 'cannot take the staged package'")[1].strip() not in ("", "0"), 60)
        same, _ = run("sha256sum -c --quiet /run/before")
        check("e. the wisp user's planted binary and link → root installs nothing, says why",
              code == 0 and bool(said and linked) and same == 0 and wisp_version() == ["0.1.4"],
              f"unsigned refused: {bool(said)}, link refused: {bool(linked)}, /usr/bin/wisp and /etc/shadow unchanged: {same == 0}")

        # (f) the reboot service: refused, then allowed by root's board.conf.
        refused = watcher.call_reboot("f-1")
        run("printf 'ota_confirm_seconds = 120\\nallow_reboot = true\\n' > /run/board.conf && install -m 0644 /run/board.conf /etc/wisp/board.conf "
            "&& systemctl restart wisp")
        t0 = time.monotonic()
        watcher.version(t0, "0.1.4", 120)
        accepted = watcher.call_reboot("f-2")
        rebooted = q.wait_exit(180) is not None  # -no-reboot: a reboot ends qemu
        t0 = time.monotonic()
        q = t.q = t.Qemu(console=t.work / "console-5-reboot.log", **t.boot)
        startup = watcher.wait(t0, lambda topic, body: topic.endswith("/startup/post") and body["params"]["value"]["reason"] == "boot", 400)
        check("f. reboot: refused without allow_reboot, with it the board reboots and reports `boot`",
              bool(refused and refused[2]["code"] == 460 and accepted and accepted[2]["code"] == 200 and rebooted and startup),
              f"without: {refused and refused[2]['code']}, with: {accepted and accepted[2]['code']}, "
              f"qemu rebooted: {rebooted}, startup reason boot: {bool(startup)}")
        if not q.connect(120):
            raise SystemExit("boot-test: no control channel after the reboot")
        _, out = run("systemd-analyze security wisp-update.service | tail -1")
        check("g. systemd-analyze security wisp-update", "exposure level" in out, out.strip()[-80:])
    finally:
        watcher.close()
