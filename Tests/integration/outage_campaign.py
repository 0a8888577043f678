#!/usr/bin/python3
"""Runs test_broker_outage_loses_no_sample N times under CPU load and says, for every run,
who had each sample: wisp (its --verbose log: posts and history batches sent and
acknowledged), mosquitto (PUBLISH received from wisp, PUBLISH sent to the observer) and the
observer (observer.jsonl). A failing run keeps mosquitto.log, wisp's log, observer.jsonl and
pytest's output in OUT/run-I/.

    Tests/integration/outage_campaign.py [-n 30] [--outage 15] [--stress "--cpu 2"] [--out /tmp/outage-runs/LABEL]

Needs the Embedded build and stress-ng (apt-get install stress-ng); each run takes 30–60 s.
"""
import argparse
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
POST = "/sys/pk/device/thing/event/property/post"
HISTORY = "/sys/pk/device/thing/event/property/history/post"
WISP = "12345|securemode=3,signmethod=hmacsha256|"


def tally(run):
    """Per-party counts for one run's directory (mosquitto.log, wisp-*.log, observer.jsonl)."""
    wisp_log = next(run.glob("wisp-*.log")).read_text(errors="replace")
    sent, packet_of, acked = set(), {}, set()
    for m in re.finditer(r"post (\d+) sent as packet (\d+)", wisp_log):
        if not m.group(0).startswith("history"):
            sent.add(int(m.group(1)))
            packet_of.setdefault(int(m.group(2)), []).append(int(m.group(1)))
    for m in re.finditer(r"history post of (\d+) samples from (\d+) sent as packet (\d+)", wisp_log):
        ids = range(int(m.group(2)), int(m.group(2)) + int(m.group(1)))
        sent.update(ids)
        packet_of.setdefault(int(m.group(3)), []).extend(ids)
    for m in re.finditer(r"packet (\d+) acknowledged", wisp_log):
        acked.update(packet_of.pop(int(m.group(1)), []))  # ids repeat after a restart of the count; pop pairs them
    broker = (run / "mosquitto.log").read_text(errors="replace")
    received = len(re.findall(r"Received PUBLISH from " + re.escape(WISP) + r" \(d\d, q1, r0, m\d+, '(?:%s|%s)'" % (POST, HISTORY), broker))
    forwarded = len(re.findall(r"Sending PUBLISH to observer-persistent \(d0, q1, r0, m\d+, '(?:%s|%s)'" % (POST, HISTORY), broker))
    seen = set()
    path = run / "observer.jsonl"
    for line in (path.read_text().splitlines() if path.exists() else []):
        r = json.loads(line)
        body = json.loads(r["payload"])
        n = len(body["params"][0]["properties"]) if r["topic"] == HISTORY else 1
        seen.update(range(int(body["id"]), int(body["id"]) + n))
    top = max(seen | {0})  # what the test asserts; wisp goes on posting until it is stopped
    return {"wisp sent": len(sent), "wisp acked": len(acked), "broker got (msgs)": received,
            "broker to observer (msgs)": forwarded, "observer": len(seen),
            "missing at observer": sorted(set(range(1, top + 1)) - seen),
            "never sent by wisp": sorted(set(range(1, top + 1)) - sent)}


def main():
    a = argparse.ArgumentParser()
    a.add_argument("-n", type=int, default=30)
    a.add_argument("--outage", default="15")
    a.add_argument("--stress", default="--cpu 2", help="stress-ng arguments; '' for none")
    a.add_argument("--out", default=f"/tmp/outage-runs/{time.strftime('%Y%m%d-%H%M%S')}")
    args = a.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stress = subprocess.Popen(["stress-ng", *shlex.split(args.stress)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) if args.stress else None
    failures = 0
    try:
        for i in range(1, args.n + 1):
            base = out / f"tmp-{i}"
            started = time.time()
            p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"--basetemp={base}",
                                str(ROOT / "Tests/integration/test_reliability.py"), "-k", "outage"],
                               cwd=ROOT, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "WISP_OUTAGE_SECONDS": args.outage})
            run = next(base.glob("*/mosquitto.log")).parent
            (run / "pytest.txt").write_text(p.stdout + p.stderr)
            t = tally(run)
            line = f"run {i}: {'passed' if p.returncode == 0 else 'FAILED'} in {time.time() - started:.0f} s; {t}"
            print(line, flush=True)
            with open(out / "summary", "a") as f:
                f.write(line + "\n")
            if p.returncode:
                failures += 1
                keep = out / f"run-{i}"
                keep.mkdir(exist_ok=True)
                for f in [run / "mosquitto.log", run / "observer.jsonl", run / "pytest.txt", *run.glob("wisp-*.log")]:
                    if f.exists():
                        shutil.copy(f, keep)
            shutil.rmtree(base)
    finally:
        if stress:
            stress.terminate()
            stress.wait()
    print(f"{args.n} runs, {failures} failed", flush=True)
    with open(out / "summary", "a") as f:
        f.write(f"{args.n} runs, {failures} failed\n")


if __name__ == "__main__":
    main()
