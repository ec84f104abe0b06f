"""What a student reads: one mistake shown once, hidden inputs kept out of exception messages,
no grading seed in a student's view, piped output at a useful width, "did you mean" for a
mistyped file. Grading here goes through the FakeRunner (milliseconds) where the sandbox is not
the point, and the commands run in process (CliRunner); a submission that looks through its own
process, forges lines or exits is graded in a real sandbox.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner
from conftest import TOY
from fakes import reference, sandbox, sandboxed
from rich.console import Console

from grader.cli import cli
from grader.feedback import HIDDEN_INPUTS, OTHER_EXCEPTION, OUTPUT_WITHHELD, student_view
from grader.grading import grade
from grader.models import Report
from grader.problems import Problem
from grader.render import PIPED_WIDTH, output_console, verdict

SEED = 1


def _with_hidden_cases(toy: Problem) -> Problem:
    """The toy with only its edge case visible, as a real problem hides most cases."""
    cases = toy.spec.cases.model_copy(update={"visible": ("k is 0",)})
    spec = toy.spec.model_copy(update={"cases": cases})
    return Problem(spec=spec, spec_path=toy.spec_path, reference_path=toy.reference_path)


def quotes_its_input(x: object, k: int) -> list[float]:
    """A mistake raising in every case, quoting an input as nnx.Rngs quotes a float seed."""
    first = float(x[0])  # type: ignore[index]
    raise ValueError(f"Invalid value: {first!r}, expected a key of length {len(x)}")  # type: ignore[arg-type]


def _graded(toy: Problem, *, hidden: bool = True) -> Report:
    from grader.run import FakeRunner

    return grade(
        TOY / "submissions" / "correct.py",
        problem=_with_hidden_cases(toy) if hidden else toy,
        seed=SEED,
        expected=reference(toy, SEED),
        runner=FakeRunner(quotes_its_input),
    )


def _text(report: Report, width: int = 120) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(verdict(report))
    return out.getvalue()


def test_one_exception_in_every_case_is_shown_once(toy: Problem) -> None:
    report = _graded(toy, hidden=False)
    cases = len(report.cases)
    text = _text(student_view(report), width=300)
    # In the first row only (the FakeRunner's exceptions have no frames: no traceback).
    assert text.count("expected a key of length") == 1
    assert text.count("same as case 0") == cases - 1
    assert len(text.splitlines()) <= cases + 6


def test_hidden_cases_show_the_exceptions_type_but_not_its_message(toy: Problem) -> None:
    report = _graded(toy)
    hidden = [case for case in report.cases if not case.visible]
    assert hidden
    hidden_values = [repr(float(c.inputs.split("[")[1].split(",")[0].rstrip("]"))) for c in hidden]
    student = student_view(report)
    shown = _text(student) + student.model_dump_json()
    for value in hidden_values:
        assert value not in shown
    for case in student.cases:
        assert case.error is not None and case.error.type == "ValueError"
        if case.visible:
            assert case.error.message.startswith("Invalid value: ")
        else:
            assert case.error.message == ""
            assert case.message == (
                "Your function raised ValueError (hidden case: messages and printed output "
                "are not shown)."
            )
    # Staff see every message as raised.
    assert all(value in report.model_dump_json() for value in hidden_values)
    assert all(value in _text(report, width=400) for value in hidden_values)


def test_the_seed_is_in_the_staff_view_only(toy: Problem) -> None:
    report = _graded(toy)
    assert f"seed {SEED} ·" in _text(report)
    assert "seed" not in _text(student_view(report)).split("Traceback")[-1]


def test_piped_output_is_as_wide_as_columns_says_else_wide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_console().width == PIPED_WIDTH  # pytest's stdout is not a terminal
    monkeypatch.setenv("COLUMNS", "132")
    assert output_console().width == 132


def _grader(*args: str, columns: str | None = None) -> click.testing.Result:
    """The command run in process, its output piped (not a terminal), $COLUMNS as given."""
    return CliRunner().invoke(cli, args, env={"COLUMNS": columns})


def test_piped_statement_is_not_wrapped_at_80_columns() -> None:
    args = ("show", "vector_stats", "--problems-dir", str(TOY / "problems"))
    piped = _grader(*args)
    assert piped.exit_code == 0, piped.output
    sentence = "the sum of x times k, and the largest |element| of x."
    assert any(sentence in line and len(line) > 80 for line in piped.stdout.splitlines())
    narrow = _grader(*args, columns="60")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60


def test_a_mistyped_file_name_gets_did_you_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_solution.py").write_text("def vector_stats(x, k):\n    return [0, 0, 0]\n")
    (tmp_path / "notes.txt").write_text("")
    done = _grader("check", "my_soluton.py")
    assert done.exit_code == 2
    assert "my_soluton.py does not exist. Did you mean my_solution.py?" in done.stderr
    far = _grader("check", "answer.py")
    assert far.exit_code == 2
    assert "answer.py does not exist. Python files there: my_solution.py." in far.stderr


def test_gradescope_results_hide_hidden_inputs_too(toy: Problem) -> None:
    from grader.render import gradescope_json

    report = _graded(toy)
    results = json.loads(gradescope_json(student_view(report)))
    hidden = [t for t, c in zip(results["tests"], report.cases, strict=True) if not c.visible]
    assert hidden
    assert all("Invalid value" not in test["output"] for test in hidden)
    assert all(test["output"].startswith("(hidden case)\nYour function raised") for test in hidden)


# A submission that tries every way out for a hidden case's inputs: printed (stdout and
# stderr), as its exception's message, as the name of an exception class of its own, as a
# line number and a source line it forged, as a function's name, and as what it returned.
LEAKY = """
import base64
import linecache
import sys

