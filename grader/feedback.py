"""Feedback that teaches: which known mistake a failing submission made, and what a student
may see of the cases.

Diagnosis compares a submission's outputs, case by case, with those of the mistaken variants
listed in the spec (computed by the reference's process, cached with the reference's
outcomes), using the same tolerances as grading. The variants matching the most failing cases
give their hints; exceptions are matched against the spec's exception hints.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections.abc import Callable, Mapping, Sequence

from grader.cases import thirds
from grader.compare import check_outputs
from grader.models import (
    ArrayArg,
    Case,
    CaseOutcome,
    CaseReason,
    CaseResult,
    ErrorInfo,
    Frame,
    Hint,
    IntParameter,
    OutputCheck,
    ProblemSpec,
    Report,
    ScalarArg,
    Status,
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
    hints.extend(call_hints(spec, results, expected, cases))
    hints.extend(pattern_hints(spec, results, cases))
    wrong = [r for r in failing if r.reason is CaseReason.WRONG_OUTPUT and r.outputs]
    if not wrong or not spec.mistakes:
        return tuple(hints)
    matched: dict[str, list[int]] = {}
    for mistake in spec.mistakes:
        matched[mistake.id] = []
        for result in wrong:
            reference = expected.get(result.index)
            if reference is None:
                continue
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


# A passing case passes clean when each output is within this share of its tolerance: the
# largest float noise measured is a hundredth of it (see the spec's tolerance_note). A case
# passing closer to its tolerance may pass only because its tolerance is larger (a precision
# mistake in a bigger sum), so it says nothing about a pattern.
CLEAN = 0.1

CALLS_DEPEND = (
    "Some of your results equal what an earlier call should have returned, with other "
    "arguments: your function's results depend on earlier calls (a cache, a model or a "
    "global kept between calls?). Compute every call from its own arguments only."
)
NONDETERMINISTIC = (
    "Two identical calls of your function returned different results: they depend on "
    "something other than the arguments (randomness not taken from the seed, the time, or "
    "state kept between calls). The same arguments must always give the same result."
)


def call_hints(
    spec: ProblemSpec,
    results: Sequence[CaseResult],
    expected: Mapping[int, CaseOutcome],
    cases: Sequence[Case],
) -> list[Hint]:
    """Hints from the order of calls: a wrong output that equals, within this case's
    tolerance, the expected value of an earlier case with other arguments (`calls_depend`),
    and two identical calls that returned different outputs (`nondeterministic`).

    Earlier cases whose int argument is 0 or an end of its range (seed 0) are left out: a
    solution hard-coding that value matches them without keeping any state.
    """
    by_index = {case.index: case for case in cases}
    special = [
        (position, {0, param.low, param.high})
        for position, param in enumerate(spec.parameters)
        if isinstance(param, IntParameter) and not param.shape
    ]

    def hard_coded(case: Case) -> bool:
        return any(_scalar(case, position) in values for position, values in special)

    # In the order the worker ran them: the visible cases first (grading.request_for).
    ran = sorted(
        (r for r in results if r.index in by_index), key=lambda r: (not r.visible, r.index)
    )
    carried: list[int] = []
    differ: list[int] = []
    for position, result in enumerate(ran):
        case = by_index[result.index]
        earlier = ran[:position]
        if result.reason is CaseReason.WRONG_OUTPUT and result.outputs:
            for before in earlier:
                outcome = expected.get(before.index)
                if (
                    hard_coded(by_index[before.index])
                    or outcome is None
                    or outcome.values is None
                    or by_index[before.index].args == case.args
                ):
                    continue
                if any(
                    _carried(check, outcome.values[o])
                    for o, check in enumerate(result.outputs)
                    if o < len(outcome.values)
                ):
                    carried.append(result.index)
                    break
        if result.outputs:
            for before in earlier:
                if by_index[before.index].args != case.args or not before.outputs:
                    continue
                if any(
                    abs(now.got - then.got) > now.tolerance
                    for now, then in zip(result.outputs, before.outputs, strict=False)
                ):
                    differ.extend((before.index, result.index))
    hints = []
    if carried:
        hints.append(Hint(id="calls_depend", kind="calls", text=CALLS_DEPEND, cases=tuple(carried)))
    if differ:
        hints.append(
            Hint(
                id="nondeterministic",
                kind="calls",
                text=NONDETERMINISTIC,
                cases=tuple(sorted(set(differ))),
            )
        )
    return hints


def _carried(check: OutputCheck, earlier: float) -> bool:
    """Whether a wrong output is an earlier case's expected value: within float noise of it
    (CLEAN of the tolerance), which is far from this case's expected value and from zero (a
    sum near zero is what many wrong solutions return: -0.0006 matched an all-zero x's 0.0
    within a tolerance of 0.06)."""
    return (
        not check.passed
        and check.tolerance > 0
        and abs(check.got - earlier) <= CLEAN * check.tolerance
        and abs(check.expected - earlier) > check.tolerance
        and abs(earlier) > 100 * check.tolerance
    )


def case_properties(spec: ProblemSpec) -> list[tuple[str, str, Callable[[Case], bool]]]:
    """Properties of a case's inputs a failure may hinge on: (id, wording, test).

    Categories a student can act on, simplest first: a sign, an all-zero vector, a parity,
    then small, middle or large values of a parameter (the thirds of its range). Never a
    bound taken from the cases' inputs, which would tell a hidden case's values.
    """
    found: list[tuple[str, str, Callable[[Case], bool]]] = []
    sizes: list[tuple[str, str, Callable[[Case], bool]]] = []
    for position, param in enumerate(spec.parameters):
        quantity = _quantity(param, position)
        if quantity is None:
            continue
        name, low, high, value = quantity
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
        parts = thirds(low, high)
        if len(parts) == 3 and low >= 0:  # a signed range's thirds are mostly its sign
            for (start, end), size in zip(parts, ("small", "middle", "large"), strict=True):
                test = functools.partial(
                    _compare, value=value, test=functools.partial(_within, start, end)
                )
                where = {"small": "bottom", "middle": "middle", "large": "top"}[size]
                wording = f"{name} is {size} (in the {where} third of its range)"
                if size == "middle":
                    wording = (
                        f"{name} is neither small nor large (in the middle third of its range)"
                    )
                sizes.append((f"{name}_{size}", wording, test))
    return found + sizes


def _within(start: int, end: int, value: int) -> bool:
    return start <= value <= end


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


def _clean(result: CaseResult) -> bool:
    """Whether a passed case passed by more than its tolerance's margin (see CLEAN)."""
    return all(check.error <= CLEAN * check.tolerance for check in result.outputs)


