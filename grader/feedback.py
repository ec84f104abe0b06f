"""Feedback that teaches: which known mistake a failing submission made, and what a student
may see of the cases.

Diagnosis compares a submission's outputs, case by case, with those of the mistaken variants
listed in the spec (computed by the reference's process, cached with the reference's
outcomes), using the same tolerances as grading. The variants matching the most failing cases
give their hints; exceptions are matched against the spec's exception hints.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence

from grader.compare import check_outputs
from grader.models import (
    ArrayArg,
    Case,
    CaseOutcome,
    CaseReason,
    CaseResult,
    ErrorInfo,
    Hint,
    IntParameter,
    ProblemSpec,
    Report,
    ScalarArg,
    VectorParameter,
)

HIDDEN_INPUTS = "(hidden case)"


def diagnose(
    spec: ProblemSpec,
    results: Sequence[CaseResult],
    expected: Mapping[int, CaseOutcome],
    load_error: ErrorInfo | None = None,
    *,
    cases: Sequence[Case] = (),
    x64_enabled: bool | None = None,
) -> tuple[Hint, ...]:
    """Hints for a submission's failures, best first; none when nothing failed.

    `cases` (the cases' inputs) allow pattern hints; `x64_enabled` is what the submission's
    worker said of jax_enable_x64, only used to choose the spec's x64 hint.
    """
    failing = [result for result in results if not result.passed]
    hints = list(_exception_hints(spec, failing, load_error))
    if failing and x64_enabled and spec.x64_hint.strip():
        hints.append(
            Hint(
                id="x64",
                kind="setting",
                text=spec.x64_hint.strip(),
                cases=tuple(r.index for r in failing),
            )
        )
    hints.extend(pattern_hints(spec, results, cases))
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


_CALLED_AND_FAILED = {CaseReason.WRONG_OUTPUT, CaseReason.EXCEPTION, CaseReason.INVALID_OUTPUT}
MAX_PATTERN_HINTS = 2


def case_properties(spec: ProblemSpec) -> list[tuple[str, str, Callable[[Case], bool]]]:
    """Properties of a case's inputs a failure may hinge on: (id, wording, test).

    Simplest first: a sign, an all-zero vector, a parity. Thresholds are found from the data
    (see `pattern_hints`).
    """
    found: list[tuple[str, str, Callable[[Case], bool]]] = []
    for position, param in enumerate(spec.parameters):
        quantity = _quantity(param, position)
        if quantity is None:
            continue
        name, low, _high, value = quantity
        if isinstance(param, VectorParameter):
            zero = functools.partial(_all_zero, position=position)
            found.append((f"{param.name}_all_zero", f"{param.name} is all zeros", zero))
        if low < 0:
            negative = functools.partial(_compare, value=value, test=lambda v: v < 0)
            found.append((f"{name}_negative", f"{name} is negative", negative))
        even = functools.partial(_compare, value=value, test=lambda v: v % 2 == 0)
        odd = functools.partial(_compare, value=value, test=lambda v: v % 2 == 1)
        found.append((f"{name}_even", f"{name} is even", even))
        found.append((f"{name}_odd", f"{name} is odd", odd))
    return found


def _quantity(param: object, position: int) -> tuple[str, int, int, Callable[[Case], int]] | None:
    """An int parameter's value, or a vector's length, as a function of a case."""
    if isinstance(param, IntParameter):
        return param.name, param.low, param.high, lambda c: int(_scalar(c, position))
    if isinstance(param, VectorParameter):
        low, high = param.draw.length
        return f"len({param.name})", low, high, lambda c: _length(c, position)
    return None


def _compare(case: Case, *, value: Callable[[Case], int], test: Callable[[int], bool]) -> bool:
    return test(value(case))


def _scalar(case: Case, position: int) -> float:
    arg = case.args[position]
    return arg.value if isinstance(arg, ScalarArg) else 0.0


def _length(case: Case, position: int) -> int:
    arg = case.args[position]
    return len(arg.values) if isinstance(arg, ArrayArg) else 0


def _all_zero(case: Case, position: int) -> bool:
    arg = case.args[position]
    return isinstance(arg, ArrayArg) and all(v == 0 for v in arg.values)


def pattern_hints(
    spec: ProblemSpec, results: Sequence[CaseResult], cases: Sequence[Case]
) -> list[Hint]:
    """What the failing cases share and the passing ones do not, from the cases' inputs.

    Needs two failing cases at least (one failure shares too much by chance) and one passing
    case. Gives at most two properties, the simplest first, then a threshold on a parameter
    (every failing case above it, every passing one below, or the other way round).
    """
    by_index = {case.index: case for case in cases}
    failing = [
        by_index[r.index] for r in results if r.reason in _CALLED_AND_FAILED and r.index in by_index
    ]
    passing = [by_index[r.index] for r in results if r.passed and r.index in by_index]
    if len(failing) < 2 or not passing:
        return []
    found: list[tuple[str, str]] = []
    for hint_id, wording, test in case_properties(spec):
        if all(test(c) for c in failing) and not any(test(c) for c in passing):
            found.append((hint_id, f"{wording} in every failing case and in no passing one"))
    explained = {hint_id.rsplit("_", 1)[0] for hint_id, _ in found}
    for position, param in enumerate(spec.parameters):
        quantity = _quantity(param, position)
        if quantity is None or quantity[0] in explained:
            continue  # a sign or a parity already says it more simply
        name, _low, _high, value = quantity
        bad = [value(c) for c in failing]
        good = [value(c) for c in passing]
        if min(bad) > max(good):
            found.append(
                (
                    f"{name}_above",
                    f"{name} >= {min(bad)} in every failing case, and {name} <= {max(good)} "
                    f"in every passing one",
                )
            )
        elif max(bad) < min(good):
            found.append(
                (
                    f"{name}_below",
                    f"{name} <= {max(bad)} in every failing case, and {name} >= {min(good)} "
                    f"in every passing one",
                )
            )
    indices = tuple(c.index for c in failing)
    return [
        Hint(
            id=f"pattern_{hint_id}",
            kind="pattern",
            text=f"A pattern in your failures: {wording}. Look at what your code does "
            f"differently there.",
            cases=indices,
        )
        for hint_id, wording in found[:MAX_PATTERN_HINTS]
    ]


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


# A number in a text, not part of a name (`float32`) or of another number.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?![\w.]*\w)")
_DTYPE = re.compile(r"\((?:b?float|u?int|complex)\d+\)")
_LIST = re.compile(r"\[([^\[\]]*)\]")
HIDDEN_NUMBER = "<hidden>"


def _input_numbers(inputs: str) -> list[float]:
    """Every number a case's inputs summary holds, and the length of each of its arrays."""
    text = _DTYPE.sub("", inputs)
    numbers = [float(token) for token in _NUMBER.findall(text)]
    numbers += [float(len(items.split(","))) for items in _LIST.findall(text) if items.strip()]
    return numbers


def hide_input_numbers(text: str, inputs: str) -> str:
    """text with every number equal to one of the inputs (or an array's length) replaced by
    `<hidden>`: an exception message can quote a hidden case's input (`Invalid rng value:
    164673804.0`). 0, 1 and -1 are left alone: they say nothing about a case."""
    known = _input_numbers(inputs)
    if not known:
        return text

    def shown(match: re.Match[str]) -> str:
        try:
            value = float(match.group())
        except ValueError:
            return match.group()
        if value.is_integer() and abs(value) <= 1:
            return match.group()
        for number in known:
            if abs(value - number) <= 1e-6 * max(abs(number), 1e-300):
                return HIDDEN_NUMBER
        return match.group()

    return _NUMBER.sub(shown, text)


def _hidden_case_text(case: CaseResult) -> CaseResult:
    """A hidden case's message and exception without the numbers of its inputs."""
    error = case.error
    if error is not None and error.message and error.message in case.message:
        # Only the exception's own words: "at line 19" is the grader's, not an input.
        hidden = hide_input_numbers(error.message, case.inputs)
        message = case.message.replace(error.message, hidden)
        error = error.model_copy(update={"message": hidden})
    else:
        message = hide_input_numbers(case.message, case.inputs)
        if error is not None:
            error = error.model_copy(
                update={"message": hide_input_numbers(error.message, case.inputs)}
            )
    return case.model_copy(update={"message": message, "error": error})


def student_view(report: Report, *, keep_seed: bool = False) -> Report:
    """The report without what hidden cases would give away: inputs, expected and got values,
    the numbers of their inputs quoted by an exception message or printed, and the grading
    seed.

    A hidden case keeps whether it passed, why, which output was wrong, and the student's own
    exception; so a student cannot farm expected values from reports.
    """
    cases = []
    for case in report.cases:
        if case.visible:
            cases.append(case)
            continue
        case = _hidden_case_text(case)
        message = case.message
        if case.reason is CaseReason.WRONG_OUTPUT:
            names = ", ".join(check.name for check in case.outputs if not check.passed)
            message = f"Wrong output: {names} (hidden case: values not shown)."
        cases.append(
            case.model_copy(update={"inputs": HIDDEN_INPUTS, "outputs": (), "message": message})
        )
    # A practice run's seed is the pack's, public anyway; a grading's would give away every
    # hidden case (cases come from the spec and the seed) to a student without the reference.
    # `keep_seed`: for `grader check` run where the reference is, which holds every case anyway,
    # so that "repeat with --seed S" works.
    seed = report.seed if report.practice is not None or keep_seed else None
    # What the code printed can quote hidden inputs too (a debugging print of the seed).
    hidden = ", ".join(case.inputs for case in report.cases if not case.visible)
    update = {
        "cases": tuple(cases),
        "view": "student",
        "seed": seed,
        "stdout": hide_input_numbers(report.stdout, hidden),
        "stderr": hide_input_numbers(report.stderr, hidden),
    }
    return report.model_copy(update=update)
