"""The order that picks a report's headline status (grader/models/status.py), on every pair
of case reasons, and what a student is shown for each headline."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

import pytest
from conftest import TOY, ReferenceCache

from grader.feedback import student_view
from grader.grading import grade
from grader.models import (
    HEADLINE,
    CaseReason,
    Limits,
    Report,
    RunRequest,
    Status,
    headline_status,
)
from grader.problems import Problem
from grader.run import CaseFailure, FakeRunner, RunResult

# Written out here, not read from the table: the function was called and gave back control
# (graded, whatever else happened), else the worst stop, best first.
CALLED = (
    CaseReason.PASSED,
    CaseReason.WRONG_OUTPUT,
    CaseReason.INVALID_OUTPUT,
    CaseReason.EXCEPTION,
)
STOPPED = (
    (CaseReason.MEMORY_EXCEEDED, Status.MEMORY_EXCEEDED),
    (CaseReason.TIMEOUT, Status.TIMEOUT),
    (CaseReason.CRASHED, Status.CRASHED),
    (CaseReason.NOT_RUN, Status.CRASHED),
)


def expected_headline(first: CaseReason, second: CaseReason) -> Status:
    if first in CALLED or second in CALLED:
        return Status.GRADED
    order = [reason for reason, _ in STOPPED]
    winner = min(first, second, key=order.index)
    return dict(STOPPED)[winner]


def test_the_table_ranks_every_case_reason_once() -> None:
    assert sorted(HEADLINE) == sorted(CaseReason)
    assert list(HEADLINE) == [*CALLED, *(reason for reason, _ in STOPPED)]


@pytest.mark.parametrize(
    ("first", "second"), list(product(CaseReason, repeat=2)), ids=lambda r: r.value
)
def test_headline_of_every_pair(first: CaseReason, second: CaseReason) -> None:
    assert headline_status([first, second]) is expected_headline(first, second)
    assert headline_status([second, first]) is expected_headline(first, second)


def test_headline_of_one_reason_many_times_is_its_own() -> None:
    for reason in CaseReason:
        assert headline_status([reason] * 3) is expected_headline(reason, reason)


def test_no_case_at_all_is_a_crash() -> None:
    assert headline_status([]) is Status.CRASHED


def test_memory_beats_timeout_beats_crash_among_many() -> None:
    reasons = [CaseReason.NOT_RUN, CaseReason.CRASHED, CaseReason.TIMEOUT, CaseReason.NOT_RUN]
    assert headline_status(reasons) is Status.TIMEOUT
    assert headline_status([*reasons, CaseReason.MEMORY_EXCEEDED]) is Status.MEMORY_EXCEEDED
    assert headline_status([*reasons, CaseReason.WRONG_OUTPUT]) is Status.GRADED


# --------------------------------------------------------------------------------------------
# What a student sees: a report graded with a runner that stops chosen cases
# --------------------------------------------------------------------------------------------


def correct(x: Any, k: int) -> list[float]:
    values = [float(v) for v in x]
    return [len(values), sum(values) * k, max(abs(v) for v in values)]


class StoppingRunner(FakeRunner):
    """Runs `correct`, except that the cases in `stops` end for the reason given there."""

    def __init__(self, stops: Callable[[int], CaseReason | None]) -> None:
        super().__init__(correct)
        self.stops = stops

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        result = super().run(request, limits)
        for case in request.cases:
            reason = self.stops(case.index)
            if reason is not None:
                message = f"Case {case.index} ended: {reason.value}."
                result.outcomes[case.index] = CaseFailure(case.index, reason, message)
        return result


def graded(
    toy: Problem, references: ReferenceCache, stops: Callable[[int], CaseReason | None]
) -> Report:
    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=1,
        expected=references.get(toy, 1),
        runner=StoppingRunner(stops),
    )
    return student_view(report)


@pytest.mark.parametrize(("reason", "status"), STOPPED)
def test_a_student_whose_every_case_stopped_sees_why(
    toy: Problem, references: ReferenceCache, reason: CaseReason, status: Status
) -> None:
    report = graded(toy, references, lambda index: reason)
    assert report.status is status
    assert report.score == 0
    assert report.message == f"Case 0 ended: {reason.value}."
    assert [case.reason for case in report.cases] == [reason] * len(report.cases)


def test_a_student_sees_the_case_that_decided_the_status(
    toy: Problem, references: ReferenceCache
) -> None:
    order = [CaseReason.CRASHED, CaseReason.TIMEOUT, CaseReason.MEMORY_EXCEEDED]

    def stops(index: int) -> CaseReason:
        return order[index] if index < len(order) else CaseReason.NOT_RUN

    report = graded(toy, references, stops)
    assert report.status is Status.MEMORY_EXCEEDED
    assert report.message == "Case 2 ended: memory_exceeded."
    assert report.score == 0


def test_one_case_that_returned_makes_the_report_graded(
    toy: Problem, references: ReferenceCache
) -> None:
    report = graded(toy, references, lambda index: None if index == 1 else CaseReason.TIMEOUT)
    assert report.status is Status.GRADED
    assert report.score == toy.spec.points_per_case
    assert report.message == f"1 of {len(report.cases)} cases passed."
    assert report.cases[0].message == "Case 0 ended: timeout."
