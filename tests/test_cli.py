"""The `grader` command: its output, reports and exit codes.

One test runs `grader check` for real (a process, the sandbox, both ways to start it); the
others run the command in this process on in-process runners (`helpers.invoke`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TOY, TOY_DIRS
from helpers import invoke

from grader.engine import Setup
from grader.models import Report, Status
from grader.run.fake import InProcessRunner

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
    """The end-to-end test of `grader check`: a real process grading in the real sandbox."""
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


def test_less_than_full_marks_exits_one(in_process: Setup) -> None:
    path = str(TOY / "submissions" / "wrong_peak.py")
    result = invoke(in_process, "check", path, *TOY_DIRS, "--seed", "3")
    assert result.exit_code == 1
    assert "peak" in result.stdout


def test_same_seed_repeats_the_grading(in_process: Setup, tmp_path: Path) -> None:
    reports = []
    for name in ("a.json", "b.json"):
        invoke(
            in_process,
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


def test_json_to_stdout_keeps_stdout_parseable(in_process: Setup) -> None:
    path = str(TOY / "submissions" / "correct.py")
    result = invoke(in_process, "check", path, *TOY_DIRS, "--json", "-")
    assert result.exit_code == 0
    Report.model_validate_json(result.stdout)
    assert "points" in result.stderr


def test_load_failure_exits_one(in_process: Setup, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def vector_stats(x, k)\n    return x\n")
    result = invoke(in_process, "check", str(broken), *TOY_DIRS)
    assert result.exit_code == 1
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
def test_usage_errors_exit_two(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    submissions, reference = InProcessRunner(), InProcessRunner()
    result = invoke(Setup(submissions, reference), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert submissions.requests == reference.requests == []  # nothing ran


def test_missing_reference_is_a_usage_error(in_process: Setup, tmp_path: Path) -> None:
    result = invoke(
        in_process,
        "check",
        str(TOY / "submissions" / "correct.py"),
        "--problems-dir",
        str(TOY / "problems"),
        "--reference-dir",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert "reference solution for 'vector_stats' is missing" in result.stderr


def test_show_prints_the_statement(in_process: Setup) -> None:
    result = invoke(in_process, "show", "graphdef_vs_state")
    assert result.exit_code == 0
    assert "def graphdef_vs_state(seed, x, features, hidden):" in result.stdout
    assert "nnx.split" in result.stdout


def test_schema_describes_every_report_field(in_process: Setup) -> None:
    result = invoke(in_process, "schema")
    assert result.exit_code == 0
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


def test_version_names_the_libraries_that_grade(in_process: Setup) -> None:
    result = invoke(in_process, "--version")
    assert result.exit_code == 0
    assert re.search(r"^grader \S+ \(grading with jax \S+, flax \S+, python \S+\)$", result.stdout)


def test_show_needs_no_reference_and_keeps_paragraphs_whole(
    in_process: Setup, tmp_path: Path
) -> None:
    empty = tmp_path / "no-reference"
    empty.mkdir()
    env = {"GRADER_REFERENCE_DIR": str(empty), "COLUMNS": "120"}
    result = invoke(in_process, "show", "graphdef_vs_state", env=env)
    assert result.exit_code == 0, result.stderr
    # The spec's first paragraph is hard-wrapped at under 100 columns; at 120 it fills lines.
    assert "The graphdef is static structure: class and attribute names" in result.stdout


def test_a_syntax_error_is_reported_before_any_process_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def vector_stats(x, k)\n    return x\n")
    empty_reference = tmp_path / "reference"
    empty_reference.mkdir()
    # With a reference folder that would fail if used: nothing may run for a syntax error.
    (empty_reference / "vector_stats.py").write_text("raise SystemExit('the reference ran')\n")
    submissions, reference = InProcessRunner(), InProcessRunner()
    result = invoke(
        Setup(submissions, reference),
        "check",
        str(broken),
        "--problems-dir",
        str(TOY / "problems"),
        "--reference-dir",
        str(empty_reference),
    )
    assert result.exit_code == 1, result.stderr
    # Neither the submission nor the reference was run.
    assert submissions.requests == reference.requests == []
    shown = " ".join(result.stdout.split())  # as read, whatever the wrapping
    assert "status: syntax_error" in shown
    assert "line 1, column 23: expected ':'" in shown
