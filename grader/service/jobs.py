"""Grading one stored submission: the same for the local pool and for a queue worker.

The bytes are written to a private temporary folder under a fixed name with the upload's
suffix (`submission.py` or `submission.ipynb`): nothing of the student's file name reaches the
file system. Grading is `grader.grading.check`, the one-file path `grader check` and the
batch's graders share, with the submission's own seed. Whatever goes wrong on the grader's side
becomes the student's report with status `crashed` saying so: a job always ends in a report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.grading import check, grader_fault_report
from grader.models import Report
from grader.notebook import SUBMISSION_SUFFIXES
from grader.problems import Problem
from grader.run import Cancelled, Runner

ALLOWED_SUFFIXES = SUBMISSION_SUFFIXES  # what `grader check` and `grader batch` grade


def grade_bytes(
    content: bytes,
    *,
    suffix: str,
    file_name: str,
    problem: Problem,
    seed: int,
    runner: Runner,
    trust_caches: bool,
) -> Report:
    """The staff report of one submission (never raises but Cancelled, when staff stop it)."""
    if suffix not in ALLOWED_SUFFIXES:
        raise ValueError(f"suffix {suffix!r} is not one of {ALLOWED_SUFFIXES}")
    with tempfile.TemporaryDirectory(prefix="grader-serve-") as folder:
        path = Path(folder) / f"submission{suffix}"
        path.write_bytes(content)
        try:
            return check(
                path,
                problem=problem,
                seed=seed,
                runner=runner,
                display_name=file_name,
                trust_caches=trust_caches,
            )
        except Cancelled:
            raise
        except Exception as exc:  # a job never dies without a report
            return fault_report(
                path, problem=problem, seed=seed, runner=runner, error=exc, file_name=file_name
            )


def fault_report(
    path: Path, *, problem: Problem, seed: int, runner: Runner, error: Exception, file_name: str
) -> Report:
    """`crashed`, saying the grader failed (named after the upload, not the private copy)."""
    report = grader_fault_report(
        path, problem=problem, seed=seed, isolation=runner.isolation(), error=error
    )
    submission = report.submission.model_copy(update={"path": file_name})
    return report.model_copy(update={"submission": submission})
