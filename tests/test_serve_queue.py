"""Grading through a real Redis queue: `grader serve --queue`, `grader worker`, and
`grader batch --queue`, with a worker killed mid-grading, and messages forged into Redis.

`test_a_killed_worker_and_server_lose_nothing` is the end-to-end test of the queue (a real
server and real workers grading in the sandbox, killed); elsewhere a worker is
`queue.run_worker` in a thread of this process on in-process runners (`in_process_worker`),
and `grader batch` runs in process (`helpers.invoke`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import TOY_DIRS, in_process_setup
from helpers import invoke
from serving import GRADER, TOY, Redis, Server, make_roster

from grader.engine import Catalog
from grader.errors import UsageError
from grader.grading import grader_fault_report
from grader.problems import load_problem
from grader.service import queue

CORRECT = (TOY / "submissions" / "correct.py").read_bytes()
# Wrong on every case whatever the seed (the count is off by one): wrong_peak.py gets full
# marks on about 1 seed in 20 the service draws (no case's peak is negative).
WRONG = b"def vector_stats(x, k):\n    return [len(x) + 1, float(sum(x)) * k, 0.0]\n"
SECRET = "queue-secret-for-tests-" + "0123456789abcdef"
OTHER_SECRET = "another-queue-secret-" + "fedcba9876543210"


@pytest.fixture
def redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Redis]:
    # The server, workers and batches of a test share the queue's secret (inherited).
    monkeypatch.setenv(queue.SECRET_ENV, SECRET)
    monkeypatch.delenv(queue.SECRET_FILE_ENV, raising=False)
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


@contextmanager
def in_process_worker(url: str, threads: int = 1) -> Iterator[None]:
    """`grader worker` on the toy problem as a thread of this process, grading on in-process
    runners; stopped (as by SIGTERM) on leaving."""
    stopping = threading.Event()
    catalog = Catalog(TOY / "problems", TOY / "reference")
    options = {"setup": in_process_setup(), "threads": threads, "catalog": catalog}
    thread = threading.Thread(
        target=queue.run_worker, args=(url,), kwargs={**options, "stop": stopping}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the in-process worker did not stop"


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)


@pytest.mark.slow
def test_a_killed_worker_and_server_lose_nothing(tmp_path: Path, redis: Redis) -> None:
    """The end-to-end test of the queue: real processes, graded in the sandbox, killed."""
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
    setup = in_process_setup()
    batch = ("batch", str(folder), "--seed", "3", *TOY_DIRS)
    with in_process_worker(redis.url, threads=2):
        queued = invoke(setup, *batch, "--out", str(tmp_path / "queued"), "--queue", redis.url)
    assert queued.exit_code == 0, queued.stderr
    local = invoke(setup, *batch, "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.stderr
    queued_csv = (tmp_path / "queued" / "grades.csv").read_text()
    assert queued_csv == (tmp_path / "local" / "grades.csv").read_text()
    assert queued_csv.count("\n") == 4  # header and three students
    for name in ("ana.json", "ben.json", "cy.json", "staff/ana.json"):
        assert (tmp_path / "queued" / name).is_file()
    # A rerun reuses every report, as a local batch does (no worker needed).
    again = invoke(setup, "batch", str(folder), "--out", str(tmp_path / "queued"), "--queue",
                   redis.url, *TOY_DIRS)  # fmt: skip
    assert again.exit_code == 0 and "0 graded now, 3 unchanged" in again.stderr


# --------------------------------------------------------------------------------------------
# Only what is signed with the queue's secret counts (issue 22 item 6)


def _full_marks_report(tmp_path: Path) -> str:
    """A staff report with full marks, as anyone could write it into Redis."""
    problem = load_problem(
        "vector_stats", problems_dir=TOY / "problems", reference_dir=TOY / "reference"
    )
    path = tmp_path / "forged.py"
    path.write_bytes(WRONG)
    report = grader_fault_report(
        path, problem=problem, seed=1, isolation="basic", error=RuntimeError("x")
    )
    return report.model_copy(update={"score": report.max_score}).model_dump_json()


def _reply_queue(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "data" / "service.sqlite3") as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
    return f"grader-results-{row[0]}"


@pytest.mark.slow
def test_a_report_forged_into_redis_finishes_nothing(tmp_path: Path, redis: Redis) -> None:
    tokens = make_roster(tmp_path)
    server = Server(tmp_path, tokens, extra=("--queue", redis.url))
    server.start()
    try:
        submission_id = server.submit("alice", "wrong.py", WRONG).json()["id"]
        reply_to = _reply_queue(tmp_path)
        forged = _full_marks_report(tmp_path)
        broker = queue.make_broker(redis.url)
        try:
            # Unsigned, as before; signed with another secret; and signed with the right one
            # but bound to another job (a result replayed from elsewhere).
            unsigned = {"id": submission_id, "kind": "done", "report": forged}
            queue._send(broker, reply_to, queue.RESULT_ACTOR, unsigned)
            body = {**unsigned, "job": queue.job_binding(submission_id, "0" * 64, 1, reply_to)}
            for secret in (OTHER_SECRET, SECRET):
                sealed = queue.Signer(secret.encode()).seal("result", body)
                queue._send(broker, reply_to, queue.RESULT_ACTOR, sealed)
        finally:
            broker.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "answers another job" not in server.log_text():
            time.sleep(0.1)
        log = server.log_text()
        assert log.count("dropped a message on") == 2, log
        assert "answers another job (a replay)" in log, log
        found = server.request(
            "GET", f"/api/submissions/{submission_id}", token=tokens["alice"]
        ).json()
        assert found["state"] == "queued" and found["report"] is None
        # A worker then grades it: the real score, not the forged one.
        with in_process_worker(redis.url):
            report = server.wait_done("alice", submission_id)["report"]
        assert report["status"] == "graded", report
        assert report["score"] < report["max_score"], report
    finally:
        server.kill()


def _hash_text(url: str, name: str) -> str:
    import redis as redis_client

    client = redis_client.Redis.from_url(url)
    try:
        values = client.hvals(f"dramatiq:{name}.msgs")
        return "".join(value.decode() for value in values)
    finally:
        client.close()


@pytest.mark.slow
def test_a_worker_grades_only_signed_jobs_of_known_problems(
    tmp_path: Path, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # An evil spec beside the problems, whose reference is any file: a path as a problem id
    # reached it.
    evil = tmp_path / "anywhere"
    evil.mkdir()
    spec = (TOY / "problems" / "vector_stats.toml").read_text()
    spec = spec.replace('id = "vector_stats"', 'id = "evil"', 1)
    (evil / "evil_ref.py").write_bytes((TOY / "reference" / "vector_stats.py").read_bytes())
    (evil / "evil.toml").write_text(spec.replace('"vector_stats.py"', f'"{evil}/evil_ref.py"'))
    evil_id = os.path.relpath(evil / "evil", TOY / "problems")
    reply_to = "grader-results-test"

    def job(job_id: str, problem: str) -> queue.Job:
        import base64

        return queue.Job(
            id=job_id,
            problem=problem,
            version="1",
            suffix=".py",
            file_name="s.py",
            content=base64.b64encode(CORRECT).decode(),
            seed=5,
            reply_to=reply_to,
        )

    version = load_problem(
        "vector_stats", problems_dir=TOY / "problems", reference_dir=TOY / "reference"
    ).spec.version
    signer = queue.Signer(SECRET.encode())
    broker = queue.make_broker(redis.url)
    try:
        unsigned = job("unsigned-job", "vector_stats").model_copy(update={"version": version})
        queue._send(broker, queue.JOBS, queue.GRADE_ACTOR, unsigned.model_dump())
        foreign = job("foreign-job", "vector_stats").model_copy(update={"version": version})
        sealed = queue.Signer(OTHER_SECRET.encode()).seal("job", foreign.model_dump())
        queue._send(broker, queue.JOBS, queue.GRADE_ACTOR, sealed)
        path_job = job("path-job", evil_id).model_copy(update={"version": version})
        queue._send(
            broker, queue.JOBS, queue.GRADE_ACTOR, signer.seal("job", path_job.model_dump())
        )
        good = job("good-job", "vector_stats").model_copy(update={"version": version})
        queue._send(broker, queue.JOBS, queue.GRADE_ACTOR, signer.seal("job", good.model_dump()))
    finally:
        broker.close()
    caplog.set_level(logging.INFO)
    with in_process_worker(redis.url):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            results = _hash_text(redis.url, reply_to)
            if '"done"' in results and not _hash_text(redis.url, queue.JOBS):
                break  # the good job answered, and every job acknowledged
            time.sleep(0.2)
    log = caplog.text
    assert "good-job" in results, log
    for bad in ("unsigned-job", "foreign-job", "path-job"):
        assert bad not in results, log
    assert log.count("dropped a job that is not signed with this queue's secret") == 2, log
    assert "dropped a signed job that is malformed" in log and "never a path" in log, log


def test_the_queue_refuses_to_start_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(queue.SECRET_ENV, raising=False)
    monkeypatch.delenv(queue.SECRET_FILE_ENV, raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_QUEUE_SECRET")}
    done = subprocess.run(
        [*GRADER, "worker", "--queue", "redis://127.0.0.1:1/0", "--allow-basic-isolation"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "GRADER_QUEUE_SECRET" in done.stderr and "secrets.token_hex(32)" in done.stderr
    monkeypatch.setenv(queue.SECRET_ENV, "short")
    with pytest.raises(UsageError, match="at least 32"):
        queue.load_secret()
    secret_file = tmp_path / "queue-secret"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.delenv(queue.SECRET_ENV)
    monkeypatch.setenv(queue.SECRET_FILE_ENV, str(secret_file))
    assert queue.load_secret() == SECRET.encode()


def test_a_message_is_bound_to_its_secret_kind_and_body() -> None:
    signer = queue.Signer(SECRET.encode())
    body = {"id": "abc", "kind": "done", "report": None, "job": "j" * 64}
    sealed = signer.seal("result", body)
    assert signer.open("result", sealed) == body
    assert signer.open("job", sealed) is None  # a result is no job
    assert signer.open("result", {**sealed, "kind": "job"}) is None
    assert signer.open("result", {**sealed, "body": {**body, "id": "abd"}}) is None
    assert signer.open("result", {**sealed, "mac": sealed["mac"].upper()}) is None
    assert queue.Signer(OTHER_SECRET.encode()).open("result", sealed) is None
    for garbage in (None, [], "x", {"v": 1}, {**sealed, "body": [1]}, {**sealed, "mac": 5}):
        assert signer.open("result", garbage) is None


def test_a_queue_with_an_acl_user_and_password(tmp_path: Path) -> None:
    password = "pw-" + "correct-horse-battery"
    server = Redis(tmp_path / "redis", password=password)
    try:
        queue.make_broker(server.url).close()  # redis://grader:PASSWORD@...
        wrong = server.url.replace(password, "wrong-password-xyz")
        with pytest.raises(UsageError, match="cannot reach the queue") as error:
            queue.make_broker(wrong)
        assert "wrong-password-xyz" not in str(error.value)
        assert "grader:***@127.0.0.1" in str(error.value)
    finally:
        server.stop()


def test_a_queue_over_tls(tmp_path: Path) -> None:
    server = Redis(tmp_path / "redis", password="pw-" + "over-tls-battery", tls=True)
    try:
        assert server.url.startswith("rediss://grader:")
        broker = queue.make_broker(server.url)  # rediss://...?ssl_ca_certs=CA
        try:
            sealed = queue.Signer(SECRET.encode()).seal("job", {"id": "over-tls"})
            queue._send(broker, queue.JOBS, queue.GRADE_ACTOR, sealed)
        finally:
            broker.close()
        assert "over-tls" in _hash_text(server.url, queue.JOBS)
        # Without our CA, the server's certificate is not trusted: a clear refusal.
        untrusted = server.url.partition("?")[0]
        with pytest.raises(
            UsageError, match="cannot reach the queue at rediss://grader:\\*\\*\\*@"
        ):
            queue.make_broker(untrusted)
    finally:
        server.stop()
