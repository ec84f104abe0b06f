"""Grading above the process boundary, with the in-process FakeRunner: milliseconds a test."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import TOY
from fakes import reference

from grader.grading import grade
from grader.models import CaseReason, Status
from grader.problems import Problem
from grader.run import FakeRunner, LoadFailure


def correct(x: object, k: int) -> list[float]:
    values = [float(v) for v in x]  # type: ignore[attr-defined]
    return [len(values), sum(values) * k, max(abs(v) for v in values)]


def test_fake_runner_grades_in_milliseconds(toy: Problem) -> None:
    expected = reference(toy, 1)
    runner = FakeRunner(correct)
    started = time.monotonic()
    report = grade(
        TOY / "submissions" / "correct.py", problem=toy, seed=1, expected=expected, runner=runner
    )
    assert time.monotonic() - started < 0.5
    assert report.status is Status.GRADED
    assert report.score == report.max_score
    assert report.run_limits == "cgroup"
    assert len(runner.requests) == 1


def test_fake_runner_reports_exceptions_and_invalid_returns(toy: Problem) -> None:
    def broken(x: object, k: int) -> object:
        if k == 0:
            raise ValueError("k must not be zero")
        return "nonsense"

    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=1,
        expected=reference(toy, 1),
        runner=FakeRunner(broken),
    )
    reasons = {case.reason for case in report.cases}
    assert reasons == {CaseReason.EXCEPTION, CaseReason.INVALID_OUTPUT}
    assert report.score == 0


def test_fake_runner_load_failure_becomes_the_status(toy: Problem, tmp_path: Path) -> None:
    source = tmp_path / "s.py"
    source.write_text("def vector_stats(x, k):\n    return [0, 0, 0]\n")
    failure = LoadFailure(Status.IMPORT_ERROR, "s.py raised ImportError while being loaded")
    report = grade(
        source,
        problem=toy,
        seed=1,
        expected=reference(toy, 1),
        runner=FakeRunner(load_failure=failure),
    )
    assert report.status is Status.IMPORT_ERROR
    assert report.message == failure.message


def test_an_exception_named_like_a_builtin_is_not_taken_for_it(toy: Problem) -> None:
    class MemoryError(Exception):  # a student's class, named to mislead
        pass

    def lies(x: object, k: int) -> object:
        raise MemoryError("out of memory")

    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=1,
        expected=reference(toy, 1),
        runner=FakeRunner(lies),
    )
    assert {case.reason for case in report.cases} == {CaseReason.EXCEPTION}
    assert report.status is Status.GRADED
    assert report.error is None
    assert all("test_fake_runner.MemoryError" in case.message for case in report.cases)


def test_an_exception_message_with_lone_surrogates_is_carried(toy: Problem) -> None:
    def odd(x: object, k: int) -> object:
        raise ValueError("bad \udc80 value")

    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=1,
        expected=reference(toy, 1),
        runner=FakeRunner(odd),
    )
    assert all(case.reason is CaseReason.EXCEPTION for case in report.cases)
    assert "bad \\udc80 value" in report.cases[0].message
