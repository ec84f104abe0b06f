"""Feedback: hints in the report and on screen, and hidden cases that give nothing away."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SUBMISSIONS, TOY
from fakes import fake_setup, in_process, reference, sandboxed
from rich.console import Console

from grader.audit import case_values
from grader.cases import make_cases
from grader.cli import cli
from grader.engine import World
from grader.feedback import HIDDEN_INPUTS, diagnose, student_view
from grader.grading import grade
from grader.models import (
    ArrayArg,
    Case,
    CaseOutcome,
    CaseReason,
    CaseResult,
    ErrorInfo,
    OutputCheck,
    ProblemSpec,
    Report,
)
from grader.problems import Problem
from grader.render import print_report
from grader.run import FakeRunner

WRONG = SUBMISSIONS / "wrong"


def hidden_expected_values(report_json: dict) -> list[str]:  # type: ignore[type-arg]
    """Every way a hidden case's expected sums could be printed."""
    found = []
    for case in report_json["cases"]:
        if case["visible"]:
            continue
        for check in case["outputs"]:
            if check["name"] == "num_leaves":
                continue
            value = check["expected"]
            if abs(value) < 1e-3:  # 0.0 (x all zeros) would match any "0" in the text
                continue
            found += [repr(value), f"{value:.6g}", f"{value:.5g}"]
    return found


def test_hidden_cases_give_no_expected_values_to_students(problem: Problem) -> None:
    staff = in_process(WRONG / "ignore_seed.py", problem, seed=11)
    student = student_view(staff)
    secrets = hidden_expected_values(json.loads(staff.model_dump_json()))
    assert len(secrets) > 20
    text = student.model_dump_json()
    assert not [s for s in secrets if s in text]
    hidden = [c for c in student.cases if not c.visible]
    assert len(hidden) == 13 and all(c.inputs == HIDDEN_INPUTS and not c.outputs for c in hidden)
    assert all("param_sum" in c.message for c in hidden)  # still says which output
    visible = [c for c in student.cases if c.visible]
    assert [c.name for c in visible] == ["hidden is 1", "x has one element", "seed 0", "random 1"]
    assert all(c.outputs for c in visible)


def test_check_output_leads_with_score_then_hints_and_hides_values(tmp_path: Path) -> None:
    out = tmp_path / "student.json"
    command = ["check", str(WRONG / "state_keys.py"), "--seed", "11"]
    world = World.of(fake_setup())
    result = CliRunner().invoke(cli, [*command, "--json", str(out)], obj=world)
    assert result.exit_code == 1, result.output
    text = result.stdout
    assert text.index("points") < text.index("Hints:") < text.index("inputs")  # the table
    assert "state.keys()" in text
    assert "Traceback" not in text
    staff = CliRunner().invoke(cli, [*command, "--staff", "--json", "-"], obj=world)
    secrets = hidden_expected_values(json.loads(staff.stdout))
    assert secrets
    assert not [s for s in secrets if s in text or s in out.read_text()]
    assert json.loads(out.read_text())["view"] == "student"


def test_exception_hint_for_a_float_seed(problem: Problem) -> None:
    report = in_process(WRONG / "float_seed.py", problem)
    assert [h.id for h in report.hints] == ["float_seed"]
    assert report.hints[0].cases == tuple(range(17))
    assert "nnx.Rngs(int(seed))" in report.hints[0].text


# --------------------------------------------------------------------------------------------
# Pattern hints, the x64 hint, exact exception hints, tracebacks, visible values (issue 14)
# --------------------------------------------------------------------------------------------


def verdicts(
    spec: ProblemSpec,
    cases: tuple[Case, ...],
    fails: Callable[[dict[str, int]], bool],
    passing_ratio: float = 0.0,
) -> list[CaseResult]:
    """Case results of a submission that fails exactly where `fails` says (values made up);
    passing cases use `passing_ratio` of their tolerance."""
    results = []
    for case in cases:
        failed = fails(case_values(spec, case))
        check = OutputCheck(
            name="param_sum",
            passed=not failed,
            got=1.0 + (2.0 if failed else passing_ratio * 1e-3),
            expected=1.0,
            error=2.0 if failed else passing_ratio * 1e-3,
            tolerance=1e-3,
        )
        results.append(
            CaseResult(
                index=case.index,
                name=case.name,
                inputs="",
                passed=not failed,
                reason=CaseReason.WRONG_OUTPUT if failed else CaseReason.PASSED,
                message="",
                points=0.0 if failed else 1.0,
                max_points=1.0,
                outputs=(check,),
            )
        )
    return results


def pattern_texts(
    spec: ProblemSpec, seed: int, fails: Callable[[dict[str, int]], bool]
) -> list[str]:
    cases = make_cases(spec, seed)
    hints = diagnose(spec, verdicts(spec, cases, fails), {}, cases=cases)
    return [h.text for h in hints if h.kind == "pattern"]


