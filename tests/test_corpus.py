"""The submission corpora: every correct style gets full marks, every wrong one loses points.

Graded in this process (the corpus is the suite's own code; what is checked is the grading, not
the sandbox), but for one end-to-end run in a real sandbox and the file that turns x64 on in
the process it runs in."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SUBMISSIONS
from fakes import in_process, sandboxed
from helpers import assert_graded_as_labelled

from grader.models import Report, Status
from grader.problems import Problem

CORRECT = sorted((SUBMISSIONS / "correct").glob("*.py"))
WRONG = sorted((SUBMISSIONS / "wrong").glob("*.py"))
# Grading seeds for the correct corpus: each draws 17 cases with their own seeds and shapes.
SEEDS = [1, 20261125, 4_000_000_007]


def test_corpora_are_big_enough() -> None:
    assert len(CORRECT) >= 6
    assert len(WRONG) >= 10


def assert_full_marks_far_inside_tolerance(report: Report) -> None:
    failures = [f"{c.name}: {c.message}" for c in report.cases if not c.passed]
    assert report.status is Status.GRADED, report.message
    assert report.score == report.max_score, failures
    # Float noise must stay far inside the tolerance, not just inside it.
    worst = max(
        check.error_ratio for case in report.cases for check in case.outputs if check.tolerance > 0
    )
    assert worst < 0.1, f"a correct style used {worst:.0%} of the tolerance"
    assert report.hints == ()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_style_gets_full_marks(path: Path, seed: int, problem: Problem) -> None:
    assert_full_marks_far_inside_tolerance(in_process(path, problem, seed))


@pytest.mark.slow
def test_a_correct_style_gets_full_marks_in_the_sandbox(problem: Problem) -> None:
    """The end-to-end one: a correct file graded in the real sandbox `grader check` uses."""
    report = sandboxed(SUBMISSIONS / "correct" / "reference_style.py", problem, SEEDS[0])
    assert_full_marks_far_inside_tolerance(report)
    assert report.peak_memory_mib is not None and report.peak_memory_mib > 100  # jax loaded


# Turns x64 on in the process it runs in (and only a worker reports that it did).
IN_ITS_OWN_PROCESS = {"x64_enabled"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in IN_ITS_OWN_PROCESS else p for p in WRONG],
    ids=lambda p: p.stem,
)
def test_wrong_submission_loses_points_for_the_right_output(path: Path, problem: Problem) -> None:
    grade_file = sandboxed if path.stem in IN_ITS_OWN_PROCESS else in_process
    assert_graded_as_labelled(path, grade_file(path, problem, seed=11))


def test_one_percent_error_fails_every_case(problem: Problem) -> None:
    report = in_process(SUBMISSIONS / "wrong" / "one_percent.py", problem, seed=11)
    assert report.score == 0, [c.message for c in report.cases if c.passed]
