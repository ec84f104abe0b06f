"""Judge one case: the submission's outcome against the reference's, in the trusted process.

In order: did it return at all, the right number of values, all finite, then each output by
the comparison its spec names (`Output.compare`), looked up in `COMPARATORS`: 'exact', or
'close' within a tolerance. Messages name the output. A new kind of output is one entry in
that table (and its name in `OutputKind`, so that specs may ask for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grader.errors import InvalidSpec
from grader.models import (
    Case,
    CaseOutcome,
    CaseReason,
    CaseResult,
    Output,
    OutputCheck,
    OutputKind,
)
from grader.run import CaseFailure


@dataclass(frozen=True)
class Comparator:
    """How one kind of output is compared with the reference's value."""

    tolerance: Callable[[Output, float, float | None], float]
    """Largest accepted |got - expected|, from the output's spec, the expected value and the
    scale the reference's scale function gave (None without one)."""
    accepts: Callable[[float, float, float], bool]
    """Whether got passes against expected, given that tolerance."""


def _close_tolerance(output: Output, expected: float, scale: float | None) -> float:
    """atol + rtol * max(scale, |expected|), where scale is the magnitude of what was summed
    (from the reference's scale function). Scaling by |expected| alone would fail correct
    answers whose sum happens to be near zero, where float noise is largest relative to the
    result."""
    magnitude = max(abs(expected), scale or 0.0)
    return output.atol + output.rtol * magnitude


COMPARATORS: dict[OutputKind, Comparator] = {
    # Must equal the reference's value (a count, an index): no tolerance.
    "exact": Comparator(
        tolerance=lambda output, expected, scale: 0.0,
        accepts=lambda got, expected, allowed: got == expected,
    ),
    # Within a tolerance scaled by the output's magnitude (float sums).
    "close": Comparator(
        tolerance=_close_tolerance,
        accepts=lambda got, expected, allowed: abs(got - expected) <= allowed,
    ),
}


def comparator(output: Output) -> Comparator:
    """The comparison for an output's kind; InvalidSpec names the output if there is none."""
    found = COMPARATORS.get(output.compare)
    if found is None:
        known = ", ".join(COMPARATORS)
        raise InvalidSpec(
            f"output {output.name!r} of the problem spec asks for compare = "
            f"{output.compare!r}, which the grader has no comparison for (known: {known}); "
            f"fix that output's `compare` in the spec."
        )
    return found


def tolerance(output: Output, expected: float, scale: float | None) -> float:
    """Largest accepted |got - expected| for one output (0 for 'exact'; see `COMPARATORS`)."""
    return comparator(output).tolerance(output, expected, scale)


def check_outputs(
    outputs: Sequence[Output],
    got: Sequence[float],
    expected: Sequence[float],
    scales: Sequence[float] | None,
) -> tuple[OutputCheck, ...]:
    """Verdict on each output of a case whose values are all present and finite."""
    checks = []
    for position, output in enumerate(outputs):
        rule = comparator(output)
        value, want = got[position], expected[position]
        allowed = rule.tolerance(output, want, scales[position] if scales else None)
        error = abs(value - want)
        passed = rule.accepts(value, want, allowed)
        checks.append(
            OutputCheck(
                name=output.name,
                passed=passed,
                got=value,
                expected=want,
                error=error,
                tolerance=allowed,
            )
        )
    return tuple(checks)


def judge_case(
    case: Case,
    outputs: Sequence[Output],
    expected: CaseOutcome,
    got: CaseOutcome | CaseFailure | None,
    *,
    points: float,
    inputs: str,
) -> CaseResult:
    """The verdict on one case, with a message that says what was wrong and where."""

    def result(
        reason: CaseReason, message: str, checks: tuple[OutputCheck, ...] = (), **extra: object
    ) -> CaseResult:
        passed = reason is CaseReason.PASSED
        return CaseResult(
            index=case.index,
            name=case.name,
            inputs=inputs,
            passed=passed,
            reason=reason,
            message=message,
            points=points if passed else 0.0,
            max_points=points,
            outputs=checks,
            **extra,
        )

    if got is None:
        return result(CaseReason.NOT_RUN, "Not run.")
    if isinstance(got, CaseFailure):
        return result(got.reason, got.message)
    seconds = got.seconds
    if got.kind == "raised" and got.error is not None:
        error = got.error
        where = f" at {error.location}" if error.location else ""
        if error.type == "SystemExit":
            text = f"Your function called exit(){where}; return the outputs instead."
        elif error.type == "MemoryError":
            text = (
                f"Your function ran out of memory{where}. Look for an array or a list "
                f"that grows without bound."
            )
            return result(CaseReason.MEMORY_EXCEEDED, text, error=error, seconds=seconds)
        else:
            text = f"Your function raised {error.type}{where}: {error.message}"
        return result(CaseReason.EXCEPTION, text, error=error, seconds=seconds)
    if got.kind != "returned" or got.values is None:
        why = got.problem or "returned something that is not a list of numbers"
        return result(CaseReason.INVALID_OUTPUT, f"Your function {why}.", seconds=seconds)
    names = [output.name for output in outputs]
    if len(got.values) != len(outputs):
        return result(
            CaseReason.INVALID_OUTPUT,
            f"Your function returned {len(got.values)} values; expected {len(outputs)} "
            f"({', '.join(names)}).",
            seconds=seconds,
        )
    bad = [name for name, value in zip(names, got.values, strict=True) if not math.isfinite(value)]
    if bad:
        shown = ", ".join(
            f"{name} = {value}"
            for name, value in zip(names, got.values, strict=True)
            if name in bad
        )
        return result(
            CaseReason.INVALID_OUTPUT,
            f"Your function returned a value that is not a finite number: {shown}.",
            seconds=seconds,
        )
    assert expected.values is not None
    checks = check_outputs(outputs, got.values, expected.values, expected.scales)
    wrong = [check for check in checks if not check.passed]
    if not wrong:
        return result(CaseReason.PASSED, "Correct.", checks, seconds=seconds)
    return result(CaseReason.WRONG_OUTPUT, describe_wrong(wrong), checks, seconds=seconds)


def describe_wrong(wrong: Sequence[OutputCheck]) -> str:
    """One sentence naming each wrong output and how far off it is."""
    parts = []
    for check in wrong:
        if check.tolerance == 0:
            parts.append(f"{check.name} is {check.got:g}, expected {check.expected:g}")
        else:
            parts.append(
                f"{check.name} is {check.got:.8g}, expected {check.expected:.8g} (off by "
                f"{check.error:.3g}, {check.error_ratio:.3g}x the tolerance {check.tolerance:.2g})"
            )
    noun = "output is" if len(wrong) == 1 else "outputs are"
    return f"Wrong {noun}: " + "; ".join(parts) + "."