import numpy as np

_calls = [0]


def _codes(seed, x):
    s = int(seed)
    raw = np.asarray(x, dtype=np.float32).tobytes()
    first = float(np.asarray(x, dtype=np.float32)[0])
    return [str(s), hex(s), str(s)[::-1], str(s + 1), base64.b64encode(raw).decode(), repr(first)]


def graphdef_vs_state(seed, x, features, hidden):
    kind = _calls[0] % 4
    _calls[0] += 1
    text = " ".join(_codes(seed, x))
    print("leak:", text)
    print("leak:", text, file=sys.stderr)
    if kind == 0:
        raise ValueError(text)
    if kind == 1:
        tag = hex(abs(int(seed)))[2:]
        line = abs(int(seed)) % 10**6 + 1
        kind_of_error = type("Leak_" + tag, (Exception,), {})
        source = "\\n" * (line - 1) + f"def leak_{tag}():\\n    raise error(text)\\n"
        linecache.cache[__file__] = (1, None, [f"# {text}\\n"] * (line + 3), __file__)
        scope = {"error": kind_of_error, "text": text}
        exec(compile(source, __file__, "exec"), scope)
        scope[f"leak_{tag}"]()
    if kind == 2:
        return "not numbers: " + text
    return [float(seed), float(abs(int(seed)) % 997), 0.0]
