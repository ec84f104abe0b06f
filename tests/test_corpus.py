"""The submission corpora: every correct style gets full marks, every wrong one loses points."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SUBMISSIONS, Grade
from helpers import assert_graded_as_labelled

from grader.models import Status
from grader.problems import Problem

CORRECT = sorted((SUBMISSIONS / "correct").glob("*.py"))
WRONG = sorted((SUBMISSIONS / "wrong").glob("*.py"))
# Grading seeds for the correct corpus: each draws 17 cases with their own seeds and shapes.
SEEDS = [1, 20261125, 4_000_000_007]


def test_corpora_are_big_enough() -> None:
    assert len(CORRECT) >= 6
    assert len(WRONG) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_style_gets_full_marks(
    path: Path, seed: int, problem: Problem, grade_file: Grade
) -> None:
    report = grade_file(path, problem, seed)
    failures = [f"{c.name}: {c.message}" for c in report.cases if not c.passed]
    assert report.status is Status.GRADED, report.message
    assert report.score == report.max_score, failures
    # Float noise must stay far inside the tolerance, not just inside it.
    worst = max(
        check.error_ratio for case in report.cases for check in case.outputs if check.tolerance > 0
    )
    assert worst < 0.1, f"a correct style used {worst:.0%} of the tolerance"
    assert report.hints == ()
    assert report.peak_memory_mib is not None and report.peak_memory_mib > 100  # jax loaded


@pytest.mark.slow
@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.stem)
def test_wrong_submission_loses_points_for_the_right_output(
    path: Path, problem: Problem, grade_file: Grade
) -> None:
    assert_graded_as_labelled(path, grade_file(path, problem, seed=11))


@pytest.mark.slow
def test_one_percent_error_fails_every_case(problem: Problem, grade_file: Grade) -> None:
    report = grade_file(SUBMISSIONS / "wrong" / "one_percent.py", problem, seed=11)
    assert report.score == 0, [c.message for c in report.cases if c.passed]
