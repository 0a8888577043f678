"""The repository itself: no archive host is named in it (users behind a local mirror must
be able to build), and the mirror comes from the machine's apt configuration. Its layout
says what is product and what is apparatus: scripts/ holds the commands a user runs, the
harnesses live under Tests/harness, the stand-in platform in platform/, and no test or
harness edits the module path."""
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


def tracked(under):
    """Tracked files under a folder, as paths relative to it."""
    out = subprocess.run(["git", "ls-files", under], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(name[len(under) + 1:] for name in out.split())


# The commands a user runs. fuzz runs the fuzzers longer than the test command does;
# apt-mirror prints the Debian mirror in apt's configuration (cross/build and the boot test ask it);
# ota-package makes a signed OTA package (the publisher's side of an upgrade).
COMMANDS = ["apt-mirror", "demo", "fuzz", "install", "ota-package", "package", "platform", "setup", "test"]


def test_scripts_holds_only_the_commands_a_user_runs():
    assert tracked("scripts") == COMMANDS
    for name in COMMANDS:
        path = ROOT / "scripts" / name
        assert path.stat().st_mode & 0o111 and path.read_text().startswith("#!"), f"scripts/{name} is not a command"


def test_the_stand_in_platform_is_one_folder_and_scripts_platform_only_runs_it():
    assert tracked("platform") == ["README.md", "console.h", "console_deviceinfo.c", "console_event.c", "console_log.c", "plugin.c", "push", "run", "tunnel"]
    code = [line for line in (ROOT / "scripts/platform").read_text().splitlines() if line and not line.startswith("#")]
    assert code == ['exec "$(dirname "$0")/../platform/run" "$@"'], code
    # Run from elsewhere: the entry point finds the runner from its own place.
    via_scripts = subprocess.run([str(ROOT / "scripts/platform"), "--help"], cwd="/", capture_output=True, text=True)
    runner = subprocess.run([str(ROOT / "platform/run"), "--help"], cwd="/", capture_output=True, text=True)
    assert via_scripts.returncode == 0 and via_scripts.stdout == runner.stdout and "platform/run [--devices FILE]" in runner.stdout


def test_the_harnesses_live_under_tests_and_say_how_to_run_them():
    assert tracked("Tests/harness") == ["bench", "boot-test", "boot_ota.py", "boot_tunnel.py", "bufferfile.py", "drain-bench"]
    for name in ("bench", "boot-test", "drain-bench"):
        r = subprocess.run([str(ROOT / "Tests/harness" / name), "--help"], cwd="/", capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and f"    Tests/harness/{name} [" in r.stdout, (name, r)


def test_no_test_or_harness_edits_the_module_path():
    """Modules are found through pytest.ini's pythonpath (the tests) or beside the script (the benches)."""
    python = [name for name in tracked("Tests") if name.endswith(".py") or (ROOT / "Tests" / name).read_bytes()[:20].startswith(b"#!/usr/bin/python")]
    assert "integration/conftest.py" in python and "harness/bench" in python
    edits = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend)|\+?=|\[)")
    assert [name for name in python if edits.search((ROOT / "Tests" / name).read_text())] == []


def test_no_swift_file_is_over_400_lines():
    """A reader finds a unit in a file named for it, not inside a long one."""
    files = subprocess.run(["git", "ls-files", "*.swift"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    long = [f"{name}: {n} lines" for name in files if (n := len((ROOT / name).read_text().splitlines())) > 400]
    assert files and long == [], long
