"""The repository itself: no archive host is named in it (users behind a local mirror must
be able to build), and the mirror comes from the machine's apt configuration."""
import re
import subprocess

from conftest import ROOT

ARCHIVE_HOSTS = re.compile(r"(deb|ftp|security|snapshot|archive)(\.[a-z0-9-]+)*\.debian\.org|archive\.ubuntu\.com|"
                           r"mirrors?\.[a-z0-9.-]+\.(com|cn|org|net)|ports\.ubuntu\.com")


def test_no_archive_host_is_named_in_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    named = []
    for name in files:
        text = (ROOT / name).read_text(errors="replace") if (ROOT / name).is_file() else ""
        named += [f"{name}: {m.group(0)}" for m in ARCHIVE_HOSTS.finditer(text)]
    assert named == [], named


def test_the_mirror_comes_from_apts_configuration(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (tmp_path / "os-release").write_text('VERSION_CODENAME=bookworm\n')
    mirror = "http://mirrors.local.test/debian"
    # One-line format with options, the security suite first (not the archive), then deb822.
    (apt / "sources.list").write_text("# local mirror\ndeb-src http://src.local.test/debian bookworm main\n"
                                      "deb [arch=amd64] http://sec.local.test/debian-security bookworm-security main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: " + mirror + "/\nSuites: bookworm bookworm-updates\nComponents: main contrib\n")
    r = subprocess.run([str(ROOT / "scripts/apt-mirror"), "--etc", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == mirror, r
    (apt / "sources.list").write_text("deb http://one.local.test/debian/ bookworm main\n")
    r = subprocess.run([str(ROOT / "scripts/apt-mirror"), "--etc", str(tmp_path)], capture_output=True, text=True)
    assert r.stdout.strip() == "http://one.local.test/debian", r
    (apt / "sources.list").unlink()
    (apt / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: " + mirror + "\nSuites: trixie\nComponents: main\n")
    r = subprocess.run([str(ROOT / "scripts/apt-mirror"), "--etc", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "no 'deb' source for bookworm main" in r.stderr, r
