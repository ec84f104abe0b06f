"""The warm daemon behind `grader check`: the same verdicts, seeds readied ahead, and it goes
away when stopped or idle. Real processes (the daemon is the subject), on the toy problem."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import TOY, TOY_DIRS

from grader import daemon

CORRECT = TOY / "submissions" / "correct.py"
GRADER_SCRIPT = [str(Path(sys.executable).with_name("grader"))]  # the console script
WRONG = TOY / "submissions" / "wrong_peak.py"


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch):
    """A runtime folder of the test's own, short as /run/user/N is (a socket's path must fit
    in 108 bytes); the daemon is stopped after the test."""
    folder = Path(tempfile.mkdtemp(prefix="gd-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.delenv("GRADER_NO_DAEMON")
    yield folder
    pid = daemon.status()
    daemon.stop()
    if pid is not None:
        _gone(pid, within=30)  # no daemon outlives its test
    shutil.rmtree(folder, ignore_errors=True)


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader", "check", *args, *TOY_DIRS],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_daemon_grades_as_this_process_would(runtime: Path, tmp_path: Path) -> None:
    assert daemon.status() is None
    warm = check(str(WRONG), "--seed", "7", "--staff", "--json", str(tmp_path / "d.json"))
    assert daemon.status() is not None, warm.stderr  # the first check started it
    local = check(
        str(WRONG), "--seed", "7", "--staff", "--json", str(tmp_path / "l.json"), "--no-daemon"
    )
    assert warm.returncode == local.returncode == 1
    by_daemon, here = report(tmp_path / "d.json"), report(tmp_path / "l.json")
    for key in ("status", "score", "max_score", "message", "seed", "hints", "submission"):
        assert by_daemon[key] == here[key], key
    assert [c["passed"] for c in by_daemon["cases"]] == [c["passed"] for c in here["cases"]]
    # The student sees the file as they named it, never the daemon's private copy.
    assert str(WRONG) in warm.stdout and "submission.py" not in warm.stdout


def test_every_check_gets_a_seed_of_its_own(runtime: Path, tmp_path: Path) -> None:
    """The daemon readies the next seed's reference outcomes after answering; each is used
    once."""
    seeds = set()
    for number in range(3):
        result = check(str(CORRECT), "--staff", "--json", str(tmp_path / f"{number}.json"))
        assert result.returncode == 0, result.stderr
        seeds.add(report(tmp_path / f"{number}.json")["seed"])
    assert len(seeds) == 3


def test_stop_and_idle_end_the_daemon(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check(str(CORRECT)).returncode == 0
    pid = daemon.status()
    assert pid is not None
    stopped = subprocess.run(
        [sys.executable, "-m", "grader", "daemon", "stop"], capture_output=True, text=True
    )
    assert stopped.stdout.strip() == "stopped"
    _gone(pid)
    assert daemon.status() is None
    # Idle: a daemon started with a 1 s idle time ends by itself.
    assert check(str(CORRECT), env={daemon.IDLE_ENV: "1"}).returncode == 0
    pid = daemon.status()
    assert pid is not None
    _gone(pid, within=30)
    assert not list(runtime.glob("grader/*.sock"))


def test_a_check_goes_on_without_a_daemon_it_cannot_start(tmp_path: Path, monkeypatch) -> None:
    """A runtime folder another user could have made (here: a symlink) is not used: the
    check grades in its own process and says so."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    base = tmp_path / "run"
    base.mkdir()
    (base / "grader").symlink_to(target)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    monkeypatch.delenv("GRADER_NO_DAEMON")
    result = check(str(CORRECT))
    assert result.returncode == 0
    assert "grading in this process" in result.stdout
    assert not list(target.iterdir())


def test_the_runtime_folder_is_made_private(tmp_path: Path, monkeypatch) -> None:
    base = tmp_path / "run"
    (base / "grader").mkdir(parents=True)
    (base / "grader").chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    assert daemon.runtime_dir().stat().st_mode & 0o777 == 0o700


def _gone(pid: int, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A child of a process that exited is reaped by init; poll until it is.
        time.sleep(0.1)
    pytest.fail(f"daemon {pid} still running after {within} s")


def test_a_runtime_folder_too_deep_for_a_socket_is_not_used(tmp_path: Path, monkeypatch) -> None:
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    monkeypatch.delenv("GRADER_NO_DAEMON")
    result = check(str(CORRECT))
    assert result.returncode == 0
    assert "the background grader could not be used" in result.stdout


# What the daemon's red team found -------------------------------------------------------


def test_a_grader_package_in_the_checked_folder_is_never_run(runtime: Path, tmp_path) -> None:
    """`python -m` puts the working folder first on sys.path: the daemon is started with -P
    in a folder of its own, so a `grader/` there (a student's archive) never runs."""
    folder = tmp_path / "unpacked"
    (folder / "grader").mkdir(parents=True)
    marker = tmp_path / "ran"
    (folder / "grader" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    shutil.copy(CORRECT, folder / "answer.py")
    result = subprocess.run(
        [*GRADER_SCRIPT, "check", "answer.py", *TOY_DIRS],
        capture_output=True, text=True, check=False, cwd=folder, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grading in this process" not in result.stdout  # the daemon answered
    assert not marker.exists()


def test_only_one_daemon_serves_a_socket(runtime: Path) -> None:
    first = subprocess.Popen([sys.executable, "-P", "-m", "grader.daemon"], cwd="/")
    try:
        deadline = time.monotonic() + 60
        while daemon.status() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(
            [sys.executable, "-P", "-m", "grader.daemon"], cwd="/", timeout=60, check=False
        )
        assert second.returncode == 0  # it left at once: the first holds the lock
        assert daemon.status() == first.pid
    finally:
        daemon.stop()
        first.wait(timeout=60)


def test_a_daemon_that_cannot_start_costs_no_wait(runtime: Path) -> None:
    daemon.socket_path().mkdir()  # the daemon cannot bind there: it exits at start
    started = time.monotonic()
    result = check(str(CORRECT))
    assert result.returncode == 0
    assert "exited at start" in result.stdout and "daemon.log" in result.stdout
    assert time.monotonic() - started < daemon.START_SECONDS


def test_the_client_talks_only_to_its_own_users_daemon(runtime: Path, monkeypatch) -> None:
    assert check(str(CORRECT)).returncode == 0
    path = daemon.socket_path()
    with monkeypatch.context() as patch, pytest.raises(OSError, match="belongs to uid"):
        patch.setattr(daemon.os, "getuid", lambda: 4242)  # as if the socket were another's
        daemon._exchange(path, b"ping", timeout=5)
