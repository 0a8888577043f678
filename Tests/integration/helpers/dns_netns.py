"""Runs inside `unshare -mn` (a private network and mount namespace, so nothing here
touches the host): brings up lo, points /etc/resolv.conf at a tiny DNS server on
127.0.0.1:53 that answers `slow.wisp.test` with 127.0.0.1 after DELAY seconds and never
answers `silent.wisp.test`, optionally starts mosquitto (plain TCP on 127.0.0.1:PORT: its
websockets listener cannot bind in a fresh namespace), runs
`wisp run` with the key file, and prints what happened as one JSON line.

usage: dns_netns.py SCENARIO WORKDIR WISP_COMMAND...   (SCENARIO: silent | slow)
"""
import json, os, signal, socket, struct, subprocess, sys, threading, time

scenario, work, command = sys.argv[1], sys.argv[2], sys.argv[3:]
DELAY = 1.5
PORT = 18839

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
resolv = os.path.join(work, "resolv.conf")
with open(resolv, "w") as f:
    f.write("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)

queries = []


def serve():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    while True:
        data, peer = s.recvfrom(512)
        if len(data) < 12:
            continue
        # the question: labels up to a zero byte, then QTYPE and QCLASS
        i, labels = 12, []
        while i < len(data) and data[i] != 0:
            labels.append(data[i + 1:i + 1 + data[i]].decode(errors="replace"))
            i += 1 + data[i]
        qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = ".".join(labels)
        queries.append((name, qtype))
        if name == "silent.wisp.test":
            continue
        answer = b""
        if name == "slow.wisp.test" and qtype == 1:
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        header = data[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0)
        reply = header + question + answer

        def later(reply=reply, peer=peer):
            time.sleep(DELAY)
            s.sendto(reply, peer)
        threading.Thread(target=later, daemon=True).start()


threading.Thread(target=serve, daemon=True).start()

broker = None
if scenario == "slow":
    conf = os.path.join(work, "mosquitto-ns.conf")
    with open(conf, "w") as f:
        f.write(f"user root\nallow_anonymous true\nlistener {PORT} 127.0.0.1\n")
    broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)

host = "silent.wisp.test" if scenario == "silent" else "slow.wisp.test"
key = os.path.join(work, f"{scenario}.key")
with open(key, "w") as f:
    f.write(f"endpoint = mqtt://{host}:{PORT}\nusername = ns\nclient_id = ns-{scenario}\ntelemetry_interval = 1\n"
            "sensor.up = system:uptime\n")
os.chmod(key, 0o600)
log_path = os.path.join(work, f"wisp-{scenario}.log")
with open(log_path, "w") as log:
    wisp = subprocess.Popen([*command, "run", "--config", key, "--verbose"], stdout=subprocess.DEVNULL, stderr=log)
    result = {}
    if scenario == "silent":
        deadline = time.time() + 15  # until wisp is resolving (the server never answers)
        while time.time() < deadline and not queries:
            time.sleep(0.05)
        time.sleep(0.2)
        start = time.time()
        wisp.send_signal(signal.SIGTERM)
        try:
            result["exit"] = wisp.wait(8)
        except subprocess.TimeoutExpired:
            wisp.kill()
            result["exit"] = wisp.wait()
        result["stop_seconds"] = round(time.time() - start, 2)
    else:
        start = time.time()
        deadline = start + 10
        while time.time() < deadline and "online" not in open(log_path).read():
            time.sleep(0.05)
        result["online_seconds"] = round(time.time() - start, 2)
        wisp.send_signal(signal.SIGTERM)
        result["exit"] = wisp.wait(10)
if broker:
    broker.terminate()
    broker.wait()
result["queries"] = queries
result["log"] = open(log_path).read()[-2000:]
print(json.dumps(result))
