"""The boot test's remote-access row (issue 28), imported by boot-test: (8) root's board
settings allow remote access, the stand-in console (platform/tunnel, on the host) opens a
tunnel, and a stock `ssh` on the host reaches the emulated board's own sshd through the
wisp service's tunnel (wss to platform.test, through the guest's one forwarded port).
"""
import pathlib
import subprocess
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def user_key(work):
    """The ssh key the row logs in with; its public half goes to the board's root."""
    key = work / "tunnel-user"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def row(t, key):
    q, check = t.q, t.check
    console = subprocess.Popen([str(ROOT / "platform/tunnel"), "--dir", str(t.pdir), "--tcp-port", str(t.ports["tcp"]),
                                "--product-key", t.PK, "--device", t.DN, "--host", "platform.test",
                                "--wss-port", str(t.ports["tunnel"]), "--service", "_SSH=0"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, port = [], None
    try:
        while True:
            line = console.stdout.readline()
            if not line:
                check("8. ssh through the tunnel to the board's sshd", False, "platform/tunnel ended: " + "".join(lines)[-300:])
                return
            lines.append(line)
            if line.startswith("service _SSH="):
                port = int(line.split("=", 1)[1].rsplit(":", 1)[1])
            if line.strip() == "ready":
                break
        # Root allows remote access (sshd on 127.0.0.1:22, the default) and restarts wisp,
        # which asks for the tunnel at connect.
        q.run("cp /etc/wisp/board.conf /run/board.conf.saved && printf 'remote_access = true\\ntunnel_hosts = platform.test\\n' >> /etc/wisp/board.conf "
              "&& systemctl restart wisp")
        threading.Thread(target=lambda: lines.extend(console.stdout), daemon=True).start()
        started = time.monotonic()
        connected = t.wait_for(lambda: any(line.startswith("device connected") for line in lines), 120)
        took = time.monotonic() - started
        r = subprocess.run(["ssh", "-p", str(port), "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=60", "root@127.0.0.1",
                            "uname -m; systemctl is-active wisp"], capture_output=True, text=True, timeout=180) if connected else None
        ok = bool(r) and r.returncode == 0 and r.stdout.split() == ["aarch64", "active"]
        _, journal = q.run("journalctl -u wisp --no-pager | grep 'remote access' | tail -3")
        check("8. ssh through the tunnel to the board's sshd", ok,
              (f"tunnel up {took:.0f} s after the restart; ssh ran `uname -m` → {r.stdout.split()[0]}" if ok else
               f"connected={connected}; ssh: {(r.stderr if r else '')[-200:]}; journal: {journal.strip()[-300:]}"))
        _, leaked = q.run("journalctl -u wisp --no-pager | grep -c tunnel-access-token")
        check("8. the tunnel's token is not in the journal", leaked.strip() == "0", f"{leaked.strip()} lines")
    finally:
        console.terminate()
        console.wait(10)
        q.run("cp /run/board.conf.saved /etc/wisp/board.conf && systemctl restart wisp")
