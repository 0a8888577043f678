"""RFC 6455 conformance of wisp's WebSocket client codec, judged by Autobahn|Testsuite's
fuzzingserver (Python 2.7 from pyenv; the suite is pip-installed into .build-autobahn)."""
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import ROOT, VALGRIND, free_port, stripped

PY27 = pathlib.Path.home() / ".pyenv/versions/2.7.18/bin/python"
SITE = ROOT / ".build-autobahn/site"
ECHO = ROOT / ".build/debug/wisp-echo"
# Sections 1-7 and 10 (no compression); section 9 up to the 1 MiB buffer, and one size
# above it in each of 9.1 (text) and 9.2 (binary), whose answer must be a close with 1009.
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*",
         "9.1.1", "9.1.2", "9.1.3", "9.1.4", "9.2.1", "9.2.2", "9.2.3", "9.2.4"]
TOO_BIG = {"9.1.4", "9.2.4"}


@pytest.fixture(scope="module")
def fuzzingserver(tmp_path_factory):
    if not PY27.exists():
        pytest.skip("pyenv Python 2.7.18 not installed")
    if not (SITE / "autobahntestsuite").exists():
        subprocess.run([str(PY27), "-m", "pip", "install", "-q", "--target", str(SITE), "autobahntestsuite"],
                       check=True, capture_output=True, timeout=600)
    work = tmp_path_factory.mktemp("autobahn")
    port = free_port()
    (work / "spec.json").write_text(json.dumps({
        "url": f"ws://127.0.0.1:{port}", "webport": free_port(), "outdir": "./reports", "cases": CASES,
        "exclude-cases": [], "exclude-agent-cases": {}}))
    proc = subprocess.Popen(
        [str(PY27), "-c", "import site,sys; site.addsitedir(sys.argv[1]); sys.argv=['wstest','-m','fuzzingserver','-s','spec.json']; "
                          "from autobahntestsuite import wstest; wstest.run()", str(SITE)],
        cwd=work, stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        r = subprocess.run([str(ECHO), str(port), "/getCaseCount", "--print"], capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip().isdigit():
            break
        time.sleep(0.3)
    assert r.stdout.strip().isdigit(), (work / "server.log").read_text()[-2000:]
    yield port, int(r.stdout.strip()), work
    proc.terminate()
    proc.wait(10)


def test_autobahn_client_cases(fuzzingserver):
    port, count, work = fuzzingserver
    assert count > 200
    # Under WISP_VALGRIND=1 every case runs in memcheck; exit 99 is an invalid access or a leak.
    echo = VALGRIND + [str(stripped(ECHO, "echo"))] if VALGRIND else [str(ECHO)]
    memcheck = []
    for i in range(1, count + 1):
        r = subprocess.run(echo + [str(port), f"/runCase?case={i}&agent=wisp"], capture_output=True, text=True,
                           timeout=600 if VALGRIND else 120)
        if r.returncode == 99:
            memcheck.append((i, r.stderr[-2000:]))
    assert memcheck == [], memcheck
    subprocess.run([str(ECHO), str(port), "/updateReports?agent=wisp"], capture_output=True, timeout=60)
    index = json.loads((work / "reports/index.json").read_text())["wisp"]
    tally = {}
    failed = []
    for case, result in sorted(index.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]):
        behavior = result["behavior"]
        if case in TOO_BIG:
            detail = json.loads((work / "reports" / result["reportfile"]).read_text())
            code = detail.get("remoteCloseCode")
            behavior = "OK (1009)" if code == 1009 else f"no 1009 ({code})"
        tally[behavior] = tally.get(behavior, 0) + 1
        if behavior not in ("OK", "NON-STRICT", "INFORMATIONAL", "OK (1009)"):
            failed.append((case, behavior, result.get("behaviorClose")))
    print("\nAutobahn|Testsuite client cases, agent wisp: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    non_ok = [c for c, r in index.items() if r["behavior"] in ("NON-STRICT", "INFORMATIONAL")]
    if non_ok:
        print("non-strict/informational: " + " ".join(sorted(non_ok)))
    assert failed == [], failed
