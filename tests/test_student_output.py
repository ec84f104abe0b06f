"""What a student reads: one mistake shown once, hidden inputs kept out of exception messages,
no grading seed in a student's view, piped output at a useful width, "did you mean" for a
mistyped file. Grading here goes through the FakeRunner (milliseconds) where the sandbox is not
the point; the commands are run as students run them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TOY, ReferenceCache
from rich.console import Console

from grader.feedback import student_view
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


def _graded(toy: Problem, references: ReferenceCache) -> Report:
    from grader.run import FakeRunner

    return grade(
        TOY / "submissions" / "correct.py",
        problem=_with_hidden_cases(toy),
        seed=SEED,
        expected=references.get(toy, SEED),
        runner=FakeRunner(quotes_its_input),
    )


def _text(report: Report, width: int = 120) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(verdict(report))
    return out.getvalue()


def test_one_exception_in_every_case_is_shown_once(
    toy: Problem, references: ReferenceCache
) -> None:
    report = _graded(toy, references)
    cases = len(report.cases)
    text = _text(student_view(report))
    # In the first row only (the FakeRunner's exceptions have no frames: no traceback).
    assert text.count("expected a key of length") == 1
    assert text.count("same as case 0") == cases - 1
    assert len(text.splitlines()) <= cases + 6


def test_hidden_cases_keep_their_inputs_out_of_exception_messages(
    toy: Problem, references: ReferenceCache
) -> None:
    report = _graded(toy, references)
    hidden = [case for case in report.cases if not case.visible]
    assert hidden
    hidden_values = [repr(float(c.inputs.split("[")[1].split(",")[0].rstrip("]"))) for c in hidden]
    student = student_view(report)
    shown = _text(student) + student.model_dump_json()
    for value in hidden_values:
        assert value not in shown
    for case in student.cases:
        if case.visible:
            assert "Invalid value: <hidden>" not in case.message
        else:
            assert case.error is not None
            assert case.error.message.startswith("Invalid value: <hidden>, expected a key")
            assert "length <hidden>" in case.message  # len(x) is an input too
    # Staff see every message as raised.
    staff = _text(report)
    assert all(value in report.model_dump_json() for value in hidden_values)
    assert "<hidden>" not in staff


def test_the_seed_is_in_the_staff_view_only(toy: Problem, references: ReferenceCache) -> None:
    report = _graded(toy, references)
    assert f"seed {SEED} ·" in _text(report)
    assert "seed" not in _text(student_view(report)).split("Traceback")[-1]


def test_piped_output_is_as_wide_as_columns_says_else_wide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_console().width == PIPED_WIDTH  # pytest's stdout is not a terminal
    monkeypatch.setenv("COLUMNS", "132")
    assert output_console().width == 132


def _grader(*args: str, cwd: Path, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_piped_statement_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    args = ("show", "vector_stats", "--problems-dir", str(TOY / "problems"))
    piped = _grader(*args, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    sentence = "the sum of x times k, and the largest |element| of x."
    assert any(sentence in line and len(line) > 80 for line in piped.stdout.splitlines())
    narrow = _grader(*args, cwd=tmp_path, columns="60")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60


def test_a_mistyped_file_name_gets_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "my_solution.py").write_text("def vector_stats(x, k):\n    return [0, 0, 0]\n")
    (tmp_path / "notes.txt").write_text("")
    done = _grader("check", "my_soluton.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "my_soluton.py does not exist. Did you mean my_solution.py?" in done.stderr
    far = _grader("check", "answer.py", cwd=tmp_path)
    assert far.returncode == 2
    assert "answer.py does not exist. Python files there: my_solution.py." in far.stderr


def test_gradescope_results_hide_hidden_inputs_too(
    toy: Problem, references: ReferenceCache
) -> None:
    from grader.render import gradescope_json

    report = _graded(toy, references)
    results = json.loads(gradescope_json(student_view(report)))
    hidden = [t for t, c in zip(results["tests"], report.cases, strict=True) if not c.visible]
    assert all("Invalid value: <hidden>" in test["output"] for test in hidden)


def test_printed_hidden_inputs_are_hidden_in_the_student_view(
    toy: Problem, references: ReferenceCache
) -> None:
    from grader.cases import make_cases
    from grader.run import FakeRunner

    problem = _with_hidden_cases(toy)
    cases = make_cases(problem.spec, SEED)
    names = tuple(p.name for p in problem.spec.parameters)
    hidden = next(c for c in cases if c.name != "k is 0")
    first = hidden.summary(names).split("[")[1].split(",")[0].rstrip("]")
    printed = f"debugging: x[0] = {first}\n"
    report = grade(
        TOY / "submissions" / "correct.py",
        problem=problem,
        seed=SEED,
        expected=references.get(toy, SEED),
        runner=FakeRunner(quotes_its_input, stdout=printed),
    )
    assert first in report.stdout
    student = student_view(report)
    assert first not in student.stdout and "x[0] = <hidden>" in student.stdout
    assert first not in _text(student)
