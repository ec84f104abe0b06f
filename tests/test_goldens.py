"""Every renderer on hostile reports of the toy problem, compared with golden files.

The reports are built directly (no process runs), at a fixed seed, so these tests take
milliseconds; `pytest --update-goldens` rewrites tests/goldens after an intended change, to be
reviewed in the diff. Each golden is also checked for what must never be in it.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from helpers import (
    CURSOR_UP,
    FAKE_GREEN,
    FORMULA_CMD,
    FORMULA_LINK,
    JAVASCRIPT,
    MARKDOWN,
    MARKUP_HIDE,
    MARKUP_LINK,
    OSC8,
    OSC52,
    TITLE,
    WORKFLOW,
    XML_FORBIDDEN,
    assert_golden,
)
from junitparser import JUnitXml
from rich.console import Console

from grader.cases import make_cases
from grader.ci import Change, FileVerdict, junit_xml, markdown_summary, workflow_annotations
from grader.feedback import student_view
from grader.gradebook import BatchResult, Skipped, gradebook_csv, summarize, summary_json
from grader.ipynb import RAN
from grader.models import (
    CaseReason,
    CaseResult,
    ErrorInfo,
    Frame,
    Hint,
    LeftOut,
    NotebookInfo,
    OutputCheck,
    ProblemInfo,
    Report,
    Status,
    SubmissionInfo,
    Versions,
)
from grader.problems import Problem
from grader.render import (
    batch_page,
    batch_progress,
    gradescope_json,
    student_page,
    verdict,
)

SEED = 11
ESCAPES = FAKE_GREEN + CURSOR_UP + OSC8 + OSC52 + TITLE
HOSTILE_MESSAGE = f"{MARKDOWN} {ESCAPES}{XML_FORBIDDEN}\n{WORKFLOW}"
HOSTILE_TYPE = "::error file=README.md::Forged"  # type("...", (Exception,), {}) allows it


def _report(
    toy: Problem,
    student: str,
    status: Status,
    message: str,
    cases: list[CaseResult],
    *,
    error: ErrorInfo | None = None,
    stdout: str = "",
    notebook: NotebookInfo | None = None,
) -> Report:
    spec = toy.spec
    return Report(
        status=status,
        message=message,
        score=sum(c.points for c in cases),
        max_score=spec.points_per_case * len(cases),
        cases=tuple(cases),
        problem=ProblemInfo(id=spec.id, version=spec.version, title=spec.title),
        submission=SubmissionInfo(
            path=f"{student}{'.ipynb' if notebook else '.py'}", sha256="ab" * 32, size=123
        ),
        notebook=notebook,
        seed=SEED,
        isolation="full",
        error=error,
        stdout=stdout,
        seconds=1.25,
        versions=Versions(python="3.x", jax=None, flax=None, grader="0.x"),
        created="2026-01-01T00:00:00+00:00",
    )


def _case(
    toy: Problem, index: int, reason: CaseReason, message: str, **extra: object
) -> CaseResult:
    case = make_cases(toy.spec, SEED)[index]
    names = tuple(p.name for p in toy.spec.parameters)
    passed = reason is CaseReason.PASSED
    return CaseResult(
        index=index,
        name=case.name,
        inputs=case.summary(names),
        passed=passed,
        reason=reason,
        message=message,
        points=toy.spec.points_per_case if passed else 0.0,
        max_points=toy.spec.points_per_case,
        seconds=0.01,
        **extra,  # type: ignore[arg-type]
    )


def _all(toy: Problem, reason: CaseReason, message: str) -> list[CaseResult]:
    return [_case(toy, i, reason, message) for i in range(len(make_cases(toy.spec, SEED)))]


HOSTILE_FRAMES = (
    Frame(file=f"{FORMULA_LINK}.py", line=3, function=MARKUP_LINK, source=f"raise X({OSC8!r})"),
)


@pytest.fixture
def reports(toy: Problem) -> dict[str, Report]:
    """One report per hostile student id, each carrying hostile text where a student can."""
    raised = ErrorInfo(type=HOSTILE_TYPE, message=HOSTILE_MESSAGE, frames=HOSTILE_FRAMES, line=3)
    wrong = OutputCheck(name="peak", passed=False, got=1.0, expected=2.0, error=1.0, tolerance=0)
    mixed = [
        _case(toy, 0, CaseReason.PASSED, "Correct."),
        _case(toy, 1, CaseReason.WRONG_OUTPUT, "Wrong output: peak is 1, expected 2.").model_copy(
            update={"outputs": (wrong,)}
        ),
        _case(
            toy,
            2,
            CaseReason.EXCEPTION,
            f"Your function raised {HOSTILE_TYPE} at line 3: {HOSTILE_MESSAGE}",
            error=raised,
        ),
        _case(toy, 3, CaseReason.PASSED, "Correct."),
    ]
    load_error = ErrorInfo(type="ImportError", message=HOSTILE_MESSAGE, frames=HOSTILE_FRAMES)
    in_cell = ErrorInfo(
        type="IndexError",
        message="list index out of range",
        frames=(Frame(file="nora.ipynb, cell 3", line=2, function="f", source="return w[9]"),),
        line=2,
        cell=3,
    )
    notebook = NotebookInfo(
        code_cells=5,
        ran=RAN,
        left_out=(
            LeftOut(cell=1, line=1, text=f"!pip install {OSC8}", why="shell command: not run"),
            LeftOut(cell=5, line=2, text=f"print({FORMULA_CMD})", why=f"demo code {MARKUP_LINK}"),
        ),
        left_out_count=2,
        note=f"The notebook breaks nbformat 4's schema at {ESCAPES}; graded anyway.",
    )
    cell_cases = [
        _case(toy, 0, CaseReason.PASSED, "Correct."),
        _case(toy, 1, CaseReason.PASSED, "Correct."),
        _case(
            toy,
            2,
            CaseReason.EXCEPTION,
            "Your function raised IndexError at cell 3, line 2: list index out of range",
            error=in_cell,
        ),
        _case(toy, 3, CaseReason.PASSED, "Correct."),
    ]
    found = {
        FORMULA_CMD: _report(
            toy,
            FORMULA_CMD,
            Status.GRADED,
            "All 4 cases passed.",
            _all(toy, CaseReason.PASSED, "Correct."),
            stdout=f"{ESCAPES}\nall good\n{WORKFLOW}\n",
        ),
        FORMULA_LINK: _report(toy, FORMULA_LINK, Status.GRADED, "2 of 4 cases passed.", mixed),
        JAVASCRIPT: _report(
            toy,
            JAVASCRIPT,
            Status.IMPORT_ERROR,
            f"{JAVASCRIPT}.py raised ImportError while being loaded: {HOSTILE_MESSAGE}",
            _all(toy, CaseReason.NOT_RUN, "Not run: import error."),
            error=load_error.model_copy(update={"line": 3}),
        ),
        MARKUP_HIDE: _report(
            toy, MARKUP_HIDE, Status.GRADED, "All 4 cases passed.", _all(toy, CaseReason.PASSED, "")
        ),
        "alice": _report(
            toy,
            "alice",
            Status.GRADED,
            "0 of 4 cases passed.",
            _all(toy, CaseReason.WRONG_OUTPUT, "Wrong output: count is 0, expected 3."),
        ),
        MARKUP_LINK: _report(
            toy,
            MARKUP_LINK,
            Status.TIMEOUT,
            "Your file did not finish loading within 20 s.",
            _all(toy, CaseReason.NOT_RUN, "Not run: timeout."),
        ),
        f"{TITLE}{CURSOR_UP}eve": _report(
            toy,
            f"{TITLE}{CURSOR_UP}eve",
            Status.GRADED,
            "All 4 cases passed.",
            _all(toy, CaseReason.PASSED, ""),
        ),
        "nora": _report(
            toy, "nora", Status.GRADED, "3 of 4 cases passed.", cell_cases, notebook=notebook
        ),
    }

    # Two students got the same hint: the page and summary count the class's mistakes.
    peak = Hint(id="peak_sign", kind="mistake", text="peak ignores negative values.", cases=(1,))
    for student in (FORMULA_LINK, "alice"):
        found[student] = found[student].model_copy(update={"hints": (peak,)})
    # A hidden case in each of two reports: what a student reads of it (the failure's kind, an
    # exception's type and line in a notebook's cell; no values, no message, no printed output).
    for student, index in ((FORMULA_LINK, 1), ("nora", 2)):
        cases = list(found[student].cases)
        cases[index] = cases[index].model_copy(update={"visible": False})
        found[student] = found[student].model_copy(update={"cases": tuple(cases)})
    return found


@pytest.fixture
def batch(reports: dict[str, Report]) -> BatchResult:
    skipped = [
        Skipped(f"{FAKE_GREEN}.txt", "not a Python file (.py)"),
        Skipped("##[add-mask]x", "a folder: only files directly in the folder are graded"),
    ]
    return BatchResult(seed=SEED, reports=reports, skipped=skipped)


@pytest.fixture
def graded(reports: dict[str, Report]) -> list[FileVerdict]:
    return [
        FileVerdict(
            Change(path=f"submissions/{report.submission.path}", status="added"),
            student_view(report),
            def_line=None if report.notebook else 2,  # where `def vector_stats` would be
        )
        for student, report in reports.items()
    ]


def _no_student_escape(text: str) -> None:
    """No escape sequence, bell or other control character but newline reaches the reader."""
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), "a control character got out"


def _no_workflow_command(text: str) -> None:
    for line in text.split("\n"):
        assert not re.match(r"\s*::[^\W\d_]", line), line
        assert "##[" not in line, line


def test_terminal_verdict(request: pytest.FixtureRequest, reports: dict[str, Report]) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    for student, report in reports.items():
        console.rule(f"{len(student)}-character id")
        console.print(verdict(student_view(report)))
    text = buffer.getvalue()
    _no_student_escape(text)
    _no_workflow_command(text)
    assert "[x]alice.py" in text and "[link=https://evil.example]appeal.py" in text
    assert_golden(request, "verdict.txt", text)


def test_terminal_verdict_in_colour_has_only_our_own_styles(reports: dict[str, Report]) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system="truecolor", force_terminal=True)
    for report in reports.values():
        console.print(verdict(report))
    sequences = set(re.findall("\x1b[^a-zA-Z]*[a-zA-Z]?", buffer.getvalue()))
    assert sequences and all(re.fullmatch("\x1b\\[[0-9;]*m", s) for s in sequences), sequences
    assert "\x1b]" not in buffer.getvalue()  # no OSC: no link, clipboard or window title


def test_batch_progress_lines(request: pytest.FixtureRequest, reports: dict[str, Report]) -> None:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=100, color_system=None, force_terminal=False, soft_wrap=True
    )  # as `grader batch` makes it
    with batch_progress(console, len(reports)) as advance:
        for number, (student, report) in enumerate(reports.items()):
            advance(student, report, number % 2 == 1)
    text = buffer.getvalue()
    _no_student_escape(text)
    lines = text.splitlines()
    assert len(lines) == len(reports)  # one line per student: no id made a line of its own
    assert lines[3].startswith("[4/8] [x]alice: 8/8 graded") and "] alice: 0/8" in lines[4]
    assert_golden(request, "progress.txt", text)


def test_progress_bar_shows_ids_as_written(reports: dict[str, Report]) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=150, color_system="truecolor", force_terminal=True)
    with batch_progress(console, 1) as advance:
        advance(MARKUP_LINK, reports[MARKUP_LINK], False)
    text = buffer.getvalue()
    assert "[link=https://evil.example]appeal" in text
    assert "\x1b]8;" not in text  # not a hyperlink


def test_grades_csv(request: pytest.FixtureRequest, batch: BatchResult) -> None:
    text = gradebook_csv(batch)
    for line in text.splitlines()[1:]:
        first = line.lstrip('"')
        assert first[0] not in "=+-@\t\r", line
    _no_student_escape(text)
    assert_golden(request, "grades.csv", text)


def test_summary_json(request: pytest.FixtureRequest, batch: BatchResult, toy: Problem) -> None:
    text = summary_json(summarize(batch, toy))
    assert set(json.loads(text)["reports"]) == set(batch.reports)  # data, kept exactly
    _no_student_escape(text)  # JSON escapes controls as \u001b
    assert "##[" not in text  # a legacy workflow command, should the file be printed in CI
    assert_golden(request, "summary.json", text)


def test_index_html(request: pytest.FixtureRequest, batch: BatchResult, toy: Problem) -> None:
    text = batch_page(summarize(batch, toy))
    hrefs = re.findall('href="([^"]*)"', text)
    assert len(hrefs) == 2 * len(batch.reports)  # the student's page and JSON report
    assert all(href.startswith("./") for href in hrefs)
    assert 'href="./javascript%3Aalert%28document.domain%29.html"' in text
    assert 'href="./javascript%3Aalert%28document.domain%29.json"' in text
    assert "<script" not in text.lower() and "javascript:" not in text.replace(">javascript:", "")
    _no_student_escape(text)
    assert_golden(request, "index.html", text)


def test_student_page(request: pytest.FixtureRequest, reports: dict[str, Report]) -> None:
    """A TA's page of one student: the staff view, every student text inert."""
    pages = []
    for student in (FORMULA_LINK, JAVASCRIPT):
        text = student_page(student, reports[student])
        hrefs = re.findall('href="([^"]*)"', text)
        assert all(href.startswith("./") for href in hrefs), hrefs
        assert "<script" not in text.lower() and "javascript:" not in text.replace(
            ">javascript:", ""
        ).replace("<title>javascript:", "")
        _no_student_escape(text)
        pages.append(text)
    assert 'Failed cases: <span id="failed">1, 2</span>' in pages[0]
    assert_golden(request, "student.html", "".join(pages))


