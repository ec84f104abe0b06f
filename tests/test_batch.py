"""`grader batch` as staff run it: a real folder, a real browser.

`test_batch_writes_every_output` is the end-to-end test of `grader batch` (a process, the
sandbox, a submission that loops forever), and a batch killed midway is resumed for real; the
others run the command in this process on in-process runners (`helpers.invoke`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SUBMISSIONS, TOY, TOY_DIRS
from helpers import invoke

from grader.engine import Setup
from grader.models import Report

GRADER = [sys.executable, "-m", "grader"]
REPO = Path(__file__).resolve().parent.parent


def quick_timeout_problem(folder: Path) -> tuple[str, ...]:
    """The real problem, with a case stopped after 8 s of CPU time and one restart (not 30 s
    and 3): an endless loop then costs seconds, not a minute. The options pointing at it."""
    folder.mkdir()
    spec = (REPO / "problems" / "graphdef_vs_state.toml").read_text()
    for default, quick in (
        ("case_seconds = 30 ", "case_seconds = 8 "),
        ("max_restarts = 3", "max_restarts = 1"),
    ):
        assert default in spec, default
        spec = spec.replace(default, quick)
    (folder / "graphdef_vs_state.toml").write_text(spec)
    return ("--problems-dir", str(folder), "--reference-dir", str(REPO / "reference"))


def make_class(folder: Path) -> Path:
    """A class folder mixing correct, wrong and broken submissions with bad entries."""
    folder.mkdir()
    shutil.copyfile(SUBMISSIONS / "correct" / "concat_list.py", folder / "alice.py")
    shutil.copyfile(SUBMISSIONS / "correct" / "tree_reduce_tuple.py", folder / "erin.py")
    shutil.copyfile(SUBMISSIONS / "wrong" / "relu.py", folder / "bob.py")
    shutil.copyfile(SUBMISSIONS / "faults" / "syntax_error.py", folder / "carol.py")
    shutil.copyfile(SUBMISSIONS / "faults" / "infinite_loop.py", folder / "frank.py")
    (folder / "notes.txt").write_text("not a submission\n")
    (folder / "old").mkdir()
    (folder / "escape.py").symlink_to("/etc/passwd")
    (folder / "Dave.py").write_text("def graphdef_vs_state(*a): return [4, 0, 0]\n")
    (folder / "dave.PY").write_text("def graphdef_vs_state(*a): return [4, 0, 0]\n")
    return folder


@pytest.mark.slow
def test_batch_writes_every_output(tmp_path: Path) -> None:
    """The end-to-end test of `grader batch`: a process grading a class in the sandbox."""
    folder = make_class(tmp_path / "class")
    out = tmp_path / "out"
    problem = quick_timeout_problem(tmp_path / "problems")
    result = subprocess.run(
        [*GRADER, "batch", str(folder), "--out", str(out), "--seed", "5", *problem],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    students = {"alice", "bob", "carol", "erin", "frank"}
    reports = {s: Report.model_validate_json((out / f"{s}.json").read_text()) for s in students}
    assert {s: r.status.value for s, r in reports.items()} == {
        "alice": "graded",
        "erin": "graded",
        "bob": "graded",
        "carol": "syntax_error",
        "frank": "timeout",
    }
    assert reports["alice"].full_marks and reports["erin"].full_marks
    assert 0 < reports["bob"].score < reports["bob"].max_score
    staff = {
        s: Report.model_validate_json((out / "staff" / f"{s}.json").read_text()) for s in students
    }
    assert {r.seed for r in staff.values()} == {5}  # one case set for everyone
    assert {r.seed for r in reports.values()} == {None}  # students' views never hold it
    assert {r.submission.path for r in reports.values()} == {f"{s}.py" for s in students}

    with (out / "grades.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    graded_rows = [row for row in rows if row["status"] != "skipped"]
    assert [row["student"] for row in graded_rows] == sorted(students)
    # Every submission file found has a row; one not graded says why and has no score.
    not_graded = {row["student"]: row for row in rows if row["status"] == "skipped"}
    assert set(not_graded) == {"Dave", "dave", "escape"}
    assert all(row["score"] == row["max_score"] == "" for row in not_graded.values())
    assert "duplicate student id 'dave'" in not_graded["Dave"]["note"]
    assert "outside the folder" in not_graded["escape"]["note"]
    for row in graded_rows:
        report = reports[row["student"]]
        assert float(row["score"]) == report.score
        assert float(row["max_score"]) == report.max_score
        assert row["status"] == report.status.value
        assert row["sha256"] == report.submission.sha256

    summary = json.loads((out / "summary.json").read_text())
    assert summary["students"] == 5
    assert summary["full_marks"] == 2
    assert summary["by_status"] == {"graded": 3, "syntax_error": 1, "timeout": 1}
    assert sum(b["count"] for b in summary["scores"]["histogram"]) == 5
    assert len(summary["case_pass_rates"]) == 17
    assert all(rate["graded"] == 3 for rate in summary["case_pass_rates"])
    # Pass rates are over every student: carol's syntax error and frank's timeout passed none.
    assert all(rate["students"] == 5 for rate in summary["case_pass_rates"])
    assert all(rate["passed"] <= 3 for rate in summary["case_pass_rates"])
    assert summary["reports"]["carol"]["failed_cases"] == list(range(17))
    assert summary["reports"]["alice"]["failed_cases"] == []
    assert round(summary["scores"]["mean"], 2) == summary["scores"]["mean"]
    # Every hint given is counted once per student who got it.
    given = [hint for report in reports.values() for hint in {h.id for h in report.hints}]
    assert {h["id"]: h["students"] for h in summary["hints"]} == {
        hint: given.count(hint) for hint in given
    }
    # A readable page per student, linked from the index; the staff view (hidden inputs).
    page = (out / "bob.html").read_text()
    staff = Report.model_validate_json((out / "staff" / "bob.json").read_text())
    hidden = next(case for case in staff.cases if not case.visible)
    assert hidden.inputs.split(",")[0] in page
    assert 'href="./bob.html"' in (out / "index.html").read_text()
    skipped = {s["name"]: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"notes.txt", "old", "escape.py", "Dave.py", "dave.PY"}
    assert "outside the folder" in skipped["escape.py"]
    assert "duplicate student id" in skipped["Dave.py"]
    assert (out / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert "skipped escape.py: symlink pointing outside the folder" in result.stderr


def test_empty_folder_is_a_batch_of_nobody(in_process: Setup, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke(
        in_process, "batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), *TOY_DIRS
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["students"] == 0 and summary["skipped"] == []
    assert (tmp_path / "out" / "grades.csv").read_text().count("\n") == 1  # just the header


def toy_class(folder: Path, count: int, *, slow: bool = False) -> None:
    """`count` correct toy submissions, each a different file; `slow`: each starts slowly."""
    folder.mkdir()
    body = (TOY / "submissions" / "correct.py").read_text()
    # A slow start keeps the batch busy long enough to be killed midway.
    start = "import time\ntime.sleep(1.5)\n" if slow else ""
    for number in range(count):
        (folder / f"s{number:02d}.py").write_text(f"{start}# {number}\n" + body)


def toy_batch_command(folder: Path, out: Path, *extra: str) -> list[str]:
    """`grader batch` on the toy problem, one submission at a time."""
    return [*GRADER, "batch", str(folder), "--out", str(out), "--workers", "1", *TOY_DIRS, *extra]


def run_toy_batch(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        toy_batch_command(folder, out, *extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
def test_batch_killed_midway_resumes_without_regrading(tmp_path: Path) -> None:
    """A real `grader batch` process killed midway; the rerun grades only what was left."""
    folder, out = tmp_path / "class", tmp_path / "out"
    toy_class(folder, 8, slow=True)
    process = subprocess.Popen(
        toy_batch_command(folder, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("s*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {p.name: p.read_bytes() for p in out.glob("s*.json")}
    assert 3 <= len(done_before) < 8

    result = run_toy_batch(folder, out)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before)} unchanged since the last run" in result.stderr
    for name, content in done_before.items():
        assert (out / name).read_bytes() == content  # not regraded, not rewritten
    with (out / "grades.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["student"] for row in rows] == [f"s{n:02d}" for n in range(8)]
    assert all(row["score"] == row["max_score"] for row in rows)
    seeds = {
        Report.model_validate_json((out / "staff" / f"s{n:02d}.json").read_text()).seed
        for n in range(8)
    }
    assert len(seeds) == 1  # the rerun kept the first run's seed


def test_rerun_regrades_changed_files_and_all_with_force(in_process: Setup, tmp_path: Path) -> None:
    folder, out = tmp_path / "class", tmp_path / "out"
    toy_class(folder, 8)

    def batch(*extra: str) -> str:
        result = invoke(in_process, "batch", str(folder), "--out", str(out), *TOY_DIRS, *extra)
        assert result.exit_code == 0, result.stderr
        return result.stderr

    assert "8 graded now, 0 unchanged" in batch("--workers", "1")
    first = {p.name: p.read_bytes() for p in out.glob("s*.json")}
    (folder / "s01.py").write_text((folder / "s01.py").read_text() + "\n# changed\n")
    assert "1 graded now, 7 unchanged" in batch()
    for name, content in first.items():
        if name != "s01.json":
            assert (out / name).read_bytes() == content  # not regraded, not rewritten
    assert "8 graded now, 0 unchanged" in batch("--force")


@pytest.mark.slow
def test_batch_page_renders_the_summary_in_a_browser(in_process: Setup, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (Debian package 'chromium')")
        pytest.skip("chromium is not installed")
    folder, out = tmp_path / "class", tmp_path / "out"
    toy_class(folder, 3)
    (folder / "s02.py").write_text((TOY / "submissions" / "wrong_peak.py").read_text())
    result = invoke(in_process, "batch", str(folder), "--out", str(out), *TOY_DIRS, "--seed", "3")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    profile = tmp_path / "profile"
    shot = tmp_path / "page.png"
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    page = (out / "index.html").as_uri()
    dom = subprocess.run(
        [*flags, "--dump-dom", page], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1600", page],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000  # a real rendering, not a blank page

    def shown(element_id: str) -> str:
        match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
        assert match, element_id
        return match.group(1)

    assert shown("students") == str(summary["students"]) == "3"
    assert shown("full-marks") == str(summary["full_marks"]) == "2"
    assert float(shown("mean")) == pytest.approx(summary["scores"]["mean"], abs=1e-3)
    assert shown("seed") == "3"
    for rate in summary["case_pass_rates"]:
        assert f"{rate['passed']}/{rate['students']}" in dom
    for student in summary["reports"]:
        assert f'href="./{quote(student)}.html"' in dom
        assert f'href="./{quote(student)}.json"' in dom
    assert dom.count('class="bin"') == len(summary["scores"]["histogram"])


def test_gradescope_results_json(in_process: Setup, tmp_path: Path) -> None:
    results_path = tmp_path / "results" / "results.json"
    wrong = str(TOY / "submissions" / "wrong_peak.py")
    result = invoke(
        in_process, "check", wrong, "--seed", "3", *TOY_DIRS, "--gradescope", str(results_path)
    )
    assert result.exit_code == 1, result.stderr
    results = json.loads(results_path.read_text())
    assert set(results) == {
        "score",
        "output",
        "output_format",
        "test_output_format",
        "test_name_format",
        "visibility",
        "stdout_visibility",
        "tests",
    }
    assert results["output_format"] == "text"  # never rendered as Markdown, HTML or ANSI
    assert len(results["tests"]) == 4
    assert results["score"] == sum(test["score"] for test in results["tests"])
    for test in results["tests"]:
        assert set(test) == {
            "name",
            "number",
            "score",
            "max_score",
            "status",
            "output",
            "output_format",
            "visibility",
        }
        assert test["status"] in {"passed", "failed"}
        assert test["visibility"] in {"visible", "hidden", "after_due_date", "after_published"}
    assert any(test["status"] == "failed" and "peak" in test["output"] for test in results["tests"])