def test_a_failure_on_negative_seeds_only_is_named(problem: Problem) -> None:
    texts = pattern_texts(problem.spec, 5, lambda v: v["seed"] < 0)
    assert texts == [
        "A pattern in your failures: seed is negative in every failing case and in no passing "
        "one. Look at what your code does differently there."
    ]


def test_a_failure_on_long_x_only_is_named_as_a_category_not_a_bound(problem: Problem) -> None:
    spec = problem.spec
    for seed in range(5):
        (text,) = pattern_texts(spec, seed, lambda v: v["len(x)"] >= 22)
        assert "len(x) is large (in the top third of its range) in every failing case" in text
        # No value taken from the cases' inputs (issue 24: "seed <= -57212216").
        assert not any(ch.isdigit() for ch in text), text


def test_no_pattern_hint_when_a_passing_case_passes_only_near_its_tolerance(
    problem: Problem,
) -> None:
    spec = problem.spec
    cases = make_cases(spec, 9)

    def texts(ratio: float) -> list[str]:
        results = verdicts(spec, cases, lambda v: v["hidden"] % 2 == 0, passing_ratio=ratio)
        return [h.text for h in diagnose(spec, results, {}, cases=cases) if h.kind == "pattern"]

    assert texts(0.01) and texts(0.1)  # float noise is a hundredth of the tolerance
    # A case passing with half its tolerance may pass only because its tolerance is larger
    # (a float16 sum in a bigger model): the split says nothing about its inputs.
    assert texts(0.5) == []


def test_a_failure_on_even_hidden_and_on_zero_x_are_named(problem: Problem) -> None:
    spec = problem.spec
    (even,) = pattern_texts(spec, 9, lambda v: v["hidden"] % 2 == 0)
    assert "hidden is even in every failing case" in even
    cases = make_cases(spec, 9)
    zero = next(c for c in cases if c.name == "x is all zeros")
    # Two failing cases at least: one failure alone shares too much with nothing.
    assert pattern_texts(spec, 9, lambda v: False) == []
    one = [r for r in verdicts(spec, cases, lambda v: False)]
    one[zero.index] = one[zero.index].model_copy(
        update={"passed": False, "reason": CaseReason.WRONG_OUTPUT}
    )
    assert not [h for h in diagnose(spec, one, {}, cases=cases) if h.kind == "pattern"]


def test_no_pattern_hint_when_every_case_fails(problem: Problem) -> None:
    assert pattern_texts(problem.spec, 5, lambda v: True) == []


def test_the_x64_hint_needs_both_a_failure_and_x64_on(problem: Problem) -> None:
    spec = problem.spec
    cases = make_cases(spec, 5)
    failing = verdicts(spec, cases, lambda v: v["seed"] < 0)
    passing = verdicts(spec, cases, lambda v: False)

    def ids(results: list[CaseResult], x64: bool | None) -> list[str]:
        return [h.id for h in diagnose(spec, results, {}, cases=cases, x64_enabled=x64)]

    assert ids(failing, True)[0] == "x64"
    assert "x64" not in ids(failing, False) and "x64" not in ids(failing, None)
    assert ids(passing, True) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Invalid rng value: 5.0, expected a jax.Array of jax.dtypes.prng_key sub-dtype",
            "float_seed",
        ),
        ("Invalid rng value: -2147483648.0, expected a jax.Array", "float_seed"),
        ("Invalid rng value: 5, expected a jax.Array", "invalid_rng"),
        ("Invalid rng value: Traced<int32[]>with<DynamicJaxprTrace>, expected a", "invalid_rng"),
    ],
)
def test_rng_hints_match_only_what_they_describe(
    problem: Problem, message: str, expected: str
) -> None:
    error = ErrorInfo(type="ValueError", message=message)
    assert [h.id for h in diagnose(problem.spec, [], {}, error)] == [expected]


@pytest.mark.slow
def test_x64_submission_is_told_to_leave_x64_off(problem: Problem) -> None:
    """Sandboxed: the file turns x64 on in the process it runs in (and only a worker reports
    it), so it is not run in the test process."""
    report = sandboxed(WRONG / "x64_enabled.py", problem, seed=11)
    assert 0 < report.score < report.max_score
    ids = [h.id for h in report.hints]
    assert ids[:2] == ["x64", "pattern_seed_negative"]
    assert "Leave x64 off" in report.hints[0].text


def test_traceback_starts_in_the_students_file_and_hides_server_paths(problem: Problem) -> None:
    report = in_process(WRONG / "int32_seed.py", problem)
    assert [h.id for h in report.hints] == ["invalid_rng"]
    error = report.cases[0].error
    assert error is not None
    files = [frame.file for frame in error.frames]
    assert files == [str(WRONG / "int32_seed.py"), ".../flax/nnx/rnglib.py"]
    assert "site-packages" not in report.model_dump_json()
    text = render_text(report)
    assert text.index("int32_seed.py") < text.index(".../flax/nnx/rnglib.py")


