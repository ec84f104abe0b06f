"""The `grader` command as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TOY, TOY_DIRS

from grader.models import Report, Status

REPO = Path(__file__).resolve().parent.parent


def grader(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-m", "grader"]
        if module
        else [str(Path(sys.executable).parent / "grader")]
    )
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("module", [False, True], ids=["grader", "python -m grader"])
def test_full_marks_exit_zero_and_json_report(module: bool, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report.json"
    result = grader(
        "check",
        str(TOY / "submissions" / "correct.py"),
        *TOY_DIRS,
        "--seed",
        "5",
        "--json",
        str(out),
        module=module,
    )
    assert result.returncode == 0, result.stderr
    assert "8/8 points" in result.stdout
    report = Report.model_validate_json(out.read_text())
    assert report.status is Status.GRADED
    # A student's view, with the seed: `grader check` runs where the reference is.
    assert report.seed == 5 and report.view == "student"
    assert "seed 5 · " in result.stdout
    assert report.submission.sha256 and report.versions.python


def test_less_than_full_marks_exits_one() -> None:
    result = grader("check", str(TOY / "submissions" / "wrong_peak.py"), *TOY_DIRS, "--seed", "3")
    assert result.returncode == 1
    assert "peak" in result.stdout


def test_same_seed_repeats_the_grading(tmp_path: Path) -> None:
    reports = []
    for name in ("a.json", "b.json"):
        grader(
            "check",
            str(TOY / "submissions" / "wrong_peak.py"),
            *TOY_DIRS,
            "--seed",
            "9",
            "--json",
            str(tmp_path / name),
        )
        reports.append(json.loads((tmp_path / name).read_text()))
    strip = ("seconds", "created", "peak_memory_mib")  # measurements, not verdicts
    for report in reports:
        for key in strip:
            report.pop(key)
        for case in report["cases"]:
            case.pop("seconds")
    assert reports[0] == reports[1]


def test_json_to_stdout_keeps_stdout_parseable() -> None:
    result = grader("check", str(TOY / "submissions" / "correct.py"), *TOY_DIRS, "--json", "-")
    assert result.returncode == 0
    Report.model_validate_json(result.stdout)
    assert "points" in result.stderr


def test_load_failure_exits_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def vector_stats(x, k)\n    return x\n")
    result = grader("check", str(broken), *TOY_DIRS)
    assert result.returncode == 1
    assert "syntax_error" in result.stdout and "line 1" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "no/such/file.py"], "does not exist"),
        (["check", "submissions/example.py", "--problem", "nope"], "no problem 'nope'"),
        (["check", "submissions/example.py", "--seed", "-1"], "--seed"),
        (["check", "submissions/example.py", "--frobnicate"], "No such option"),
        (["show", "nope"], "no problem 'nope'"),
    ],
)
def test_usage_errors_exit_two(args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "grader"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_reference_is_a_usage_error(tmp_path: Path) -> None:
    result = grader(
        "check",
        str(TOY / "submissions" / "correct.py"),
        "--problems-dir",
        str(TOY / "problems"),
        "--reference-dir",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "reference solution for 'vector_stats' is missing" in result.stderr


def test_show_prints_the_statement() -> None:
    result = grader("show", "graphdef_vs_state")
    assert result.returncode == 0
    assert "def graphdef_vs_state(seed, x, features, hidden):" in result.stdout
    assert "nnx.split" in result.stdout


def test_schema_describes_every_report_field() -> None:
    result = grader("schema")
    schema = json.loads(result.stdout)
    for name in (
        "status",
        "score",
        "max_score",
        "cases",
        "problem",
        "submission",
        "seed",
        "versions",
    ):
        assert name in schema["required"]
        field = schema["properties"][name]
        if "$ref" in field and "description" not in field:  # described by its model
            field = schema["$defs"][field["$ref"].rsplit("/", 1)[1]]
        assert field.get("description")
    assert schema["additionalProperties"] is False


def test_version_names_the_libraries_that_grade() -> None:
    result = grader("--version")
    assert result.returncode == 0
    assert re.search(r"^grader \S+ \(grading with jax \S+, flax \S+, python \S+\)$", result.stdout)


def test_show_needs_no_reference_and_keeps_paragraphs_whole(tmp_path: Path) -> None:
    empty = tmp_path / "no-reference"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "grader", "show", "graphdef_vs_state"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GRADER_REFERENCE_DIR": str(empty), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    # The spec's first paragraph is hard-wrapped at under 100 columns; at 120 it fills lines.
    assert "The graphdef is static structure: class and attribute names" in result.stdout


def test_a_syntax_error_is_reported_before_any_process_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def vector_stats(x, k)\n    return x\n")
    empty_reference = tmp_path / "reference"
    empty_reference.mkdir()
    # With a reference folder that would fail if used: nothing may run for a syntax error.
    (empty_reference / "vector_stats.py").write_text("raise SystemExit('the reference ran')\n")
    result = grader(
        "check",
        str(broken),
        "--problems-dir",
        str(TOY / "problems"),
        "--reference-dir",
        str(empty_reference),
    )
    assert result.returncode == 1, result.stderr
    shown = " ".join(result.stdout.split())  # as read, whatever the wrapping
    assert "status: syntax_error" in shown
    assert "line 1, column 23: expected ':'" in shown