"""


def _hidden_codes(report: Report, problem: Problem, *, printed: bool) -> list[str]:
    """Every spelling of a hidden case's seed and x that LEAKY prints, or (`printed` False)
    these and a few more; none
    that a visible case (whose inputs a student sees) shares, and none short enough to turn up
    by chance."""
    import base64

    import numpy as np

    from grader.cases import make_cases

    def codes(case: object) -> set[str]:
        values = dict(zip((p.name for p in problem.spec.parameters), case.args, strict=False))  # type: ignore[attr-defined]
        s = int(values["seed"].value)
        x = np.asarray(values["x"].values, dtype=np.float32)
        raw = base64.b64encode(x.tobytes()).decode()
        tag = hex(abs(s))[2:]
        spelled = {str(s), hex(s), str(s)[::-1], str(s + 1), raw, repr(float(x[0]))}
        if not printed:  # and a few more the submission did not print as such
            spelled |= {str(abs(s)), tag, f"{float(x[0]):.6g}", str(abs(s) % 10**6 + 1)}
        return {code for code in spelled if len(code) >= 6}

    cases = {case.index: case for case in make_cases(problem.spec, report.seed or 0)}
    shown = set().union(*(codes(cases[c.index]) for c in report.cases if c.visible))
    hidden = set().union(*(codes(cases[c.index]) for c in report.cases if not c.visible))
    return sorted(hidden - shown)


@pytest.mark.slow
def test_no_spelling_of_a_hidden_input_reaches_the_student(
    problem: Problem, tmp_path: Path
) -> None:
    """Sandboxed: the submission rewrites Python's line cache and makes classes and code of its
    own, which it must not do in the test process."""
    from grader.render import gradescope_json

    leaky = tmp_path / "leaky.py"
    leaky.write_text(LEAKY)
    staff = sandboxed(leaky, problem, seed=11)
    hidden = [case for case in staff.cases if not case.visible]
    assert len(hidden) >= 8
    # Each way out was taken by hidden cases.
    reasons = {case.reason for case in hidden}
    assert reasons >= {"exception", "invalid_output", "wrong_output"}
    printed = _hidden_codes(staff, problem, printed=True)
    codes = _hidden_codes(staff, problem, printed=False)
    assert len(printed) > 40 and len(codes) > len(printed)
    # The staff report keeps all of it: every code of a hidden case is in what staff read.
    staff_text = staff.model_dump_json()
    assert [code for code in printed if code not in staff_text] == []

    student = student_view(staff)
    student_text = "\n".join(
        [student.model_dump_json(), _text(student, width=400), gradescope_json(student)]
    )
    leaked = [code for code in codes if code in student_text]
    assert leaked == [], [student_text[student_text.find(c) - 300 :][:400] for c in leaked[:2]]
    # What a hidden case still says: the kind of failure, and the type of Python's exception.
    for case in student.cases:
        if case.visible:
            continue
        assert case.inputs == HIDDEN_INPUTS and case.seconds is None
        if case.reason == "exception":
            assert case.error is not None and case.error.message == ""
            assert case.error.type in ("ValueError", OTHER_EXCEPTION)
            assert case.message.startswith(f"Your function raised {case.error.type}")
            assert all(f.function == "" and f.source == "" for f in case.error.frames)
    kinds = {case.error.type for case in student.cases if case.error and not case.visible}
    assert kinds == {"ValueError", OTHER_EXCEPTION}
    # The genuine line of the ValueError is still pointed at.
    raised = next(c for c in student.cases if c.error and c.error.type == "ValueError")
    assert (
        raised.error is not None
        and raised.error.line == LEAKY.split("\n").index("        raise ValueError(text)") + 1
    )
    # Printed output: none at all, and the student is told why.
    assert student.stdout == OUTPUT_WITHHELD and student.stderr == ""
    assert "Printed output is shown for visible cases only" in _text(student)


def test_printed_output_is_shown_when_every_case_is_visible(toy: Problem) -> None:
    from grader.run import FakeRunner

    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=SEED,
        expected=reference(toy, SEED),
        runner=FakeRunner(quotes_its_input, stdout="debugging: here\n", stderr="careful\n"),
    )
    assert all(case.visible for case in report.cases)
    student = student_view(report)
    assert (student.stdout, student.stderr) == ("debugging: here\n", "careful\n")
    assert "Your code printed (end of stdout):\ndebugging: here" in _text(student)
    assert all(c.error and c.error.message.startswith("Invalid value:") for c in student.cases)


@pytest.mark.slow
def test_a_load_failure_is_shown_in_full_as_no_case_was_given_yet(
    problem: Problem, tmp_path: Path
) -> None:
    """A worker is given its first case only once the file has loaded: a file that fails to
    load held no case's inputs, so its message and what it printed reach the student (who
    needs them to fix an import), even when the grading has hidden cases. Sandboxed: what the
    worker's process holds is the subject."""
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import gc\n"
        "held = [repr(o) for o in gc.get_objects() if type(o).__name__ in ('Case', 'RunRequest')]\n"
        "print('loading, holding', len(held))\n"
        "raise RuntimeError('no cases: ' + ' '.join(h for h in held if 'args=' in h))\n"
        "def graphdef_vs_state(seed, x, features, hidden):\n"
        "    return [0, 0.0, 0.0]\n"
    )
    staff = sandboxed(broken, problem, seed=11)
    assert staff.status == "import_error"
    assert any(not case.visible for case in staff.cases)
    student = student_view(staff)
    assert student.error is not None and student.error.message == "no cases: "
    assert "broken.py raised RuntimeError while being loaded: no cases:" in student.message
    assert student.stdout == "loading, holding 1\n"  # the request, which holds no case
    assert "loading, holding 1" in _text(student)


# Correct solutions that compile programs the reference does not (a jitted forward pass, other
# orders and dtypes of the sums), which a fully isolated run may read from JAX's compilation
# cache but not write to it.
_OWN_PROGRAMS = (
    "jit_forward_reversed",
    "numpy_manual_forward",
    "sequential_float32",
    "tree_reduce_tuple",
    "fsum_float64",
)


