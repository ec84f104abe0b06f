"""Grade the submissions a change adds or modifies, and report in CI's own formats.

`git diff --name-status -M base...head` under the submissions folder gives the files: added,
modified, renamed (graded under their new name) or copied; deletions are listed, not graded;
files elsewhere are ignored. Each file is graded as its content at `head` (read with
`git show`, so the working tree may be anywhere), and the results become a Markdown summary,
a JUnit XML file and GitHub annotations. Students only ever see the student view: hidden
cases show no inputs or values.

Everything a submission controls (its messages, its tracebacks) is escaped before it reaches
a workflow command, and anything printed to stdout that could contain it is wrapped in
`::stop-commands::<random token>`, so a submission cannot inject workflow commands.
"""

from __future__ import annotations

import ast
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from grader import ipynb, safe_text
from grader.engine import Catalog, Grader
from grader.errors import UsageError
from grader.grading import read_limit
from grader.ipynb import SUBMISSION_SUFFIXES
from grader.models import CaseReason, ErrorInfo, Report, Status
from grader.problems import Problem

SUBMISSIONS = "submissions"


@dataclass(frozen=True)
class Change:
    """A submission file the change touched."""

    path: str  # repository-relative, at head
    status: str  # added, modified, renamed, copied, deleted
    previous: str | None = None


def git(repo: Path, *args: str) -> bytes:
    """Run git in repo; a failure is a usage error naming the command."""
    command = [shutil.which("git") or "git", "-C", str(repo), *args]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise UsageError(f"git {' '.join(args)} failed: {message}")
    return result.stdout


def git_blob(repo: Path, object_name: str, limit: int) -> bytes:
    """At most `limit` bytes of a blob: a pull request may add a file of any size."""
    command = [shutil.which("git") or "git", "-C", str(repo), "cat-file", "blob", object_name]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        content = process.stdout.read(limit)
        process.kill()
        error = process.stderr.read().decode(errors="replace").strip()
    killed = process.returncode == -signal.SIGKILL
    if process.returncode != 0 and not (killed and content):
        raise UsageError(f"git cat-file blob {object_name} failed: {error}")
    return content


def git_ok(repo: Path, *args: str) -> bytes | None:
    """git's output, or None when it fails (for questions whose answer may be no)."""
    command = [shutil.which("git") or "git", "-C", str(repo), *args]
    result = subprocess.run(command, capture_output=True, check=False)
    return result.stdout if result.returncode == 0 else None


