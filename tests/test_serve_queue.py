"""Grading through a real Redis queue: `grader serve --queue`, `grader worker`, and
`grader batch --queue`, with a worker killed mid-grading."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TOY_DIRS
from serving import GRADER, TOY, Redis, Server, make_roster

CORRECT = (TOY / "submissions" / "correct.py").read_bytes()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path / "redis")
    yield server
    server.stop()


def start_worker(folder: Path, url: str, name: str, threads: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRADER_QUEUE_HEARTBEAT_SECONDS": "2",  # a killed worker's job comes back quickly
        "HOME": str(folder),
        "GRADER_CACHE_DIR": str(folder / "cache"),
    }
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [*GRADER, "worker", "--queue", url, "--workers", str(threads), *TOY_DIRS],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)


@pytest.mark.slow
def test_a_killed_worker_and_server_lose_nothing(tmp_path: Path, redis: Redis) -> None:
    tokens = make_roster(tmp_path)
    server = Server(tmp_path, tokens, extra=("--queue", redis.url))
    server.start()
    first = start_worker(tmp_path, redis.url, "worker-1")
    second = None
    slow = b"import time\ntime.sleep(2)\n" + CORRECT
    try:
        students = ["alice", "alice", "bob", "bob"]  # (3 may wait at once per student)
        accepted = [
            server.submit(student, f"s{n}.py", slow).json()["id"]
            for n, student in enumerate(students)
        ]
        database = tmp_path / "data" / "service.sqlite3"
        deadline = time.monotonic() + 60
        running = 0
        while time.monotonic() < deadline and not running:
            with sqlite3.connect(database) as db:
                running = db.execute(
                    "SELECT COUNT(*) FROM submissions WHERE state = 'running'"
                ).fetchone()[0]
            time.sleep(0.1)
        assert running, server.log_text()
        stop(first)  # SIGKILL, mid-grading: its job is not acknowledged
        server.kill()  # the server too: results wait in Redis until it is back
        second = start_worker(tmp_path, redis.url, "worker-2", threads=2)
        time.sleep(1)
        server.start()
        for student, submission_id in zip(students, accepted, strict=True):
            report = server.wait_done(student, submission_id)["report"]
            assert report["score"] == report["max_score"]
    finally:
        stop(first)
        if second is not None:
            stop(second)
        server.kill()
    with sqlite3.connect(database) as db:
        rows = list(db.execute("SELECT id, state FROM submissions"))
    assert sorted(r[0] for r in rows) == sorted(accepted)
    assert {state for _, state in rows} == {"done"}
    log = server.log_text()
    for submission_id in accepted:
        assert log.count(f"graded submission {submission_id}") == 1  # finished once


@pytest.mark.slow
def test_batch_through_the_queue_matches_a_local_batch(tmp_path: Path, redis: Redis) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copyfile(TOY / "submissions" / "correct.py", folder / "ana.py")
    shutil.copyfile(TOY / "submissions" / "wrong_peak.py", folder / "ben.py")
    (folder / "cy.py").write_text("def vector_stats(x, k):\n    return [len(x) + 1, 0.0, 0.0]\n")
    (folder / "notes.txt").write_text("skipped alike")
    worker = start_worker(tmp_path, redis.url, "worker", threads=2)
    try:
        queued = subprocess.run(
            [
                *GRADER,
                "batch",
                str(folder),
                "--out",
                str(tmp_path / "queued"),
                "--seed",
                "3",
                "--queue",
                redis.url,
                *TOY_DIRS,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
    finally:
        stop(worker, signal.SIGTERM)
    assert queued.returncode == 0, queued.stderr
    local = subprocess.run(
        [*GRADER, "batch", str(folder), "--out", str(tmp_path / "local"), "--seed", "3", *TOY_DIRS],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert local.returncode == 0, local.stderr
    queued_csv = (tmp_path / "queued" / "grades.csv").read_text()
    assert queued_csv == (tmp_path / "local" / "grades.csv").read_text()
    assert queued_csv.count("\n") == 4  # header and three students
    for name in ("ana.json", "ben.json", "cy.json", "staff/ana.json"):
        assert (tmp_path / "queued" / name).is_file()
    # A rerun reuses every report, as a local batch does.
    again = subprocess.run(
        [
            *GRADER,
            "batch",
            str(folder),
            "--out",
            str(tmp_path / "queued"),
            "--queue",
            redis.url,
            *TOY_DIRS,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert again.returncode == 0 and "0 graded now, 3 unchanged" in again.stderr
