"""`wisp status` against a running `wisp run`: online, offline after the broker stops, not
running after the agent is killed, JSON; garbage and missing status files."""
import json
import os
import stat
import time

import pytest

from conftest import SECRET, run
from test_agent import POST, device, posts


def status(wisp, config, *extra):
    return run([*wisp, "status", "--config", config, *extra])


def wait_status(wisp, config, predicate, timeout):
    deadline = time.time() + timeout
    while True:
        r = status(wisp, config)
        if predicate(r) or time.time() > deadline:
            return r
        time.sleep(0.5)


def fields(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_status_online_then_offline_then_not_running(wisp, broker, observer, keyfile, start_wisp, tmp_path):
    path = tmp_path / "run" / "status"
    path.parent.mkdir()
    config = keyfile(**device(broker, status_file=str(path)))
    w = start_wisp(wisp, config)
    assert posts(observer, 2, 20), w.log()
    r = wait_status(wisp, config, lambda r: r.returncode == 0 and ", acknowledged" in r.stdout, 20)
    assert r.returncode == 0, r.stdout + r.stderr + w.log()
    endpoint = f"ws://127.0.0.1:{broker.ws}/mqtt"
    assert f"(pid {w.proc.pid}): online since " in r.stdout, r.stdout
    assert f"endpoint:   {endpoint}\n" in r.stdout and "last post:  20" in r.stdout and "last error: none" in r.stdout
    j = json.loads(status(wisp, config, "--json").stdout)
    assert j["running"] is True and j["link"] == "online" and j["endpoint"] == endpoint and j["pid"] == w.proc.pid
    assert j["last_post"] >= j["since"] > 0 and j["last_ack"] >= j["since"] and j["backlog"] >= 0
    assert j["status_file"] == str(path) and j["version"] == "0.1.0" and j["last_error"] is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert SECRET not in path.read_text()

    # Posts every second change it; it is rewritten at most every 5 s.
    written = []
    deadline = time.time() + 11
    while time.time() < deadline:
        mono = int(fields(path)["updated_mono"])
        if not written or written[-1] != mono:
            written.append(mono)
        time.sleep(0.1)
    assert len(written) >= 2, written
    assert all(b - a >= 5000 for a, b in zip(written, written[1:])), written

    # The platform's reply to a post (the stand-in's observer plays it): a refusal is the last error.
    observer.publish(POST + "_reply", '{"code":460,"data":{},"id":"1","message":"request parameter error"}')
    r = wait_status(wisp, config, lambda r: "platform reply 460" in r.stdout, 10)
    assert "platform reply 460" in r.stdout and "last error: property post refused by the platform (code 460), at " in r.stdout, r.stdout
    assert json.loads(status(wisp, config, "--json").stdout)["last_reply"] == 460

    broker.stop()
    r = wait_status(wisp, config, lambda r: r.returncode == 1 and "last error: none" not in r.stdout, 20)
    assert r.returncode == 1, r.stdout + r.stderr + w.log()
    assert "offline since " in r.stdout and "last error: " in r.stdout, r.stdout
    j = json.loads(status(wisp, config, "--json").stdout)
    assert j["running"] is True and j["link"] == "offline" and j["last_error"] and j["last_error_at"] >= j["since"]

    w.proc.kill()
    w.proc.wait(10)
    r = status(wisp, config)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("wisp is not running: ") and f"(pid {w.proc.pid}) is gone" in r.stdout
    j = json.loads(status(wisp, config, "--json").stdout)
    assert j["running"] is False and "is gone" in j["reason"]


def test_status_of_a_missing_garbage_or_truncated_file(wisp, keyfile, tmp_path):
    path = tmp_path / "status"
    config = keyfile(endpoint="ws://127.0.0.1:1/mqtt", username="u", password="p", client_id="c", status_file=str(path))
    r = status(wisp, config)
    assert r.returncode == 3 and f"no status file at {path}" in r.stdout, r.stdout + r.stderr
    for text in ["format=1\npid=1\n", "\x00\xff garbage\n", "format=1\nlink=online\nend=1\n"]:
        path.write_text(text)
        r = status(wisp, config)
        assert r.returncode == 4, (text, r.stdout, r.stderr)
        assert r.stderr.startswith("wisp: status unknown: the status file ") and r.stdout == ""
        j = json.loads(status(wisp, config, "--json").stdout)
        assert j["running"] is None and "is not valid" in j["reason"]
    r = status(wisp, config, "--json", "--json")
    assert r.returncode == 64


@pytest.mark.skipif(os.path.exists("/run/wisp/status"), reason="an agent's status file is on this machine")
def test_status_with_an_unreadable_key_file_reads_the_default(wisp, tmp_path):
    r = status(wisp, str(tmp_path / "missing.key"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "no status file at /run/wisp/status" in r.stdout and "the key file could not be read" in r.stdout