def pattern_hints(
    spec: ProblemSpec, results: Sequence[CaseResult], cases: Sequence[Case]
) -> list[Hint]:
    """What the failing cases share and the passing ones do not, from the cases' inputs.

    Needs two failing cases at least (one failure shares too much by chance) and one passing
    case, and every passing case must pass clean (each output's error at most CLEAN of its
    tolerance): otherwise the split may come from the tolerance alone (a float16 sum passes
    where its tolerance is largest), not from the inputs. Gives at most two properties, the
    simplest first, in categories (`case_properties`).
    """
    by_index = {case.index: case for case in cases}
    failing = [
        by_index[r.index] for r in results if r.reason in _CALLED_AND_FAILED and r.index in by_index
    ]
    passed = [r for r in results if r.passed and r.index in by_index]
    passing = [by_index[r.index] for r in passed]
    if len(failing) < 2 or not passing or not all(_clean(r) for r in passed):
        return []
    found: list[tuple[str, str]] = []
    for hint_id, wording, test in case_properties(spec):
        if all(test(c) for c in failing) and not any(test(c) for c in passing):
            found.append((hint_id, f"{wording} in every failing case and in no passing one"))
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


# Exception classes whose names a hidden case may show: Python's own and JAX's. Any other
# class name is the submission's to choose (`type(hex(seed), (Exception,), {})`), so it is
# text the student controls.
_SHOWN_EXCEPTION_TYPES = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
) | frozenset(
    (
        # jax.errors in jax 0.10, and the runtime error's older name.
        "ConcretizationTypeError",
        "InconclusiveDimensionOperation",
        "JAXIndexError",
        "JAXTypeError",
        "JaxRuntimeError",
        "JaxprTypeError",
        "KeyReuseError",
        "NonConcreteBooleanIndexError",
        "TracerArrayConversionError",
        "TracerBoolConversionError",
        "TracerIntegerConversionError",
        "UnexpectedTracerError",
        "XlaRuntimeError",
    )
)
OTHER_EXCEPTION = "an exception of another class"
HIDDEN_DETAILS = "hidden case: messages and printed output are not shown"
OUTPUT_WITHHELD = (
    "(Printed output is shown for visible cases only. This grading also ran hidden cases, in "
    "the same process, so nothing your code printed is shown: run your file yourself to see "
    "it.)"
)
# Statuses of a file that failed to load: the worker had been given no case yet (it is sent
# each case after it has loaded, see runner._CaseFeed), so what the file said or printed holds
# no case's inputs and is shown in full.
_BEFORE_ANY_CASE = {
    Status.SYNTAX_ERROR,
    Status.IMPORT_ERROR,
    Status.MISSING_FUNCTION,
    Status.BAD_SIGNATURE,
}


