"""A student's fault is a report with its own status and a message a student understands.

Faults the worker's own code reports (load failures, exceptions, invalid outputs) are graded in
this process (`grade_in_process`); those whose subject is the process (printing over the
protocol's stream, an endless loop, the process exiting) in the real sandbox (`grade_file`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SUBMISSIONS, Grade

from grader.models import CaseReason, Limits, Status
from grader.problems import Problem

FAULTS = SUBMISSIONS / "faults"

# file, status, fragments the message must contain
LOAD_FAILURES = [
    ("syntax_error.py", Status.SYNTAX_ERROR, ["line 6", "syntax_error.py"]),
    ("latin1.py", Status.ENCODING_ERROR, ["line 1", "UTF-8"]),
    ("empty.py", Status.EMPTY_FILE, ["empty"]),
    ("import_missing.py", Status.IMPORT_ERROR, ["'definitely_not_installed_pkg'", "not installed"]),
    ("raise_at_import.py", Status.IMPORT_ERROR, ["KeyError", "line 3", "while being loaded"]),
    ("exit_at_import.py", Status.IMPORT_ERROR, ["exit(0)", "line 5"]),
    ("missing_function.py", Status.MISSING_FUNCTION, ["'graphdef_vs_state'", "'graphdef_vs_stat'"]),
    ("not_a_function.py", Status.MISSING_FUNCTION, ["list, not a function"]),
    (
        "wrong_signature.py",
        Status.BAD_SIGNATURE,
        ["(seed, x, hidden)", "def graphdef_vs_state(seed, x, features, hidden)"],
    ),
]


@pytest.mark.parametrize(
    ("name", "status", "fragments"), LOAD_FAILURES, ids=[row[0] for row in LOAD_FAILURES]
)
def test_file_that_cannot_load_gets_its_own_status(
    name: str, status: Status, fragments: list[str], problem: Problem, grade_in_process: Grade
) -> None:
    report = grade_in_process(FAULTS / name, problem)
    assert report.status is status
    assert report.score == 0
    assert len(report.cases) == 17 and not any(c.passed for c in report.cases)
    for fragment in fragments:
        assert fragment in report.message


def test_exception_shows_the_students_traceback_only(
    problem: Problem, grade_in_process: Grade
) -> None:
    report = grade_in_process(FAULTS / "raises.py", problem)
    assert report.status is Status.GRADED
    case = report.cases[0]
    assert case.reason is CaseReason.EXCEPTION
    assert "IndexError" in case.message and "line 4" in case.message
    assert case.error is not None
    assert [frame.line for frame in case.error.frames] == [8, 4]
    assert {frame.file for frame in case.error.frames} == {str(FAULTS / "raises.py")}


def test_printed_fake_report_changes_nothing(problem: Problem, grade_file: Grade) -> None:
    report = grade_file(FAULTS / "prints_fake_report.py", problem)
    assert report.status is Status.GRADED
    assert report.score == 0
    assert '"score": 14' in report.stdout
    assert '{"event": "done"}' in report.stderr


def test_invalid_jax_output_is_named(problem: Problem, grade_in_process: Grade) -> None:
    report = grade_in_process(FAULTS / "wrong_shape.py", problem)
    assert report.status is Status.GRADED
    assert all(c.reason is CaseReason.INVALID_OUTPUT for c in report.cases)
    assert "shape (1, 3); expected shape (3,)" in report.cases[0].message


def test_sys_exit_in_function_is_an_exception(problem: Problem, grade_in_process: Grade) -> None:
    report = grade_in_process(FAULTS / "sys_exit_in_function.py", problem)
    assert report.status is Status.GRADED
    assert all(c.reason is CaseReason.EXCEPTION for c in report.cases)
    assert "called exit()" in report.cases[0].message


def test_endless_loop_times_out(problem: Problem, grade_file: Grade) -> None:
    limits = Limits(case_seconds=2, total_seconds=8, max_restarts=3)
    report = grade_file(FAULTS / "infinite_loop.py", problem, limits=limits)
    assert report.status is Status.TIMEOUT
    assert report.score == 0
    assert report.cases[0].reason is CaseReason.TIMEOUT
    assert "stopped after 2 s of CPU time" in report.cases[0].message
    # 8 s of CPU time: longer in wall-clock time on a busy machine, never past the backstop.
    assert "after 8 s of CPU time" in report.message
    assert report.seconds < limits.wall_factor * 8 + 5


def test_process_exit_in_function_is_a_crash(problem: Problem, grade_file: Grade) -> None:
    limits = Limits(max_restarts=2)
    report = grade_file(FAULTS / "exits_in_function.py", problem, limits=limits)
    assert report.status is Status.CRASHED
    crashed = [c for c in report.cases if c.reason is CaseReason.CRASHED]
    # The first case run and two restarts; the visible cases run first (see grading.request_for).
    assert len(crashed) == 3 and all(c.visible for c in crashed)
    assert {c.reason for c in report.cases} == {CaseReason.CRASHED, CaseReason.NOT_RUN}
    assert "exited with code 3 during this case" in crashed[0].message


@pytest.mark.parametrize("name", ["syntax_error.py", "raises.py", "empty.py"])
def test_report_round_trips_through_json(
    name: str, problem: Problem, grade_in_process: Grade
) -> None:
    from grader.models import Report

    report = grade_in_process(Path(FAULTS / name), problem)
    assert Report.model_validate_json(report.model_dump_json()) == report
