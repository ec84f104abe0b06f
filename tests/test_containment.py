"""Containment of runs: nothing a submission does outlives its run, reaches another run, or
stops the grader. Real processes, namespaces, cgroups and uids (root), on the JAX-free toy
problem so that each run takes a fraction of a second; the JAX corpus is in test_hostile.py.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TOY, TOY_DIRS
from fakes import fake_setup

from grader.cases import make_cases
from grader.cli import cli
from grader.engine import World
from grader.errors import SubmissionNotFound
from grader.grading import request_for
from grader.models import Report, Status
from grader.problems import Problem
from grader.run import SandboxPolicy, SubprocessRunner, full_isolation_problem
from grader.run import cgroup as cgroups
from grader.run.launch import kill_uid
from grader.run.policy import RUN_UID_BASE, UidPool, uid_in_use, uid_pids
from grader.storage import read_regular

GRADER = [sys.executable, "-m", "grader"]
WITHOUT_CAPABILITIES = [
    shutil.which("setpriv") or "setpriv",
    "--bounding-set=-all",
    "--inh-caps=-all",
]

# A toy submission that opts out of every way a worker used to be stopped, leaves sleepers
# and a busy loop in sessions of their own, and returns its uid so the test can look for it.
SURVIVOR = """\
import ctypes, os, time
_libc = ctypes.CDLL(None)
_libc.prctl(1, 0, 0, 0, 0)
try:
    os.setsid()
except OSError:
    pass
os._exit = lambda code: time.sleep(10**6)

def _spawn(busy):
    if os.fork() == 0:
        _libc.prctl(1, 0, 0, 0, 0)
        try:
            os.setsid()
        except OSError:
            pass
        while True:
            if not busy:
                time.sleep(1)

_spawn(True)
for _ in range(5):
    _spawn(False)

def vector_stats(x, k):
    return [os.getuid(), 0.0, 0.0]
"""
FORGED_SANDBOX_FAILED = """\
import json, os
_line = (json.dumps({"event": "sandbox_failed", "message": "::error::forged"}) + "\\n").encode()
for fd in range(3, 64):
    try:
        os.write(fd, _line)
    except OSError:
        pass

def vector_stats(x, k):
    return [len(x), 0.0, 0.0]
"""
NESTED_JSON = """\
import os
for fd in range(3, 64):
    try:
        os.write(fd, b"[" * 200_000 + b"\\n")
    except OSError:
        pass

def vector_stats(x, k):
    return [len(x), 0.0, 0.0]