@pytest.mark.slow
def test_no_output_of_a_batch_carries_the_graders_paths_or_jax_cache_chatter(
    tmp_path: Path,
) -> None:
    from conftest import SUBMISSIONS

    from grader.cache import cache_root
    from grader.run.policy import full_isolation_problem

    if full_isolation_problem() is not None:
        pytest.skip("needs full isolation, where submissions read JAX's cache as another user")
    folder = tmp_path / "class"
    folder.mkdir()
    for name in _OWN_PROGRAMS:
        (folder / f"{name}.py").write_bytes((SUBMISSIONS / "correct" / f"{name}.py").read_bytes())
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "batch", str(folder), "--out", str(out), "--seed", "5"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    staff = {
        n: Report.model_validate_json((out / "staff" / f"{n}.json").read_text())
        for n in _OWN_PROGRAMS
    }
    assert all(r.full_marks and r.isolation == "full" for r in staff.values()), {
        n: (r.status, r.score, r.isolation) for n, r in staff.items()
    }
    # Everything a person reads: every file the batch wrote (reports of both views, pages,
    # summary, grades), what it printed, and each student's terminal verdict.
    texts = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    texts["batch stdout"], texts["batch stderr"] = done.stdout, done.stderr
    for name, report in staff.items():
        texts[f"{name} staff verdict"] = _text(report, width=400)
        texts[f"{name} student verdict"] = _text(student_view(report), width=400)
    assert len([n for n in texts if n.endswith(".json")]) >= 2 * len(_OWN_PROGRAMS)
    forbidden = {
        "the cache folder": str(cache_root()),
        "the venv": sys.prefix,
        "the home folder": str(Path.home()),
        "JAX's cache warnings": "persistent compilation cache",
    }
    found = [
        (what, where)
        for where, text in texts.items()
        for what, it in forbidden.items()
        if it in text
    ]
    assert found == []


def test_a_threshold_hint_which_states_a_hidden_input_is_for_staff_only(toy: Problem) -> None:
    from grader.models import Hint

    threshold = Hint(
        id="pattern_len(x)_above",
        kind="pattern",
        text="A pattern in your failures: len(x) >= 5 in every failing case, and len(x) <= 3 "
        "in every passing one.",
        cases=(1, 2),
    )
    sign = Hint(id="pattern_k_negative", kind="pattern", text="k is negative ...", cases=(1, 2))
    hints = {"hints": (threshold, sign)}
    hidden = _graded(toy).model_copy(update=hints)
    assert student_view(hidden).hints == (sign,)
    assert hidden.hints == (threshold, sign)
    shown = _graded(toy, hidden=False).model_copy(update=hints)
    assert student_view(shown).hints == (threshold, sign)  # every case visible: nothing hidden


def test_the_graders_cache_folder_is_named_not_spelled_in_printed_output(toy: Problem) -> None:
    """A submission that turns JAX's cache writes back on gets JAX's warnings, which spell the
    cache folder it was shown read-only; the report names it instead."""
    from grader.cache import cache_root
    from grader.grading import GRADER_CACHE
    from grader.run import FakeRunner

    warning = (
        f".../jax/_src/compiler.py:833: UserWarning: Error writing persistent compilation cache "
        f"entry for 'jit_f': OSError: [Errno 30] Read-only file system: '{cache_root()}/jax-0/x'"
    )
    report = grade(
        TOY / "submissions" / "correct.py",
        problem=toy,
        seed=SEED,
        expected=reference(toy, SEED),
        runner=FakeRunner(quotes_its_input, stdout=f"{cache_root()}\n", stderr=warning),
    )
    assert str(cache_root()) not in report.model_dump_json() + _text(report, width=400)
    assert report.stdout == f"{GRADER_CACHE}\n"
    assert f"Read-only file system: '{GRADER_CACHE}/jax-0/x'" in report.stderr


# A submission that keeps every input it is called with and looks through its own process
# for the grader's objects holding cases, then says all of it in each exception's message.
HOARDER = """
import gc

_calls = []


def graphdef_vs_state(seed, x, features, hidden):
    _calls.append(int(seed))
    held = [repr(o) for o in gc.get_objects() if type(o).__name__ in ("Case", "RunRequest")]
    raise ValueError(f"calls {_calls} held {held}")
"""