def test_step_summary(request: pytest.FixtureRequest, graded: list[FileVerdict]) -> None:
    text = markdown_summary(
        graded, [Change(path=f"submissions/{MARKDOWN}.py", status="deleted")], None, 100.0
    )
    _no_student_escape(text)
    # Outside code spans and fences there is no link, image or HTML from a student.
    outside = re.sub(r"(`{3,})text\n.*?\n\1(?=\n)", "", text, flags=re.DOTALL)
    outside = re.sub(r"(`+) .*? \1", "", outside)
    assert "](" not in outside and "<" not in outside, outside
    assert_golden(request, "step-summary.md", text)


def test_junit(request: pytest.FixtureRequest, graded: list[FileVerdict], tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "junit.xml"
    junit_xml(graded).write(str(path), pretty=True)
    text = path.read_text(encoding="utf-8")
    suites = list(JUnitXml.fromfile(str(path)))  # the file parses
    assert len(suites) == len(graded)
    _no_student_escape(text)
    assert_golden(request, "junit.xml", text)


def test_workflow_annotations(request: pytest.FixtureRequest, graded: list[FileVerdict]) -> None:
    commands = workflow_annotations(graded)
    assert commands and all(c.startswith("::error file=submissions/") for c in commands)
    text = "\n".join(commands) + "\n"
    assert text.count("\n") == len(commands)  # one line each: nothing broke out
    _no_student_escape(text)
    assert_golden(request, "annotations.txt", text)


def test_gradescope_results(request: pytest.FixtureRequest, reports: dict[str, Report]) -> None:
    texts = [gradescope_json(student_view(report)) for report in reports.values()]
    text = "".join(texts)
    _no_student_escape(text)
    assert "##[" not in text
    for result in map(json.loads, texts):
        assert result["output_format"] == result["test_output_format"] == "text"
        assert all(test["output_format"] == "text" for test in result["tests"])
    assert_golden(request, "gradescope.json", text)
