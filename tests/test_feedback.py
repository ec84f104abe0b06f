"""Feedback: hints in the report and on screen, and hidden cases that give nothing away."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SUBMISSIONS, Grade

from grader.feedback import HIDDEN_INPUTS, student_view
from grader.problems import Problem

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


@pytest.mark.slow
def test_hidden_cases_give_no_expected_values_to_students(
    problem: Problem, grade_file: Grade
) -> None:
    staff = grade_file(WRONG / "ignore_seed.py", problem, seed=11)
    student = student_view(staff)
    secrets = hidden_expected_values(json.loads(staff.model_dump_json()))
    assert len(secrets) > 20
    text = student.model_dump_json()
    assert not [s for s in secrets if s in text]
    hidden = [c for c in student.cases if not c.visible]
    assert len(hidden) == 10 and all(c.inputs == HIDDEN_INPUTS and not c.outputs for c in hidden)
    assert all("param_sum" in c.message for c in hidden)  # still says which output
    visible = [c for c in student.cases if c.visible]
    assert [c.name for c in visible] == ["hidden is 1", "x has one element", "seed 0", "random 1"]
    assert all(c.outputs for c in visible)


@pytest.mark.slow
def test_check_output_leads_with_score_then_hints_and_hides_values(tmp_path: Path) -> None:
    out = tmp_path / "student.json"
    command = [
        sys.executable,
        "-m",
        "grader",
        "check",
        str(WRONG / "state_keys.py"),
        "--seed",
        "11",
    ]
    result = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    text = result.stdout
    assert text.index("points") < text.index("Hints:") < text.index("inputs")  # the table
    assert "state.keys()" in text
    assert "Traceback" not in text
    staff = subprocess.run(
        [*command, "--staff", "--json", "-"], capture_output=True, text=True, check=False
    )
    secrets = hidden_expected_values(json.loads(staff.stdout))
    assert secrets
    assert not [s for s in secrets if s in text or s in out.read_text()]
    assert json.loads(out.read_text())["view"] == "student"


def test_exception_hint_for_a_float_seed(problem: Problem, grade_file: Grade) -> None:
    report = grade_file(WRONG / "float_seed.py", problem)
    assert [h.id for h in report.hints] == ["float_seed"]
    assert report.hints[0].cases == tuple(range(14))
    assert "nnx.Rngs(int(seed))" in report.hints[0].text