@pytest.mark.slow
def test_a_visible_case_cannot_say_a_hidden_cases_inputs(problem: Problem, tmp_path: Path) -> None:
    """A worker is given each case only after the last one's outcome, the visible ones first:
    what a visible case's exception says (shown to the student) was said before the process
    held any hidden input. Sandboxed: what the worker's process holds is the subject."""
    from grader.cases import make_cases

    hoarder = tmp_path / "hoarder.py"
    hoarder.write_text(HOARDER)
    staff = sandboxed(hoarder, problem, seed=11)
    cases = {case.index: case for case in make_cases(problem.spec, 11)}

    def seed_of(index: int) -> str:
        return str(int(cases[index].args[0].value))

    visible = [case for case in staff.cases if case.visible]
    hidden = {seed_of(case.index) for case in staff.cases if not case.visible}
    hidden = {seed for seed in hidden if len(seed) >= 4} - {seed_of(c.index) for c in visible}
    assert len(visible) >= 3 and len(hidden) >= 8
    # The last hidden case held every seed, the hidden ones included (staff read them all).
    last = max((case for case in staff.cases if not case.visible), key=lambda c: c.index)
    assert last.error is not None
    assert all(seed in last.error.message for seed in hidden)
    student = student_view(staff)
    for case in student.cases:
        if not case.visible:
            continue
        assert case.error is not None and seed_of(case.index) in case.error.message
        said = case.error.message + case.message
        assert [seed for seed in hidden if seed in said] == [], case.name
    assert [seed for seed in hidden if seed in _text(student, width=400)] == []


# A submission that puts a number made from a hidden input where a student would otherwise
# read it: the line its exception is raised at (a code object compiled under its own file's
# name, after that many blank lines), or the exit code of its process.
FORGER = """
import os

MODE = {mode!r}
_calls = [0]


def vector_stats(x, k):
    _calls[0] += 1
    number = int(round(abs(float(x[0])) * 1000)) % 40000 + 7
    if MODE == "exit" and k != 0:  # the visible case is "k is 0"
        os._exit(number % 250 + 3)
    scope = {{}}
    source = "\\n" * number + "def vector_stats():\\n    raise ValueError('forged')\\n"
    exec(compile(source, __file__, "exec"), scope)
    scope["vector_stats"]()
"""
CALL = '    scope["vector_stats"]()'


@pytest.mark.parametrize("mode", ["line", "exit"])
def test_a_hidden_case_shows_no_line_or_exit_code_the_code_chose(
    mode: str, toy: Problem, tmp_path: Path
) -> None:
    """Sandboxed: the submission ends its process (os._exit) in one mode."""
    forger = tmp_path / "forger.py"
    # A long comment, so that any line number up to the file's size in bytes looks possible.
    forger.write_text(FORGER.format(mode=mode) + "# " + "padding " * 6000 + "\n")
    problem = _with_hidden_cases(toy)
    expected = reference(toy, SEED)
    staff = grade(forger, problem=problem, seed=SEED, expected=expected, runner=sandbox())
    hidden = [case for case in staff.cases if not case.visible]
    assert len(hidden) >= 3
    numbers: list[str] = []
    for case in hidden:  # the staff report holds each number the submission chose
        x0 = float(case.inputs.split("[", 1)[1].split(",")[0].split("]")[0])
        number = round(abs(x0) * 1000) % 40000 + 7
        if mode == "exit" and case.inputs.endswith("k=0"):
            continue
        if mode == "exit":
            numbers.append(str(number % 250 + 3))
            assert f"exited with code {numbers[-1]}" in case.message
        else:
            numbers.append(str(number + 2))
            assert case.error is not None and case.error.line == number + 2
    student = student_view(staff)
    text = _text(student, width=400)
    if mode == "line":  # one line per grading that only hidden cases reached: the first's
        first = student.cases[hidden[0].index]
        assert first.error is not None and str(first.error.line) == numbers[0]
        numbers = numbers[1:]
    for case in student.cases[hidden[0].index + 1 :] if mode == "line" else student.cases:
        if case.visible:  # its forged line ran before any hidden input was sent: shown
            assert mode == "exit" or (case.error is not None and case.error.line)
            continue
        lines = (
            {str(f.line) for f in case.error.frames} | {str(case.error.line)}
            if case.error
            else set()
        )
        assert not lines & set(numbers), case.error
        assert not any(f"line {n}" in case.message or f"code {n}" in case.message for n in numbers)
        if mode == "line":
            # Only the line of the real call, which the visible case's traceback showed too.
            assert case.error is not None and case.error.line is None
            assert [f.line for f in case.error.frames] == [FORGER.split("\n").index(CALL) + 1]
            assert "Nor its line: a grading shows one line that only hidden cases" in case.message
        else:
            assert case.message.startswith("The process running your code ended during this")
    assert len(numbers) >= 2
    assert not any(f"line {number}" in text or f"code {number}" in text for number in numbers)