"""
CORRECT = (TOY / "submissions" / "correct.py").read_text()


@pytest.fixture(scope="module")
def require_root_isolation() -> None:
    problem = full_isolation_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have full isolation: {problem}")
        pytest.skip(f"full isolation unavailable: {problem}")


def run_uids_alive(uids: set[int]) -> set[int]:
    return {uid for uid in uids if uid_in_use(uid)}


def wait_until_gone(uids: set[int], seconds: float = 5.0) -> set[int]:
    end = time.monotonic() + seconds
    while (alive := run_uids_alive(uids)) and time.monotonic() < end:
        time.sleep(0.1)
    return alive


@pytest.mark.usefixtures("require_root_isolation")
def test_kill_uid_ends_every_session_of_a_uid_and_does_not_wait_for_zombies() -> None:
    # What a submission without a PID namespace leaves: processes in sessions of their own.
    uid = RUN_UID_BASE + 424_250
    spawn = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "setsid"]
    leaders = [
        subprocess.Popen([*spawn, "sh", "-c", "sleep 60 & sleep 60 & wait"]) for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 5
        while len(uid_pids(uid, live=True)) < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(uid_pids(uid, live=True)) == 9
        started = time.monotonic()
        # The leaders become zombies of this process until it reaps them: not a reason to wait.
        assert kill_uid(uid, sys.executable, timeout=5)
        assert time.monotonic() - started < 2
        assert uid_pids(uid, live=True) == []
    finally:
        for leader in leaders:
            leader.kill()
            leader.wait()
    deadline = time.monotonic() + 5  # the leaders' zombie children are init's to reap
    while uid_pids(uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uid_pids(uid) == []


@pytest.mark.usefixtures("require_root_isolation")
def test_uid_pool_never_hands_out_a_held_or_busy_uid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, other_grader = UidPool(tmp_path / "locks"), UidPool(tmp_path / "locks")
    held = [pool.acquire() for _ in range(150)]
    assert len(set(held)) == 150
    assert all(uid >= RUN_UID_BASE for uid in held)

    busy = RUN_UID_BASE + 424_242
    sleeper = subprocess.Popen(
        ["setpriv", f"--reuid={busy}", f"--regid={busy}", "--clear-groups", "sleep", "30"]
    )
    try:
        deadline = time.monotonic() + 5
        while not uid_in_use(busy) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uid_in_use(busy)
        free = RUN_UID_BASE + 424_243
        # Another grader on the machine draws a uid this one holds, then the busy one, then a
        # free one: it must get the free one.
        draws = iter([held[0] - RUN_UID_BASE, busy - RUN_UID_BASE, free - RUN_UID_BASE])
        monkeypatch.setattr(random, "randrange", lambda _span: next(draws))
        assert other_grader.acquire() == free
    finally:
        sleeper.kill()
        sleeper.wait()
    for uid in held:
        pool.release(uid)
    other_grader.release(free)
    assert list((tmp_path / "locks").iterdir()) == []


@pytest.mark.usefixtures("require_root_isolation")
def test_no_process_outlives_its_run_over_more_than_100_runs(toy: Problem, tmp_path: Path) -> None:
    source = tmp_path / "survivor.py"
    source.write_text(SURVIVOR)
    cases = make_cases(toy.spec, 1)[:1]
    request = request_for(toy, source, "survivor.py", cases, reference=False)
    runner = SubprocessRunner(policy=SandboxPolicy(require_full=True))
    seen: list[int] = []
    try:
        for _ in range(105):
            result = runner.run(request, toy.spec.limits)
            outcome = result.outcomes[cases[0].index]
            uid = int(outcome.values[0])  # type: ignore[union-attr]
            assert result.isolation == "full"
            assert uid >= RUN_UID_BASE
            # Nothing of this run is left by the time run() returns: no settling time given.
            assert not uid_in_use(uid), f"run uid {uid} still has processes"
            seen.append(uid)
    finally:
        runner.close()
    assert len(set(seen)) == len(seen), "a run uid was handed out twice"
    if cgroups.unavailable() is None:
        assert result.run_limits == "cgroup"


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.py"
    zero.symlink_to("/dev/zero")
    with pytest.raises(SubmissionNotFound, match="FIFO"):
        read_regular(fifo, 100)
    with pytest.raises(SubmissionNotFound, match="character device"):
        read_regular(zero, 100)
    with pytest.raises(SubmissionNotFound, match="folder"):
        read_regular(tmp_path, 100)
    big = tmp_path / "big.py"
    big.write_bytes(b"#" * 5000)
    assert len(read_regular(big, 101)) == 101

    # `grader check` in process, on InProcessRunners: reading the file is the subject.
    world = World.of(fake_setup())
    for path, kind in ((fifo, "FIFO"), (zero, "character device")):
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["check", str(path), *TOY_DIRS], obj=world)
        assert result.exit_code == 2, result.output
        assert kind in result.stderr and "not a regular file" in result.stderr
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < 30


@pytest.mark.usefixtures("require_root_isolation")
def test_a_batch_never_dies_of_one_student_and_leaves_nothing_running(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(CORRECT)
    (folder / "forger.py").write_text(FORGED_SANDBOX_FAILED)
    (folder / "nester.py").write_text(NESTED_JSON)
    (folder / "survivor.py").write_text(SURVIVOR)
    os.mkfifo(folder / "fifo.py")
    with (folder / os.fsdecode(b"caf\xe9.py")).open("w") as stream:
        stream.write(CORRECT)
    out = tmp_path / "out"
    result = subprocess.run(
        [*GRADER, "batch", str(folder), "--out", str(out), "--seed", "3", *TOY_DIRS],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    with (out / "grades.csv").open(newline="") as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert rows["alice"]["status"] == "graded"
    assert float(rows["alice"]["score"]) == float(rows["alice"]["max_score"])
    assert rows["forger"]["status"] == "crashed"
    assert rows["nester"]["status"] == "crashed"
    assert float(rows["forger"]["score"]) == float(rows["nester"]["score"]) == 0
    assert rows["survivor"]["status"] == "graded"
    assert "skipped caf\\xe9.py: file name is not valid UTF-8" in result.stderr
    assert "skipped fifo.py: not a regular file" in result.stderr
    forger = Report.model_validate_json((out / "forger.json").read_text())
    assert "private channel" in forger.message

    survivor = Report.model_validate_json((out / "staff" / "survivor.json").read_text())
    uids = {int(o.got) for c in survivor.cases for o in c.outputs if o.name == "count" and o.got}
    assert uids and all(uid >= RUN_UID_BASE for uid in uids)
    # The grader has exited: nothing that ran under the survivor's uid is left.
    assert run_uids_alive(uids) == set()


@pytest.mark.usefixtures("require_root_isolation")
def test_staff_commands_refuse_basic_isolation_and_then_trust_no_cache(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(CORRECT)
    env = os.environ | {"GRADER_CACHE_DIR": str(tmp_path / "cache")}
    batch = [*GRADER, "batch", str(folder), "--seed", "3", "--force", *TOY_DIRS]

    def run(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *batch, *args], capture_output=True, text=True, env=env, timeout=300
        )

    first = run("--out", str(tmp_path / "full"))
    assert first.returncode == 0, first.stderr
    # A submission running as the grader's own user could have rewritten the reference's
    # cached outcomes: poison them as it would.
    [cached] = (tmp_path / "cache" / "reference").glob("*.json")
    outcomes = json.loads(cached.read_text())
    for outcome in outcomes:
        outcome["values"] = [0.0] * len(outcome["values"])
    cached.write_text(json.dumps(outcomes))

    refused = run("--out", str(tmp_path / "basic"), prefix=tuple(WITHOUT_CAPABILITIES))
    assert refused.returncode == 2
    assert "needs full isolation" in refused.stderr
    assert "--allow-basic-isolation" in refused.stderr
    assert not (tmp_path / "basic" / "grades.csv").exists()

    allowed = run(
        "--out",
        str(tmp_path / "basic"),
        "--allow-basic-isolation",
        prefix=tuple(WITHOUT_CAPABILITIES),
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "grading with basic isolation" in allowed.stderr
    report = Report.model_validate_json((tmp_path / "basic" / "alice.json").read_text())
    assert report.isolation == "basic"
    assert report.status is Status.GRADED
    assert report.score == report.max_score  # the poisoned cache was not used

    # The control: with full isolation the cache is trusted, so the poison shows.
    trusted = run("--out", str(tmp_path / "full-again"))
    poisoned = Report.model_validate_json((tmp_path / "full-again" / "alice.json").read_text())
    assert trusted.returncode == 0
    assert poisoned.score < poisoned.max_score


@pytest.mark.slow
@pytest.mark.usefixtures("require_root_isolation")
def test_a_non_editable_install_grades_with_full_isolation(tmp_path: Path) -> None:
    # `pip install .` puts the grader in site-packages beside jax: the jail must still show
    # the submission the packages it needs (it once hid all of site-packages).
    repo = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"
    source.mkdir()
    for name in ("grader", "pyproject.toml", "README.md"):
        if (repo / name).is_dir():
            shutil.copytree(
                repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(repo / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import grader; print(grader.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "site-packages" in site
    # Installed from a wheel, the grader carries no problems: it says how to point at them.
    listing = subprocess.run(
        [str(venv / "bin" / "grader"), "problems"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert listing.returncode == 2
    assert "--problems-dir or $GRADER_PROBLEMS_DIR" in " ".join(listing.stderr.split())
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            str(venv / "bin" / "grader"),
            "check",
            str(repo / "submissions" / "example.py"),
            "--problems-dir",
            str(repo / "problems"),
            "--reference-dir",
            str(repo / "reference"),
            "--require-sandbox",
            "--seed",
            "7",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = Report.model_validate_json(report_path.read_text())
    assert report.isolation == "full"
    assert report.score == report.max_score


@pytest.mark.usefixtures("require_root_isolation")
def test_cgroups_left_by_a_killed_grader_are_cleaned_up() -> None:
    if (why := cgroups.unavailable()) is not None:
        pytest.skip(f"no cgroups here: {why}")
    # A grader killed with SIGKILL leaves its run cgroups, maybe with a process in them.
    group = cgroups.RunCgroup.create(256 * 1024 * 1024, 16)
    dead_owner = 4_194_304 + 7  # above the largest pid Linux hands out
    stale = tuple(f.with_name(f"run-{dead_owner}-0") for f in group.folders)
    for folder, current in zip(stale, group.folders, strict=True):
        current.rename(folder)
    sleeper = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f"for f in {' '.join(str(f / 'cgroup.procs') for f in stale)}; "
            'do echo $$ > "$f"; done; exec sleep 60',
        ]
    )
    try:
        deadline = time.monotonic() + 5
        while not all((f / "cgroup.procs").read_text().strip() for f in stale):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        cgroups._layout.cache_clear()
        assert cgroups.unavailable() is None
        assert not any(folder.exists() for folder in stale)
        assert sleeper.wait(timeout=5) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


KEYRING_AND_CGROUPS = """\
import ctypes, os
_libc = ctypes.CDLL(None, use_errno=True)