def render_text(report: Report) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    print_report(report, console)
    return console.export_text()


def test_a_visible_wrong_case_shows_inputs_got_and_expected(toy: Problem) -> None:
    def wrong_sum(x: object, k: int) -> list[float]:
        values = [float(v) for v in x]  # type: ignore[attr-defined]
        return [len(values), sum(values) * k + 1.0, max(abs(v) for v in values)]

    expected = reference(toy, 1)
    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=1,
        expected=expected,
        runner=FakeRunner(wrong_sum),
    )
    student = student_view(report)
    case = next(c for c in student.cases if not c.passed)
    x = next(a for a in expected.cases[case.index].args if isinstance(a, ArrayArg))
    check = next(o for o in case.outputs if o.name == "scaled_sum")
    assert f"scaled_sum is {check.got:.8g}, expected {check.expected:.8g}" in case.message
    assert f"x=[{', '.join(str(v) for v in x.values)}]" in case.inputs
    text = render_text(student)
    assert f"{check.expected:.8g}" in text and str(x.values[-1]) in text
    data = json.loads(student.model_dump_json())
    shown = next(c for c in data["cases"] if c["index"] == case.index)
    assert shown["outputs"][1]["got"] == check.got and shown["inputs"] == case.inputs


def _returned(case: Case, got: tuple[float, ...], expected: tuple[float, ...]) -> CaseResult:
    checks = tuple(
        OutputCheck(
            name=name,
            passed=abs(g - e) <= (0.0 if name == "num_leaves" else 1e-3),
            got=g,
            expected=e,
            error=abs(g - e),
            tolerance=0.0 if name == "num_leaves" else 1e-3,
        )
        for name, g, e in zip(
            ("num_leaves", "param_sum", "forward_sum"), got, expected, strict=True
        )
    )
    passed = all(c.passed for c in checks)
    return CaseResult(
        index=case.index,
        name=case.name,
        inputs="",
        passed=passed,
        reason=CaseReason.PASSED if passed else CaseReason.WRONG_OUTPUT,
        message="",
        points=float(passed),
        max_points=1.0,
        outputs=checks,
    )


def test_call_hints_name_state_and_nondeterminism_and_nothing_else(problem: Problem) -> None:
    spec = problem.spec
    cases = make_cases(spec, 5)
    # Made-up reference values, different for every case but the exact repeat.
    want = {c.index: (4.0, float(c.index), 100.0 + c.index) for c in cases}
    repeated = next(c for c in cases if cases[-1].name == f"{c.name} again")
    want[cases[-1].index] = want[repeated.index]
    expected = {
        i: CaseOutcome(index=i, kind="returned", values=v, scales=(0.0, 1.0, 1.0))
        for i, v in want.items()
    }
    other_x, _other_seed, again = cases[-3:]
    source = next(c for c in cases if other_x.name.startswith(f"{c.name} with"))

    def hints(got: dict[int, tuple[float, ...]]) -> list[str]:
        results = [_returned(c, got.get(c.index, want[c.index]), want[c.index]) for c in cases]
        return [h.id for h in diagnose(spec, results, expected, cases=cases) if h.kind == "calls"]

    assert hints({}) == []
    # A cache keyed by seed and sizes: "with another x" returns its source's forward sum.
    assert hints({other_x.index: (4.0, want[other_x.index][1], want[source.index][2])}) == [
        "calls_depend"
    ]
    # The same numbers as a case seeded 0 are what a stateless Rngs(0) gives: no such hint.
    zero = next(c for c in cases if c.name == "seed 0")
    assert hints({other_x.index: (4.0, want[other_x.index][1], want[zero.index][2])}) == []
    # A wrong sum near zero matches a sum near zero by chance (issue 24: -0.0006 matched an
    # all-zero x's 0.0 within a tolerance of 0.06): no such hint.
    want[source.index] = (4.0, float(source.index), 0.05)
    assert hints({other_x.index: (4.0, want[other_x.index][1], 0.05)}) == []
    # An identical call returning another forward sum.
    assert hints({again.index: (4.0, want[again.index][1], 5.0)}) == ["nondeterministic"]


def test_a_long_exception_message_is_printed_once(problem: Problem) -> None:
    report = in_process(WRONG / "plain_list.py", problem)
    message = report.cases[0].error.message  # type: ignore[union-attr]
    assert len(message.splitlines()) > 20  # Flax's advice, options 1 to 5
    console = Console(width=2000, record=True, file=io.StringIO())
    print_report(report, console)
    text = console.export_text()
    # Issue 24: the case's row and the traceback each printed it (85 lines for this file).
    assert text.count("Disable pytree for this class") == 1
    assert "the whole message is in the traceback below" in text
