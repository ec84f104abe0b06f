"""The service's store and local pool in-process (FakeRunner where the sandbox is not the point):
exactly-once finishing, the hourly window, and jobs that always end in a report."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import TOY

from grader.engine import Grader, Setup
from grader.models import Isolation, Limits, Report, RunRequest
from grader.problems import Problem
from grader.run import FakeRunner, RunResult
from grader.run.fake import InProcessRunner
from grader.service.pool import MAX_ATTEMPTS, LocalPool, record
from grader.service.store import HOUR, MAX_WAITING, RateLimited, StillWaiting, Store, Submission

CORRECT = (TOY / "submissions" / "correct.py").read_bytes()


def add(store: Store, student: str = "ana", *, per_hour: int | None = None, now: float = 0.0):
    return store.add(
        student=student,
        problem="vector_stats",
        file_name="a.py",
        suffix=".py",
        content=CORRECT,
        sha256="0" * 64,
        seed=5,
        per_hour=per_hour,
        now=now or time.time(),
    )


def wait_done(store: Store, submission_id: str) -> Submission:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = store.get(submission_id)
        assert found is not None
        if found.state == "done":
            return found
        time.sleep(0.05)
    raise AssertionError("not finished")


def test_a_submission_is_finished_once(tmp_path: Path, toy: Problem) -> None:
    store = Store(tmp_path)
    submission = add(store)
    assert isinstance(submission, Submission) and submission.state == "queued"
    claimed = store.claim(("vector_stats",))
    assert claimed is not None and claimed.state == "running" and claimed.attempts == 1
    assert store.claim(("vector_stats",)) is None  # nobody else gets it
    first = store.finish(submission.id, report_json="{1}", score=1, max_score=8, status="graded")
    again = store.finish(submission.id, report_json="{2}", score=8, max_score=8, status="graded")
    assert first and not again
    done = store.get(submission.id)
    assert done is not None and done.report == "{1}" and done.score == 1
    # A restart requeues only what was running.
    other = add(store)
    assert isinstance(other, Submission)
    store.claim(("vector_stats",))
    assert store.requeue_running() == 1
    assert store.get(other.id).state == "queued"  # type: ignore[union-attr]
    assert store.get(submission.id).state == "done"  # type: ignore[union-attr]


def test_the_hourly_limit_is_a_sliding_window(tmp_path: Path) -> None:
    store = Store(tmp_path)
    start = 1_000_000.0
    assert isinstance(add(store, per_hour=2, now=start), Submission)
    assert isinstance(add(store, per_hour=2, now=start + 600), Submission)
    refused = add(store, per_hour=2, now=start + 1200)
    assert isinstance(refused, RateLimited) and refused.next_allowed == start + HOUR
    assert isinstance(add(store, "ben", per_hour=2, now=start + 1200), Submission)
    assert isinstance(add(store, per_hour=2, now=start + HOUR + 1), Submission)


class Exploding(FakeRunner):
    """A runner that fails on the grader's side (say the sandbox broke)."""

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        raise OSError("the sandbox could not start")

    def isolation(self) -> Isolation:
        return "full"


def test_every_job_ends_in_a_report(tmp_path: Path, toy: Problem) -> None:
    store = Store(tmp_path / "data")
    poison = add(store)
    broken = add(store, "ben")
    assert isinstance(poison, Submission) and isinstance(broken, Submission)
    # A file that was being graded at MAX_ATTEMPTS kills of the server in a row.
    for _ in range(MAX_ATTEMPTS):
        store.claim(("vector_stats",))
        store.requeue_running()
    store.claim(("vector_stats",))  # and the last kill, with it running: now ben's is first
    grader = Grader(Setup(Exploding(), InProcessRunner()))
    pool = LocalPool(store, {"vector_stats": toy}, grader=grader, workers=1)
    pool.start()
    try:
        poisoned = wait_done(store, poison.id)
        crashed = wait_done(store, broken.id)
    finally:
        pool.stop()
    assert poisoned.status == "crashed" and "cut short 3 times" in (poisoned.report or "")
    assert crashed.status == "crashed"
    assert "The grader could not grade this file (OSError" in (crashed.report or "")
    assert '"path":"a.py"' in (crashed.report or "")  # named after the upload


def test_record_keeps_the_first_report(tmp_path: Path, toy: Problem) -> None:
    store = Store(tmp_path)
    submission = add(store)
    assert isinstance(submission, Submission)
    grader = Grader(Setup(FakeRunner(), InProcessRunner()))
    pool = LocalPool(store, {"vector_stats": toy}, grader=grader, workers=1)
    pool.start()
    try:
        done = wait_done(store, submission.id)
    finally:
        pool.stop()
    assert done.status == "missing_function"  # FakeRunner() has no function
    report = Report.model_validate_json(done.report or "")
    assert not record(store, submission.id, report)


def test_one_student_cannot_fill_the_queue(tmp_path: Path) -> None:
    """At most MAX_WAITING waiting per student and problem; and the workers take a student with
    nothing being graded before anyone's second file (found by a red-team pass: one student's
    five slow files held a classmate's 1-second grading for 84 s)."""
    store = Store(tmp_path)
    mallory = [add(store, "mallory") for _ in range(MAX_WAITING)]
    assert all(isinstance(s, Submission) for s in mallory)
    refused = add(store, "mallory")
    assert isinstance(refused, StillWaiting) and refused.waiting == MAX_WAITING
    alice = add(store, "alice")
    assert isinstance(alice, Submission)
    first = store.claim(("vector_stats",))
    second = store.claim(("vector_stats",))
    assert first is not None and first.student == "mallory"
    assert second is not None and second.id == alice.id  # before mallory's second
