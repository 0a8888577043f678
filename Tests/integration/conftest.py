"""Shared fixtures: the wisp binaries under test, key files, and brokers on 127.0.0.1."""
import os
import pathlib
import socket
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-DO-NOT-LEAK-7f3a"


def binaries():
    """The host build and the Embedded build: both must behave the same."""
    found = []
    for name, path in [("host", ROOT / ".build/debug/wisp"), ("embedded", ROOT / ".build-embedded/release/wisp")]:
        if path.exists():
            found.append(pytest.param(str(path), id=name))
    return found


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
