"""`grader ci`: a real git repository, a real pull-request commit, real outputs.

`test_pull_request_is_graded_into_summary_junit_and_annotations` is the end-to-end test of
`grader ci` (a process, the sandbox); the other runs of the command are in this process on
in-process runners (`helpers.invoke`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from conftest import SUBMISSIONS, TOY, ReferenceCache
from helpers import invoke, notebook_from_source
from junitparser import Error, Failure, JUnitXml

from grader.ci import Change, FileVerdict, def_line, junit_xml
from grader.ci_checks import check_annotations
from grader.engine import Setup
from grader.feedback import student_view
from grader.grading import grade
from grader.models import Status
from grader.problems import Problem
from grader.run import FakeRunner
from grader.run.protocol import LoadFailure
from grader.run.worker import describe_syntax_error

REPO = Path(__file__).resolve().parent.parent
INJECTION = """# Hostile: tries to inject workflow commands through its exception message.
def graphdef_vs_state(seed, x, features, hidden):
    raise RuntimeError("boom\\n::error file=README.md,line=1::injected%0A::add-mask::x")
"""


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course repository: a base commit, then a pull-request commit."""
    repo = tmp_path / "course"
    (repo / "submissions").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("course\n")
    shutil.copyfile(SUBMISSIONS / "correct" / "fsum_float64.py", repo / "submissions" / "old.py")
    shutil.copyfile(
        SUBMISSIONS / "correct" / "nnx_state_numpy.py", repo / "submissions" / "moved.py"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    shutil.copyfile(SUBMISSIONS / "correct" / "concat_list.py", repo / "submissions" / "alice.py")
    shutil.copyfile(SUBMISSIONS / "wrong" / "state_keys.py", repo / "submissions" / "bob.py")
    shutil.copyfile(SUBMISSIONS / "faults" / "syntax_error.py", repo / "submissions" / "dave.py")
    (repo / "submissions" / "mallory.py").write_text(INJECTION)
    erin = notebook_from_source((SUBMISSIONS / "faults" / "raises.py").read_text())
    (repo / "submissions" / "erin.ipynb").write_text(json.dumps(erin))
    (repo / "submissions" / "notes.txt").write_text("not python\n")
    (repo / "docs.md").write_text("outside submissions/\n")
    git(repo, "rm", "-q", "submissions/old.py")
    git(repo, "mv", "submissions/moved.py", "submissions/carol.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pull request")
    return repo


def run_ci(
    repo: Path, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    summary = tmp_path / "step-summary.md"
    junit = tmp_path / "junit" / "grading.xml"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "ci",
            "--repo",
            str(repo),
            "--junit",
            str(junit),
            "--seed",
            "7",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    return result, summary, junit


def ci_in_process(
    setup: Setup, repo: Path, tmp_path: Path, *args: str
) -> tuple[Result, Path, Path]:
    """`run_ci` in this process, on `setup`'s runners."""
    summary = tmp_path / "step-summary.md"
    junit = tmp_path / "junit" / "grading.xml"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    command = ["ci", "--repo", str(repo), "--junit", str(junit), "--seed", "7", *args]
    return invoke(setup, *command, env=env), summary, junit


@pytest.mark.slow
def test_pull_request_is_graded_into_summary_junit_and_annotations(
    course: Path, tmp_path: Path
) -> None:
    """The end-to-end test of `grader ci`: a process grading a pull request in the sandbox."""
    result, summary_path, junit_path = run_ci(course, tmp_path, "--base", "base", "--head", "pr")
    assert result.returncode == 1, result.stderr  # bob, dave, mallory are below full marks
    summary = summary_path.read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"\| ` (submissions/\w+\.(?:py|ipynb)) ` \| (\S*)", summary)
    }
    assert rows == {
        "submissions/alice.py": "17/17",
        "submissions/bob.py": "0/17",
        "submissions/carol.py": "17/17",
        "submissions/dave.py": "0/17",
        "submissions/erin.ipynb": "0/17",
        "submissions/mallory.py": "0/17",
        "submissions/old.py": "|",
    }
    assert "deleted (not graded)" in summary
    assert "notes.txt" not in summary and "docs.md" not in summary
    assert "state.keys()" in summary  # bob's hint
    assert "(hidden case)" in summary  # hidden cases show no inputs

    xml = JUnitXml.fromfile(str(junit_path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {
        "submissions/alice.py",
        "submissions/bob.py",
        "submissions/carol.py",
        "submissions/dave.py",
        "submissions/erin.ipynb",
        "submissions/mallory.py",
    }
    assert all(len(list(s)) == 17 for name, s in suites.items() if name != "submissions/dave.py")
    # dave's file does not parse: one failing test case with the reason, not 14 skipped ones.
    [dave] = list(suites["submissions/dave.py"])
    assert isinstance(dave.result[0], Failure) and dave.result[0].type == "syntax_error"
    bob_results = [case.result for case in suites["submissions/bob.py"]]
    assert all(isinstance(r[0], Failure) for r in bob_results)
    assert all(case.is_passed for case in suites["submissions/alice.py"])
    assert all(isinstance(case.result[0], Error) for case in suites["submissions/mallory.py"])

    commands = [line for line in result.stdout.splitlines() if line.startswith("::")]
    errors = [line for line in commands if line.startswith("::error")]
    assert any(line.startswith("::error file=submissions/dave.py,line=6,") for line in errors)
    assert any(line.startswith("::error file=submissions/mallory.py,line=3,") for line in errors)
    # A notebook's error is in a cell: the file's first line is marked, the title says where.
    assert any(
        line.startswith("::error file=submissions/erin.ipynb,line=1,title=IndexError in case 0 at ")
        and "cell 3%2C line 3::" in line
        for line in errors
    ), errors
    assert "raised IndexError at cell 3, line 3: list index out of range" in summary
    # bob's outputs are wrong: annotated at the def line the grader found by parsing his file.
    source = (SUBMISSIONS / "wrong" / "state_keys.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if text.startswith("def graphdef_vs_state"))
    bob = [e for e in errors if e.startswith(f"::error file=submissions/bob.py,line={line},")]
    assert len(bob) == 1 and "title=wrong output in 17 of 17 cases" in bob[0]
    assert "state.keys()" in bob[0]  # the hint travels with it
    assert "Seed 7" not in summary and "seed 7" not in summary  # students never see the seed
    # The injected text is escaped inside our own annotation, never a command of its own.
    assert not any("README.md" in line.split("::")[1] for line in errors)
    assert all("file=submissions/" in line for line in errors)
    guards = [line for line in commands if not line.startswith("::error")]
    assert len(guards) == 2 and guards[0].startswith("::stop-commands::")
    assert guards[1] == f"::{guards[0].split('::')[2]}::"


def test_change_without_submissions_exits_zero(
    in_process: Setup, course: Path, tmp_path: Path
) -> None:
    (course / "docs.md").write_text("only docs change\n")
    git(course, "commit", "-q", "-am", "docs")
    result, summary_path, junit_path = ci_in_process(
        in_process, course, tmp_path, "--base", "pr", "--head", "HEAD"
    )
    assert result.exit_code == 0, result.stderr
    assert "No submission under `submissions/` was added or changed." in summary_path.read_text()
    assert len(list(JUnitXml.fromfile(str(junit_path)))) == 0


def test_nothing_is_written_into_the_working_tree_unasked(
    in_process: Setup, course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (course / "docs.md").write_text("only docs change\n")
    git(course, "commit", "-q", "-am", "docs")
    monkeypatch.chdir(course)
    env = {"GITHUB_STEP_SUMMARY": None}
    result = invoke(in_process, "ci", "--base", "pr", "--head", "HEAD", env=env)
    assert result.exit_code == 0, result.stderr
    assert git(course, "status", "--porcelain", "--untracked-files=all").strip() == ""


def test_min_score_threshold_lets_partial_credit_pass(
    in_process: Setup, course: Path, tmp_path: Path
) -> None:
    # bob is only below full marks, so a 0% threshold passes him; the syntax error too.
    args = ("--base", "base", "--head", "pr", "--min-score", "0")
    result, summary, _ = ci_in_process(in_process, course, tmp_path, *args)
    assert result.exit_code == 0, result.stderr
    assert "| ` submissions/bob.py ` | 0/17" in summary.read_text()  # below full marks


def test_unknown_base_is_a_usage_error(in_process: Setup, course: Path, tmp_path: Path) -> None:
    result, _, _ = ci_in_process(in_process, course, tmp_path, "--base", "no-such-ref")
    assert result.exit_code == 2
    assert "'no-such-ref' is not a commit" in result.stderr
    assert "fetch-depth: 0" in result.stderr


def test_outside_a_repository_says_so(in_process: Setup, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    result, _, _ = ci_in_process(in_process, folder, tmp_path, "--base", "main")
    assert result.exit_code == 2
    assert "is not a git repository" in result.stderr
    assert "Traceback" not in result.stderr


def test_workflow_passes_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    workflow = REPO / ".github" / "workflows" / "grade.yml"
    result = subprocess.run(
        [actionlint, str(workflow)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = workflow.read_text()
    assert not re.search(r"^\s*pull_request_target\s*:", text, re.MULTILINE)  # not as a key
    assert "permissions:\n  contents: read" in text
    uses = re.findall(r"uses: (\S+)", text)
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses)


def test_def_line_is_found_by_parsing_never_running() -> None:
    source = (
        b"import os\nos.system('echo pwned')\n\n"
        b"def graphdef_vs_state(seed, x, features, hidden):\n    return 1\n\n"
        b"class Model:\n    def graphdef_vs_state(self):\n        pass\n\n"
        b"def graphdef_vs_state(seed, x, features, hidden):  # the one Python keeps\n"
        b"    return 2\n"
    )
    assert def_line(source, "graphdef_vs_state") == 11
    assert def_line(source, "missing") is None
    assert def_line(b"def f(:\n", "f") is None


def test_check_run_annotates_wrong_outputs_at_the_def_line(
    toy: Problem, references: ReferenceCache
) -> None:
    def ignores_negatives(x: object, k: int) -> list[float]:
        values = [float(v) for v in x]  # type: ignore[attr-defined]
        return [len(values), sum(values) * k, max(values)]

    report = grade(
        TOY / "submissions" / "wrong_peak.py",
        problem=toy,
        seed=3,
        expected=references.get(toy, 3),
        runner=FakeRunner(ignores_negatives),
    )
    wrong = [case.index for case in report.cases if not case.passed]
    assert wrong
    item = FileVerdict(Change(path="submissions/eve.py", status="added"), student_view(report), 2)
    notes = [a for a in check_annotations([item]) if a.title.startswith("wrong output")]
    assert len(notes) == 1
    assert (notes[0].start_line, notes[0].end_line) == (2, 2)
    assert notes[0].title.startswith(f"wrong output in {len(wrong)} of {len(report.cases)}")
    assert "peak" in notes[0].message
    # Without a def line (the file does not define the function) nothing is made up.
    bare = FileVerdict(item.change, item.report)
    assert not [a for a in check_annotations([bare]) if a.title.startswith("wrong output")]


def test_a_file_that_does_not_load_is_one_failing_junit_case_with_its_reason(
    toy: Problem, references: ReferenceCache, tmp_path: Path
) -> None:
    # It was 8 skipped cases and no failure: a JUnit viewer showed the file as not failing.
    source = "def vector_stats(x, k):\n    return [len(x), 0, 0\n"
    broken = tmp_path / "dave.py"
    broken.write_text(source)
    try:  # what the worker does with it, here in the test's process
        compile(source, "dave.py", "exec")
    except SyntaxError as exc:
        failure = LoadFailure(Status.SYNTAX_ERROR, *describe_syntax_error(exc, "dave.py"))
    runner = FakeRunner(load_failure=failure)
    report = grade(broken, problem=toy, seed=3, expected=references.get(toy, 3), runner=runner)
    assert report.status.value == "syntax_error"
    item = FileVerdict(Change(path="submissions/dave.py", status="added"), student_view(report))
    path = tmp_path / "junit.xml"
    junit_xml([item]).write(str(path))

    [suite] = list(JUnitXml.fromfile(str(path)))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 1, 0, 0)
    [case] = list(suite)
    assert case.name == "file loads and runs" and case.classname == "submissions/dave.py"
    [failure] = case.result
    assert isinstance(failure, Failure) and failure.type == "syntax_error"
    assert failure.message == f"syntax_error: {report.message}"
    assert "line 2" in failure.message  # where, as the student's report says it
    assert failure.text == report.message