def _exception_type(kind: str) -> str:
    return kind if kind in _SHOWN_EXCEPTION_TYPES else OTHER_EXCEPTION


def _shown_lines(report: Report) -> set[tuple[str, int]]:
    """The (file, line) places of the submission's frames in its visible cases' exceptions.

    A visible case ran before the process held any hidden input (grader/run/runner.py,
    `_CaseFeed`), so these places say nothing of a hidden case. Any other line a hidden case
    gives is the submission's to choose (a code object compiled with `"\\n" * seed` in front,
    or `co_firstlineno` replaced, sits at any line of any length of file): a channel."""
    places: set[tuple[str, int]] = set()
    for case in report.cases:
        if case.visible and case.error is not None:
            places.update((frame.file, frame.line) for frame in case.error.frames)
            if case.error.line:
                places.add((_frame_file(case.error.cell, report), case.error.line))
    return places


def _one_more_line(report: Report, shown: set[tuple[str, int]]) -> None:
    """Add the line the first hidden case raised at, if no visible case showed it, so that a
    student whose code fails only on hidden cases still learns where; one line per grading, in
    the file's range, so whatever the code chose says at most log2(its lines) bits of a case
    whose inputs come from this grading's fresh seed."""
    for case in report.cases:
        error = case.error
        if case.visible or error is None or not error.line:
            continue
        place = (_frame_file(error.cell, report), error.line)
        if place in shown:
            continue
        in_range = 0 < error.line <= report.submission.size + 1
        if in_range and (error.cell is None or 0 < error.cell <= report.submission.size):
            shown.add(place)
        return


def _frame_file(cell: int | None, report: Report) -> str:
    name = report.submission.path
    return f"{name}, cell {cell}" if cell else name


def _hidden_error(error: ErrorInfo, report: Report, shown: set[tuple[str, int]]) -> ErrorInfo:
    """An exception as a hidden case may show it: its type if Python's or JAX's, and the lines
    of the submission it passed through where a visible case's exception passed too; never
    its message, nor a line only hidden cases reached."""
    frames = tuple(
        Frame(file=frame.file, line=frame.line, function="", source="")
        for frame in error.frames
        if (frame.file, frame.line) in shown
    )
    place = (_frame_file(error.cell, report), error.line or 0)
    known = place in shown
    return ErrorInfo(
        type=_exception_type(error.type),
        message="",
        frames=frames,
        line=error.line if known else None,
        cell=error.cell if known else None,
    )


def _where(error: ErrorInfo) -> str:
    return f" at {error.location}" if error.location else ""