def changed_submissions(
    repo: Path,
    base: str,
    head: str,
    folder: str = SUBMISSIONS,
    suffixes: tuple[str, ...] = SUBMISSION_SUFFIXES,
) -> list[Change]:
    """Files under folder/ ending in one of suffixes that head adds, modifies, renames or deletes
    since base."""
    if git_ok(repo, "rev-parse", "--git-dir") is None:
        raise UsageError(
            f"{repo.resolve()} is not a git repository: run this inside a checkout of the course "
            f"repository, or pass --repo PATH"
        )
    for ref in (base, head):
        if git_ok(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
            raise UsageError(
                f"{ref!r} is not a commit in {repo.resolve()}: fetch it first (in CI, check out "
                f"with fetch-depth: 0) or name another --base/--head"
            )
    raw = git(
        repo,
        "diff",
        "--name-status",
        "-z",
        "-M",
        "--no-color",
        f"{base}...{head}",
        "--",
        f"{folder}/",
    )
    fields = raw.decode("utf-8", errors="surrogateescape").split("\0")
    changes = []
    names = {
        "A": "added",
        "M": "modified",
        "T": "modified",
        "D": "deleted",
        "R": "renamed",
        "C": "copied",
    }
    position = 0
    while position < len(fields) and fields[position]:
        code = fields[position][0]
        if code in "RC":
            previous, path = fields[position + 1], fields[position + 2]
            position += 3
        else:
            previous, path = None, fields[position + 1]
            position += 2
        if not path.endswith(suffixes) or not path.startswith(f"{folder}/"):
            continue
        changes.append(Change(path=path, status=names.get(code, "modified"), previous=previous))
    return changes


@dataclass(frozen=True)
class FileVerdict:
    """One changed submission and its student-view report."""

    change: Change
    report: Report
    # Where the graded function is defined in the file (see `def_line`): wrong outputs are
    # annotated there. Found by the trusted side, never taken from the worker.
    def_line: int | None = None
    # In a notebook, the code cell def_line is a line of (the .ipynb file has no such line).
    def_cell: int | None = None


def def_line(source: bytes, function: str) -> int | None:
    """The line of the top-level `def function` in a source (the last one, which is the one
    Python keeps), parsed with `ast` and never run; None if there is none or it does not
    parse."""
    try:
        tree = ast.parse(source.decode("utf-8", errors="replace"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = [
        node.lineno
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
    ]
    return lines[-1] if lines else None


def def_location(source: bytes, function: str, name: str) -> tuple[int | None, int | None]:
    """`def_line` of a file named `name`, and for a notebook the cell that line is in (the
    line is then the cell's): (line, cell)."""
    if not ipynb.is_notebook(name):
        return def_line(source, function), None
    converted = ipynb.convert(source, name, validate=False)
    if not isinstance(converted, ipynb.Converted):
        return None, None
    line = def_line(converted.source.encode(), function)
    for span in converted.cells:
        if line is not None and span.first_line <= line < span.first_line + span.lines:
            return line - span.first_line + 1, span.cell
    return None, None


def contents_at(repo: Path, head: str, changes: Sequence[Change]) -> list[Submitted]:
    """Each non-deleted change's content at head (read with `git show`, at most what a
    submission may hold, and one byte more to tell it is too large)."""
    return [
        Submitted(change, git_blob(repo, f"{head}:{change.path}", read_limit(change.path)))
        for change in changes
        if change.status != "deleted"
    ]


@dataclass(frozen=True)
class Submitted:
    """A changed submission's path and content (from git, or from a PR's artifact)."""

    change: Change
    content: bytes


def grade_submissions(
    grader: Grader,
    catalog: Catalog,
    submissions: Sequence[Submitted],
    *,
    seed: int,
    problem_id: str | None = None,
) -> list[FileVerdict]:
    """Grade each submission (`grader ci` and `grader pr grade` alike), from a copy in a
    folder of the grader's own under its repository path; the student view of each, with
    where its function is defined. A course-side fault (an unknown problem, a failing
    reference) raises: it would fail every file alike."""
    graded = []
    with tempfile.TemporaryDirectory(prefix="grader-ci-") as scratch:
        for submitted in submissions:
            change, content = submitted.change, submitted.content
            problem = catalog.find(content.decode("utf-8", errors="replace"), problem_id)
            copy = Path(scratch) / change.path
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(content)
            verdict = grader.grade(copy, problem, seed=seed, display_name=change.path)
            line, cell = def_location(content, problem.spec.function, change.path)
            graded.append(FileVerdict(change, verdict.student, line, cell))
    return graded


def log_lines(graded: Sequence[FileVerdict]) -> str:
    """One line per file for the run's log (guarded: file names come from students)."""
    lines = [
        f"{safe_text.terminal(g.change.path)}: {g.report.score:g}/{g.report.max_score:g} "
        f"{g.report.status}"
        for g in graded
    ] or ["No submission changed."]
    return "\n".join(lines)


def publish(
    graded: list[FileVerdict],
    deleted: list[Change],
    *,
    min_score: float,
    junit_path: Path | None,
    step_summary: Path | None,
) -> tuple[str, bool]:
    """`grader ci`'s outputs: the Markdown summary (appended to the step summary when there
    is one), JUnit, and the text for stdout (the log lines, the summary when there is no step
    summary, and the annotations), guarded against workflow commands. True when every file
    reaches min_score."""
    summary = markdown_summary(graded, deleted, None, min_score)
    if step_summary is not None:
        with step_summary.open("a", encoding="utf-8") as stream:
            stream.write(summary)
    write_junit(graded, junit_path)
    text = log_lines(graded) + ("" if step_summary else "\n\n" + summary)
    # File names and messages come from students: no workflow command may hide in them.
    annotations = "".join(f"{command}\n" for command in workflow_annotations(graded))
    passed = not any(below_threshold(g.report, min_score) for g in graded)
    return guarded(text) + annotations, passed


def write_junit(graded: list[FileVerdict], path: Path | None) -> None:
    """The per-case results as JUnit XML at path (nothing when None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        junit_xml(graded).write(str(path), pretty=True)


_WRONG = (CaseReason.WRONG_OUTPUT, CaseReason.INVALID_OUTPUT)


def wrong_output_note(item: FileVerdict) -> tuple[int, str, str] | None:
    """(line, title, message) of one annotation at the function's def line for the cases whose
    outputs were wrong or invalid (student view: hidden cases name the output, not values)."""
    wrong = [case for case in item.report.cases if case.reason in _WRONG]
    if item.def_line is None or not wrong:
        return None
    total = len(item.report.cases)
    indices = ", ".join(str(case.index) for case in wrong)
    first = next((case for case in wrong if case.visible), wrong[0])
    lines = [f"Case {first.index} ({first.name}): {first.message}"]
    hints = [" ".join(hint.text.split()) for hint in item.report.hints]
    lines += [f"Hint: {hint}" for hint in hints[:2]]
    title = f"wrong output in {len(wrong)} of {total} cases ({indices})"
    if item.def_cell is not None:  # a notebook: its first line, saying where the def is
        title += f" (def at cell {item.def_cell}, line {item.def_line})"
        return 1, title, "\n".join(lines)
    return item.def_line, title, "\n".join(lines)


def below_threshold(report: Report, min_score_percent: float) -> bool:
    """Whether a report scores under the threshold (a percentage of the maximum)."""
    return report.score < report.max_score * min_score_percent / 100 - 1e-9


# --------------------------------------------------------------------------------------------
# Markdown summary
# --------------------------------------------------------------------------------------------


def markdown_summary(
    graded: list[FileVerdict], deleted: list[Change], problem: Problem | None, min_score: float
) -> str:
    """The step summary: a table of files, then per file its hints and visible cases.

    Everything a submission shaped (paths, messages, case results) is a code span or a fenced
    block (`safe_text.markdown_*`): it cannot render as a link, an image or HTML.
    """
    cell = safe_text.markdown_cell
    lines = ["## Grading results", ""]
    if not graded:
        lines.append("No submission under `submissions/` was added or changed.")
        for change in deleted:
            lines.append(f"- {safe_text.markdown_code(change.path)} deleted (not graded)")
        return "\n".join(lines) + "\n"
    lines += ["| file | score | status | |", "|---|---|---|---|"]
    for item in graded:
        report = item.report
        mark = "✅" if not below_threshold(report, min_score) else "❌"
        lines.append(
            f"| {cell(item.change.path)} | {report.score:g}/{report.max_score:g} "
            f"| {report.status.value} | {mark} |"
        )
    for change in deleted:
        lines.append(f"| {cell(change.path)} | | deleted (not graded) | |")
    for item in graded:
        report = item.report
        lines += [
            "",
            f"### {safe_text.markdown_code(item.change.path)}: "
            f"{report.score:g}/{report.max_score:g}",
            "",
            safe_text.markdown_block(report.message),
            "",
        ]
        if report.hints:
            lines += ["**Hints**", ""]
            lines += [f"- {safe_text.markdown_code(hint.text, 600)}" for hint in report.hints]
            lines.append("")
        if report.status is Status.GRADED or any(
            c.reason is not CaseReason.NOT_RUN for c in report.cases
        ):
            lines += ["| # | case | inputs | result |", "|---|---|---|---|"]
            for case in report.cases:
                result = "✅ passed" if case.passed else f"❌ {cell(case.message)}"
                lines.append(
                    f"| {case.index} | {cell(case.name)} | {cell(case.inputs)} | {result} |"
                )
    # No seed: the summary is the students' view, and with the seed and the reference
    # `grader check --seed S --staff` rebuilds every hidden case. Staff who need to repeat a
    # grading pass --seed themselves (docs/ci.md).
    lines += ["", "Per-case results are in the JUnit artifact when the job writes one (--junit)."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# JUnit XML and annotations
# --------------------------------------------------------------------------------------------


def junit_xml(graded: list[FileVerdict]) -> JUnitXml:
    """One test suite per file, one test case per graded case; every text XML-safe.

    A file that did not load or run (any status but `graded`) has one failing test case,
    `file loads and runs`, whose message is the status and the report's message: JUnit viewers
    list failures with their messages, so the reason is the first thing shown, once. When no
    case ran, that is the suite's only test case: fourteen cases failing with the same syntax
    error would bury it (and count fourteen faults), and skipped ones read as not a failure.
    Cases that ran are kept, and those that then did not run are skipped saying why.
    """
    xml_text = safe_text.xml_text
    xml = JUnitXml(name="grader")
    for item in graded:
        path = xml_text(item.change.path)
        suite = TestSuite(path)
        report = item.report
        if report.status is not Status.GRADED:
            test = TestCase("file loads and runs", classname=path, time=0.0)
            failure = Failure(
                message=xml_text(f"{report.status.value}: {report.message}"),
                type_=report.status.value,
            )
            failure.text = xml_text(report.message)
            test.result = [failure]
            suite.add_testcase(test)
        if report.status is not Status.GRADED and all(
            case.reason is CaseReason.NOT_RUN for case in report.cases
        ):
            xml.add_testsuite(suite)
            continue
        for case in report.cases:
            test = TestCase(
                xml_text(f"case {case.index}: {case.name}"),
                classname=path,
                time=case.seconds or 0.0,
            )
            if case.passed:
                pass
            elif case.reason is CaseReason.NOT_RUN:
                test.result = [Skipped(message=xml_text(case.message))]
            elif case.reason is CaseReason.EXCEPTION:
                kind = case.error.type if case.error else "exception"
                test.result = [Error(message=xml_text(case.message), type_=xml_text(kind))]
            else:
                test.result = [Failure(message=xml_text(case.message), type_=case.reason.value)]
            suite.add_testcase(test)
        xml.add_testsuite(suite)
    return xml


def escape_data(text: str) -> str:
    """Escape a workflow command's message (see `safe_text.workflow_data`)."""
    return safe_text.workflow_data(text)


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (see `safe_text.workflow_property`)."""
    return safe_text.workflow_property(text)


def annotated_line(error: ErrorInfo) -> tuple[int, str]:
    """The file line to annotate, and words for the title: in a notebook, the error's line is
    its cell's, which is no line of the .ipynb file, so the annotation marks the file's first
    line and its title says `at cell 4, line 3`."""
    assert error.line is not None
    if error.cell is None:
        return error.line, ""
    return 1, f" at {error.location}"


def workflow_annotations(graded: list[FileVerdict]) -> list[str]:
    """`::error` commands for a file that does not load, for exceptions in the code, and
    for wrong outputs at the function's def line."""
    commands = []
    for item in graded:
        report = item.report
        path = escape_property(item.change.path)
        if report.error is not None and report.error.line:
            line, cell = annotated_line(report.error)
            title = escape_property(f"{report.status.value}{cell}")
            commands.append(
                f"::error file={path},line={line},title={title}::{escape_data(report.message)}"
            )
        seen: set[tuple[int | None, int]] = set()
        for case in report.cases:
            error = case.error
            if error is None or error.line is None or (error.cell, error.line) in seen:
                continue
            seen.add((error.cell, error.line))
            line, cell = annotated_line(error)
            title = escape_property(f"{error.type} in case {case.index}{cell}")
            commands.append(
                f"::error file={path},line={line},title={title}::{escape_data(case.message)}"
            )
        note = wrong_output_note(item)
        if note is not None:
            line, title, message = note
            commands.append(
                f"::error file={path},line={line},title={escape_property(title)}::"
                f"{escape_data(message)}"
            )
    return commands


def guarded(text: str) -> str:
    """Text that may hold submission output, with workflow commands disabled around it."""
    token = secrets.token_hex(16)
    return f"::stop-commands::{token}\n{text.rstrip()}\n::{token}::\n"
