"""Feedback that teaches: which known mistake a failing submission made, and what a student
may see of the cases.

Diagnosis compares a submission's outputs, case by case, with those of the mistaken variants
listed in the spec (computed by the reference's process, cached with the reference's
outcomes), using the same tolerances as grading. The variants matching the most failing cases
give their hints; exceptions are matched against the spec's exception hints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from grader.compare import check_outputs
from grader.models import (
    CaseOutcome,
    CaseReason,
    CaseResult,
    ErrorInfo,
    Hint,
    ProblemSpec,
    Report,
)

HIDDEN_INPUTS = "(hidden case)"


def diagnose(
    spec: ProblemSpec,
    results: Sequence[CaseResult],
    expected: Mapping[int, CaseOutcome],
    load_error: ErrorInfo | None = None,
) -> tuple[Hint, ...]:
    """Hints for a submission's failures, best first; none when nothing failed."""
    failing = [result for result in results if not result.passed]
    hints = list(_exception_hints(spec, failing, load_error))
    wrong = [r for r in failing if r.reason is CaseReason.WRONG_OUTPUT and r.outputs]
    if not wrong or not spec.mistakes:
        return tuple(hints)
    matched: dict[str, list[int]] = {}
    for mistake in spec.mistakes:
        matched[mistake.id] = []
        for result in wrong:
            reference = expected[result.index]
            variant = (reference.variants or {}).get(mistake.function)
            if variant is None:
                continue
            got = [check.got for check in result.outputs]
            checks = check_outputs(spec.outputs, got, variant, reference.scales)
            if all(check.passed for check in checks):
                matched[mistake.id].append(result.index)
    best = max(len(cases) for cases in matched.values())
    # A hint must explain at least half of the wrong answers; ties are all shown, since
    # different mistakes can produce the very same numbers.
    if best > 0 and 2 * best >= len(wrong):
        hints.extend(
            Hint(id=m.id, kind="mistake", text=m.hint.strip(), cases=tuple(matched[m.id]))
            for m in spec.mistakes
            if len(matched[m.id]) == best
        )
    return tuple(hints)


def _exception_hints(
    spec: ProblemSpec, failing: Sequence[CaseResult], load_error: ErrorInfo | None
) -> list[Hint]:
    hints = []
    for advice in spec.exception_hints:
        cases = tuple(r.index for r in failing if _fits(advice.type, advice.match, r.error))
        if cases or _fits(advice.type, advice.match, load_error):
            hints.append(
                Hint(id=advice.id, kind="exception", text=advice.hint.strip(), cases=cases)
            )
    return hints


def _fits(kind: str, pattern: str, error: ErrorInfo | None) -> bool:
    return (
        error is not None and error.type == kind and re.search(pattern, error.message) is not None
    )


def student_view(report: Report) -> Report:
    """The report without what hidden cases would give away: inputs, expected and got values.

    A hidden case keeps whether it passed, why, which output was wrong, and the student's own
    exception; so a student cannot farm expected values from reports.
    """
    cases = []
    for case in report.cases:
        if case.visible:
            cases.append(case)
            continue
        message = case.message
        if case.reason is CaseReason.WRONG_OUTPUT:
            names = ", ".join(check.name for check in case.outputs if not check.passed)
            message = f"Wrong output: {names} (hidden case: values not shown)."
        cases.append(
            case.model_copy(update={"inputs": HIDDEN_INPUTS, "outputs": (), "message": message})
        )
    return report.model_copy(update={"cases": tuple(cases), "view": "student"})
