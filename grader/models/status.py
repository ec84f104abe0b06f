"""Result codes: what each report status and case reason means, and which one heads a report.

A report has one status; its cases each have a reason. When cases end in different ways, the
status is decided by one ordered table, `HEADLINE` (as DMOJ decides a submission's result by
its `CODE_DISPLAY_ORDER`): the first of the cases' reasons in the table heads the report.

    reason            status           what the student is told
    passed            graded           the case's outputs matched the reference's
    wrong_output      graded           an output was off: which, by how much, the tolerance
    invalid_output    graded           it returned something that is not the outputs asked for
    exception         graded           the function raised: the exception and its line
    memory_exceeded   memory_exceeded  it ran out of memory (MemoryError, or the limit killed it)
    timeout           timeout          a case took longer than its CPU-time limit
    crashed           crashed          the process died while the case ran (a signal, an exit)
    not_run           crashed          the case never started: an earlier one stopped the run

Why this order:

- A case the function gave back control on (passed, wrong, invalid, exception) makes the report
  'graded': the function could be called, every case is scored on its own, and a case that
  timed out or crashed costs that case's points only. Which of these four comes first does not
  matter: they give the same status, and the cases say the rest.
- When no case gave back control, nothing could be scored and the worst stop heads the report:
  running out of memory first, because it is the most specific cause and often the reason a
  later case is slow or dies (a process near its memory limit swaps or is killed); then a
  timeout, which names a case that ran too long; then a crash, which says only that the
  process died.
- 'not_run' comes last: a case is not run only because something else stopped the run, so it
  never explains a report by itself (and if it is all there is, the run crashed).

Statuses that no case reason leads to (the file is empty, too large, not UTF-8, not valid
Python or not a valid notebook, raised on import, has no such function or another signature)
are decided before any case runs, where loading the file fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    """How far grading got: 'graded' means the function was called on the cases."""

    GRADED = "graded"
    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    ENCODING_ERROR = "encoding_error"
    SYNTAX_ERROR = "syntax_error"
    INVALID_NOTEBOOK = "invalid_notebook"
    IMPORT_ERROR = "import_error"
    MISSING_FUNCTION = "missing_function"
    BAD_SIGNATURE = "bad_signature"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"


class CaseReason(StrEnum):
    """Why a case passed or failed."""

    PASSED = "passed"
    WRONG_OUTPUT = "wrong_output"
    INVALID_OUTPUT = "invalid_output"
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"
    NOT_RUN = "not_run"


# The order that picks a report's headline status: the first reason of a report's cases in
# this table gives its status (see the module docstring for what each means and why).
HEADLINE: dict[CaseReason, Status] = {
    CaseReason.PASSED: Status.GRADED,
    CaseReason.WRONG_OUTPUT: Status.GRADED,
    CaseReason.INVALID_OUTPUT: Status.GRADED,
    CaseReason.EXCEPTION: Status.GRADED,
    CaseReason.MEMORY_EXCEEDED: Status.MEMORY_EXCEEDED,
    CaseReason.TIMEOUT: Status.TIMEOUT,
    CaseReason.CRASHED: Status.CRASHED,
    CaseReason.NOT_RUN: Status.CRASHED,
}

_RANK = {reason: rank for rank, reason in enumerate(HEADLINE)}


def headline_status(reasons: Iterable[CaseReason]) -> Status:
    """The report's status for cases that ended for these reasons: that of the reason first in
    `HEADLINE`. No reason at all (no case) is a crash: nothing ran."""
    ranked = sorted(set(reasons), key=_RANK.__getitem__)
    return HEADLINE[ranked[0]] if ranked else Status.CRASHED