def vector_stats(x, k):
    # add_key("user", ...) into the user keyring: keys outlive every namespace.
    result = _libc.syscall(248, b"user", b"stash", b"data", 4, -4)
    return [result, ctypes.get_errno(), len(os.listdir("/sys/fs/cgroup"))]
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86_64")
@pytest.mark.usefixtures("require_root_isolation")
def test_keyring_calls_are_refused_and_other_runs_cgroups_hidden(tmp_path: Path) -> None:
    source = tmp_path / "keys.py"
    source.write_text(KEYRING_AND_CGROUPS)
    out = tmp_path / "report.json"
    subprocess.run(
        [*GRADER, "check", str(source), *TOY_DIRS, "--seed", "1", "--staff", "--json", str(out)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    report = Report.model_validate_json(out.read_text())
    got = [o.got for o in report.cases[0].outputs]
    assert got == [-1.0, 1.0, 0.0]  # add_key failed with EPERM; /sys/fs/cgroup is empty


def test_long_names_are_skipped_and_never_stop_a_batch(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(CORRECT)
    (folder / f"{'L' * 241}.py").write_text(CORRECT)
    (folder / f"{'M' * 200}.py").write_text(CORRECT)
    out = tmp_path / "out"
    # In process, on InProcessRunners: what the batch does with the names is the subject.
    args = ["batch", str(folder), "--out", str(out), "--seed", "3", *TOY_DIRS]
    result = CliRunner().invoke(cli, args, obj=World.of(fake_setup()))
    assert result.exit_code == 0, result.output
    assert "file name longer than 200 bytes" in result.stderr
    with (out / "grades.csv").open(newline="") as stream:
        students = {row["student"] for row in csv.DictReader(stream)}
    assert {"alice", "M" * 200} <= students
    assert (out / f"{'M' * 200}.json").exists()


INFINITE_LOOP = """\
def vector_stats(x, k):
    while True:
        pass
"""


@pytest.mark.slow
@pytest.mark.usefixtures("require_root_isolation")
def test_ctrl_c_stops_a_batch_at_once_keeps_reports_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(CORRECT)
    (folder / "loop.py").write_text(INFINITE_LOOP)
    out = tmp_path / "out"
    command = [*GRADER, "batch", str(folder), "--out", str(out), "--seed", "3", *TOY_DIRS]
    process = subprocess.Popen(
        [*command, "--workers", "2"], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until alice is graded; the loop then runs alone
        if "alice" in line:
            break
    time.sleep(1.0)
    assert process.poll() is None
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    interrupted = time.monotonic()
    code = process.wait(timeout=30)
    stopped_after = time.monotonic() - interrupted
    rest = process.stderr.read()
    process.stderr.close()
    assert code == 130, rest
    assert stopped_after < 5, f"took {stopped_after:.1f} s to stop"
    assert "Interrupted" in rest and "Run the same command again" in rest
    assert (out / "staff" / "alice.json").exists()
    assert not (out / "staff" / "loop.json").exists()
    assert not (out / "grades.csv").exists()  # no gradebook of a half-graded class

    resumed = subprocess.run(
        [*GRADER, "batch", str(folder), "--out", str(out), *TOY_DIRS],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "1 graded now, 1 unchanged since the last run" in resumed.stderr  # alice reused
    assert (out / "grades.csv").exists()


@pytest.mark.usefixtures("require_root_isolation")
def test_kill_uid_ends_a_process_whose_main_thread_alone_has_ended() -> None:
    """Red team, round 3: a process that ends only its main thread (SYS_exit) reads as a
    zombie in /proc while its other threads run on; kill_uid took it for gone and it outlived
    the grader."""
    uid = RUN_UID_BASE + 424_251
    code = (
        "import ctypes, os, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=False).start()\n"
        f"os.setresgid({uid}, {uid}, {uid}); os.setgroups([]); os.setresuid({uid}, {uid}, {uid})\n"
        "ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: this thread only\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status = Path(f"/proc/{process.pid}/status").read_text()
            if "State:\tZ" in status and f"Uid:\t{uid}" in status:
                break
            time.sleep(0.05)
        assert "Threads:\t2" in status, status
        assert uid_pids(uid, live=True) == [process.pid]
        assert kill_uid(uid, sys.executable, timeout=5)
        assert process.wait(timeout=5) == -9
    finally:
        process.kill()
        process.wait()