def _hidden_case(case: CaseResult, report: Report, shown: set[tuple[str, int]]) -> CaseResult:
    """A hidden case from facts the trusted side holds: whether it passed, why, which output
    was wrong, the exception's type and line. No text the submission wrote (its exception's
    message, what it returned, what it printed) and no value of the case."""
    error = _hidden_error(case.error, report, shown) if case.error is not None else None
    message = case.message  # the grader's own words: passed, timeout, not run
    if case.reason is CaseReason.CRASHED:
        # How the process ended (its exit code, a signal, a broken message) is the
        # submission's to choose: a byte of an input in an exit code.
        message = (
            "The process running your code ended during this case (hidden case: how it ended "
            "is not shown). Look for os._exit, a signal or a crash of a library."
        )
    if case.reason is CaseReason.WRONG_OUTPUT:
        names = ", ".join(check.name for check in case.outputs if not check.passed)
        message = f"Wrong output: {names} (hidden case: values not shown)."
    elif case.reason is CaseReason.INVALID_OUTPUT:
        message = (
            "Your function did not return as many finite numbers as the exercise asks for "
            "(hidden case: what it returned is not shown)."
        )
    elif error is not None:
        if error.type == "SystemExit":
            message = f"Your function called exit(){_where(error)}; return the outputs instead."
        elif error.type == "MemoryError":
            message = (
                f"Your function ran out of memory{_where(error)}. Look for an array or a list "
                f"that grows without bound."
            )
        else:
            message = f"Your function raised {error.type}{_where(error)} ({HIDDEN_DETAILS})."
            if case.error is not None and case.error.line and not error.line:
                message += (
                    " Nor its line: a grading shows one line that only hidden cases reached, "
                    "the first case's."
                )
    return case.model_copy(
        update={
            "inputs": HIDDEN_INPUTS,
            "outputs": (),
            "message": message,
            "error": error,
            "seconds": None,  # a submission can sleep for a number of its inputs' seconds
        }
    )


def _shown_hint(hint: Hint) -> bool:
    """Whether a student may see a hint when some cases are hidden: not a threshold, which
    states an input's value (`len(x) >= 5 in every failing case`)."""
    return not (hint.kind == "pattern" and hint.id.endswith(("_above", "_below")))


GRADER_FAULT = "The grader could not grade this file"
GRADER_FAULT_FOR_STUDENTS = (
    f"{GRADER_FAULT}: a fault of the grading set-up, not of your file. Course staff can see "
    f"what went wrong; you may be asked to submit again."
)


def student_view(report: Report, *, keep_seed: bool = False) -> Report:
    """The report without what hidden cases would give away, nor any text the submission
    could have shaped after it could read them.

    A hidden case keeps whether it passed, why, which output was wrong, and its exception's
    type and lines in the student's file: no inputs, no values, no message, no time. A visible
    case keeps its text: the worker gets the visible cases first and each case only after the
    last one's outcome, so nothing said about a visible case could hold a hidden input. The
    submission's printed output is kept only when every case is visible, or when the file
    failed to load (before it was given any case): one process runs all the cases, and its
    output cannot be told apart by case. The grading seed goes too, except where the student
    has the reference anyway.
    """
    hidden = any(not case.visible for case in report.cases)
    # A practice run's seed is the pack's, public anyway; a grading's would give away every
    # hidden case (cases come from the spec and the seed) to a student without the reference.
    # `keep_seed`: for `grader check` run where the reference is, which holds every case anyway,
    # so that "repeat with --seed S" works.
    seed = report.seed if report.practice is not None or keep_seed else None
    update: dict[str, object] = {"view": "student", "seed": seed}
    if (
        not keep_seed
        and report.status is Status.CRASHED
        and report.message.startswith(GRADER_FAULT)
    ):
        # What failed is for staff: it can quote the reference (its path, its traceback). Where
        # the student has the reference (`keep_seed`), they are who can fix it.
        update["message"] = GRADER_FAULT_FOR_STUDENTS
    if hidden:
        shown_lines = _shown_lines(report)
        _one_more_line(report, shown_lines)
        update |= {
            "cases": tuple(
                case if case.visible else _hidden_case(case, report, shown_lines)
                for case in report.cases
            ),
            "hints": tuple(hint for hint in report.hints if _shown_hint(hint)),
            "peak_memory_mib": None,  # as the time: a number the submission can set
        }
        if report.status not in _BEFORE_ANY_CASE:
            update |= {"stdout": OUTPUT_WITHHELD, "stderr": ""}
        shown = update["cases"]
        assert isinstance(shown, tuple)
        for before, after in zip(report.cases, shown, strict=True):
            if before is not after and report.message == before.message:
                update["message"] = after.message  # nothing ran: the first case's message
                break
    return report.model_copy(update=update)
