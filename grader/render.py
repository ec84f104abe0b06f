"""A report as text for a person: the student's verdict in the terminal, a batch's progress
lines and page, Gradescope's results.

Every string that a submission may have shaped (messages, tracebacks, printed output, file
names and student ids) goes through `grader.safe_text` on its way out; strings are placed in
rich `Text` objects, never in markup, unless they went through `safe_text.markup`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from grader import safe_text
from grader.feedback import OUTPUT_WITHHELD
from grader.figure import Figure
from grader.models import (
    CaseReason,
    CaseResult,
    Frame,
    Parameter,
    ProblemSpec,
    Report,
    Status,
)

_safe = safe_text.terminal
_MARK = {True: Text("✔", style="green"), False: Text("✘", style="red")}


def verdict(report: Report) -> Group:
    """Score first, then what went wrong, then the case table; no wall of tracebacks."""
    colour = "green" if report.full_marks else ("yellow" if report.score > 0 else "red")
    headline = Text.assemble(
        (f"{report.score:g}/{report.max_score:g} points", f"bold {colour}"),
        f"  ·  {_safe(report.problem.id)} (v{_safe(report.problem.version)})",
        f"  ·  status: {report.status.value}",
    )
    parts: list[object] = [headline, Text(_safe(report.message))]
    if report.practice is not None:
        # First, so that no one takes a practice score for a grade.
        banner = Text(
            f"PRACTICE RUN on the {len(report.cases)} public cases of a pack, not a grade.",
            style="bold magenta",
        )
        # A pack is the student's own file: its strings are shown inert, like theirs.
        parts[:0] = [banner, Text(_safe(report.practice.note), style="magenta")]
        if report.practice.version_note:
            note = _safe(report.practice.version_note)
            parts.insert(2, Text(f"note: {note}", style="yellow"))
    if report.hints:
        parts.append(Text("Hints:", style="bold"))
        for hint in report.hints:
            parts.append(Text(f"  • {_safe(' '.join(hint.text.split()))}"))
    if report.error is not None and report.error.frames:
        parts.append(_traceback(report))
    if report.status is Status.GRADED or any(
        c.reason is not CaseReason.NOT_RUN for c in report.cases
    ):
        first_error = next((c for c in report.cases if c.error is not None), None)
        traced = (
            first_error.index
            if first_error is not None
            and first_error.error is not None
            and first_error.error.frames
            else None
        )
        parts.append(_case_table(report, traced))
        if first_error is not None and first_error.error is not None and first_error.error.frames:
            parts.append(
                Text(
                    f"Traceback of case {first_error.index} ({_safe(first_error.name)}):",
                    style="bold",
                )
            )
            parts.append(
                _frames(first_error.error.frames, first_error.error.type, first_error.error.message)
            )
    if report.notebook is not None:
        parts.extend(_notebook_lines(report))
    if report.stdout == OUTPUT_WITHHELD:
        parts.append(Text(OUTPUT_WITHHELD, style="dim"))
    elif report.stdout.strip():
        parts.append(Text("Your code printed (end of stdout):", style="bold"))
        parts.append(Text(_last_lines(report.stdout), style="dim"))
    # A student's view has the seed only where the reference is (see `student_view`): with
    # it and the reference, `grader check --seed S --staff` rebuilds every hidden case.
    origin = (
        f"pack {report.practice.pack_digest[:12]} · "
        if report.practice is not None
        else f"seed {report.seed} · "
        if report.seed is not None
        else ""
    )
    parts.append(
        Text(
            f"{origin}{_safe(report.submission.path)} · sha256 "
            f"{report.submission.sha256[:12]} · isolation: {isolation_label(report)} · "
            f"{report.seconds:.1f} s",
            style="dim",
        )
    )
    return Group(*parts)  # type: ignore[arg-type]


def isolation_label(report: Report) -> str:
    """How the submission was isolated, saying for basic isolation which user it ran as."""
    if report.isolation != "basic" or report.own_uid is None:
        return report.isolation
    return "basic, own uid" if report.own_uid else "basic, same uid as the grader"


_LEFT_OUT_SHOWN = 8


def _notebook_lines(report: Report) -> list[Text]:
    """What of a notebook ran, and what was left out, by cell (the first few)."""
    info = report.notebook
    assert info is not None
    lines = []
    if info.note:
        lines.append(Text(f"note: {_safe(info.note)}", style="yellow"))
    count = info.left_out_count
    left = f"; left out, not run when grading ({count}):" if count else "; nothing was left out."
    lines.append(
        Text(
            f"Notebook, {info.code_cells} code cells: imports, definitions and assignments ran"
            f"{left}",
            style="bold",
        )
    )
    for item in info.left_out[:_LEFT_OUT_SHOWN]:
        lines.append(
            Text(f"  cell {item.cell}, line {item.line}: {_safe(item.text)}  ({_safe(item.why)})")
        )
    if count > _LEFT_OUT_SHOWN:
        lines.append(Text(f"  and {count - _LEFT_OUT_SHOWN} more (the report's notebook.left_out)"))
    return lines


def _case_table(report: Report, traced: int | None = None) -> Table:
    """The cases, one row each. `traced`: the case whose traceback follows the table, with its
    whole exception message: its row keeps the message's first line (Flax's 25-line advice
    was printed twice)."""
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("case")
    table.add_column("inputs", overflow="fold")
    table.add_column("", justify="center")
    table.add_column("result", overflow="fold")
    first_with: dict[tuple[object, ...], int] = {}
    for case in report.cases:
        if case.passed:
            result = Text("correct", style="green")
        else:
            key = _same_failure(case)
            earlier = first_with.setdefault(key, case.index) if key is not None else case.index
            if earlier != case.index:
                # One mistake raising in every case would print the same lines in each row.
                result = Text(f"same as case {earlier}", style="dim")
            elif case.index == traced and "\n" in case.message.strip():
                first = case.message.strip().splitlines()[0]
                result = Text(f"{_safe(first)} ... (the whole message is in the traceback below)")
            else:
                result = Text(_safe(case.message))
        table.add_row(
            str(case.index),
            Text(_safe(case.name)),
            Text(_safe(case.inputs if not case.passed else _brief(case.inputs))),
            _MARK[case.passed],
            result,
        )
    return table


_ANY_NUMBER = re.compile(r"<hidden>|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")


def _same_failure(case: CaseResult) -> tuple[object, ...] | None:
    """What makes two failures the same mistake: the reason, the exception's type and line,
    and the message with its numbers left out (each case quotes its own inputs). Wrong outputs
    are never merged: each visible one shows its own values."""
    if case.reason is CaseReason.WRONG_OUTPUT:
        return None
    error = case.error
    kind = (error.type, error.line) if error is not None else (None, None)
    return (case.reason, *kind, _ANY_NUMBER.sub("#", case.message))


_LONG_LIST = re.compile(r"\[([^\[\]]{60,})\]")


def _brief(inputs: str) -> str:
    """A passing case's inputs with long arrays cut to their length (failing ones are shown
    in full, to be retyped)."""
    return _LONG_LIST.sub(lambda m: f"[{m.group(1).count(',') + 1} numbers]", inputs)


def _traceback(report: Report) -> Group:
    assert report.error is not None
    return _frames(report.error.frames, report.error.type, report.error.message)


def _frames(frames: tuple[Frame, ...], kind: str, message: str) -> Group:
    # The worker keeps the submission's frames, then the innermost library frame (where the
    # exception was raised): with a deep recursion, the last ones of those.
    lines = [Text("Traceback (your code, then the library line that raised):", style="dim")]
    for frame in frames[-8:]:
        # A hidden case's frames have no function nor source (see feedback.student_view).
        function = f", in {_safe(frame.function)}" if frame.function else ""
        lines.append(Text(f'  File "{_safe(frame.file)}", line {frame.line}{function}'))
        if frame.source:
            lines.append(Text(f"    {_safe(frame.source)}", style="cyan"))
    lines.append(Text(f"{_safe(kind)}: {_safe(message)}" if message else _safe(kind), style="red"))
    return Group(*lines)


def _last_lines(text: str, count: int = 10) -> str:
    lines = text.rstrip().splitlines()
    shown = [_safe(line) for line in lines[-count:]]
    if len(lines) > count:
        shown.insert(0, f"[... {len(lines) - count} earlier lines ...]")
    return "\n".join(shown)


class _Stated(Protocol):
    """What a statement shows: a spec's, or a practice pack's public copy of it."""

    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def function(self) -> str: ...
    @property
    def parameters(self) -> tuple[Parameter, ...]: ...


def _reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph and list item, so the terminal wraps them
    at its own width instead of leaving ragged lines; code keeps its breaks."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.lstrip().startswith(("```", ">>>", "|")) for line in lines):
            paragraphs.append(paragraph)
            continue
        joined: list[str] = []
        for line in lines:
            starts_item = _LIST_ITEM.match(line) is not None
            if (
                joined
                and not starts_item
                and (line[:1].isspace() or not _LIST_ITEM.match(joined[0]))
            ):
                joined[-1] += " " + line.strip()
            else:
                joined.append(line.rstrip())
        paragraphs.append("\n".join(joined))
    return "\n\n".join(paragraphs)


_LIST_ITEM = re.compile(r"\s*(\d+[.)]|[-*])\s")


def statement(spec: _Stated) -> Panel:
    """The exercise as a student reads it."""
    signature = f"def {spec.function}({', '.join(p.name for p in spec.parameters)}):"
    body = Group(
        Text(_safe(signature), style="bold cyan"),
        Text(""),
        Text(_safe(_reflow(spec.statement.strip()))),
    )
    title = safe_text.markup(f"{spec.title} · {spec.id} v{spec.version}")
    return Panel(body, title=title, expand=False)


PIPED_WIDTH = 200


def output_console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A console at the terminal's width; piped (a file, a CI log), at $COLUMNS if set, else
    PIPED_WIDTH columns rather than Rich's 80, which folded every row of the case table."""
    probe = Console(stderr=stderr, soft_wrap=soft_wrap)
    if probe.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return probe
    return Console(stderr=stderr, soft_wrap=soft_wrap, width=PIPED_WIDTH)


def print_report(report: Report, to: Console | None = None) -> None:
    """Print a student's verdict."""
    (to or output_console()).print(verdict(report))


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def _stat(value: object) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def batch_page(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no network) showing a batch's summary.

    Built from templates/batch.html by `safe_text.render_html`: every value is escaped, and a
    student's link is relative whatever the id.
    """
    scores = summary["scores"]
    bins = scores["histogram"]
    tallest = max((b["count"] for b in bins), default=0) or 1
    bar_width, chart_height = 44, 160
    bars = []
    for i, b in enumerate(bins):
        height = round(chart_height * b["count"] / tallest)
        bars.append(
            {
                "x": 10 + i * (bar_width + 6),
                "middle": 10 + i * (bar_width + 6) + bar_width / 2,
                "y": chart_height - height + 20,
                "height": height,
                "label": b["label"],
                "count": b["count"],
            }
        )
    chart = {
        "width": 10 + len(bins) * (bar_width + 6),
        "height": chart_height + 45,
        "axis_y": chart_height + 36,
        "bar_width": bar_width,
        "bars": bars,
    }
    cases = [
        {**c, "width": f"{(c['rate'] or 0) * 100:.1f}", "percent": _percent(c["rate"])}
        for c in summary["case_pass_rates"]
    ]
    students = summary["students"]
    hints = [
        {**h, "percent": _percent(h["students"] / students if students else None)}
        for h in summary["hints"]
    ]
    reports = [
        {
            "id": student,
            "page": safe_text.relative_link(student, ".html"),
            "link": safe_text.relative_link(student, ".json"),
            "score": f"{r['score']:g}",
            "status": r["status"],
            "failed": _case_list(r["failed_cases"], len(cases)),
            "hints": ", ".join(r["hints"]),
        }
        for student, r in summary["reports"].items()
    ]
    return safe_text.render_html(
        "batch.html",
        problem=summary["problem"],
        seed=summary["seed"],
        students=students,
        full_marks=summary["full_marks"],
        mean="n/a" if scores["mean"] is None else f"{scores['mean']:.2f}",
        median=_stat(scores["median"]),
        max_score=_stat(summary["max_score"]),
        chart=chart,
        by_status=list(summary["by_status"].items()),
        cases=cases,
        hints=hints,
        failures=summary["common_failures"],
        reports=reports,
        skipped=summary["skipped"],
    )


def _case_list(indices: Sequence[int], total: int) -> str:
    if not indices:
        return ""
    if len(indices) == total:
        return f"all {total}"
    return ", ".join(str(i) for i in indices)


def student_page(student: str, report: Report) -> str:
    """A TA's page of one student's report (the staff view: hidden cases' inputs and values
    included), linked from the batch page; every value escaped by `safe_text.render_html`."""
    cases = []
    for case in report.cases:
        outputs = [
            {
                "name": check.name,
                "passed": check.passed,
                "got": f"{check.got:.9g}",
                "expected": f"{check.expected:.9g}",
                "error": f"{check.error:.3g}",
                "tolerance": f"{check.tolerance:.3g}",
            }
            for check in case.outputs
        ]
        cases.append(
            {
                "index": case.index,
                "name": case.name,
                "visible": case.visible,
                "inputs": case.inputs,
                "passed": case.passed,
                "message": case.message,
                "outputs": outputs,
                "error": _error_text(case.error.frames, case.error.type, case.error.message)
                if case.error is not None and case.error.frames
                else "",
            }
        )
    error = report.error
    return safe_text.render_html(
        "student.html",
        student=student,
        json_link=safe_text.relative_link(student, ".json"),
        staff_link="./staff/" + safe_text.relative_link(student, ".json")[2:],
        report=report,
        isolation=isolation_label(report),
        score=f"{report.score:g}",
        max_score=f"{report.max_score:g}",
        hints=[" ".join(hint.text.split()) for hint in report.hints],
        failed=_case_list([c.index for c in report.cases if not c.passed], len(report.cases)),
        cases=cases,
        load_error=_error_text(error.frames, error.type, error.message) if error else "",
        stdout=_last_lines_raw(report.stdout),
        stderr=_last_lines_raw(report.stderr),
    )


def _error_text(frames: tuple[Frame, ...], kind: str, message: str) -> str:
    lines = [
        f'File "{frame.file}", line {frame.line}, in {frame.function}\n    {frame.source}'
        for frame in frames[-8:]
    ]
    return "\n".join([*lines, f"{kind}: {message}"])


def _last_lines_raw(text: str, count: int = 30) -> str:
    """The end of an output, unescaped: the page's template escapes it."""
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-count:])


@contextmanager
def batch_progress(
    console: Console, total: int
) -> Iterator[Callable[[str, Report | None, bool], None]]:
    """A progress bar on a terminal, plain lines otherwise; yields the callback to advance it."""
    done = 0
    if console.is_terminal:
        bar = Progress(
            TextColumn("grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        task = bar.add_task("", total=total)
        with bar:

            def advance(student: str, report: Report | None, reused: bool) -> None:
                # The description column renders markup: the id must not be markup.
                bar.update(task, advance=1, description=safe_text.markup(student))

            yield advance
        return

    def line(student: str, report: Report | None, reused: bool) -> None:
        nonlocal done
        done += 1
        verdict = "" if report is None else f"{report.score:g}/{report.max_score:g} {report.status}"
        note = " (unchanged, not regraded)" if reused else ""
        console.print(Text(f"[{done}/{total}] {_safe(student)}: {verdict}{note}"))

    yield line


def gradescope_results(report: Report) -> dict[str, Any]:
    """Gradescope's autograder results.json: one test per case, the report's score in total.

    Every text is declared plain text ("output_format": "text", so Gradescope neither renders
    Markdown nor HTML nor ANSI from it) and has its control characters shown escaped. Hidden
    cases are reported without their inputs (the caller passes the student view). The hints
    come first in the submission's output, as in the terminal.
    """
    text = safe_text.visible_controls
    tests = []
    for case in report.cases:
        output = case.message if case.passed else f"{case.inputs}\n{case.message}"
        tests.append(
            {
                "name": text(f"case {case.index}: {case.name}"),
                "number": str(case.index),
                "score": case.points,
                "max_score": case.max_points,
                "status": "passed" if case.passed else "failed",
                "output": text(output),
                "output_format": "text",
                "visibility": "visible",
            }
        )
    # The grading seed stays out: with it, `grader check --seed S --staff` rebuilds every
    # hidden case. The hints are the feedback that teaches; they name no hidden value.
    summary = [f"{report.message} (status: {report.status.value})"]
    if report.hints:
        summary.append("Hints:")
        summary.extend(f"  * {' '.join(hint.text.split())}" for hint in report.hints)
    return {
        "score": report.score,
        "output": text("\n".join(summary)),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def gradescope_json(report: Report) -> str:
    """results.json's text: `gradescope_results`, safe to print (`safe_text.json_for_log`)."""
    return safe_text.json_for_log(json.dumps(gradescope_results(report), indent=2) + "\n")


def audit_table(spec: ProblemSpec, figures: Sequence[Figure], threshold: float) -> Group:
    """`grader audit`'s verdict: every figure, the ones above the threshold in red."""
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("wrong solution")
    table.add_column("full marks on", justify="right")
    table.add_column("", justify="center")
    for figure in figures:
        ok = figure.rate <= threshold
        table.add_row(
            Text(_safe(figure.description)),
            f"{figure.escapes}/{figure.seeds} seeds ({figure.rate * 100:.1f}%)",
            _MARK[ok] if figure.held else "(not held)",
        )
    bad = sum(figure.held and figure.rate > threshold for figure in figures)
    seeds = max((figure.seeds for figure in figures), default=0)
    if bad:
        summary = Text(
            f"{bad} of {len(figures)} figures above the threshold {threshold * 100:g}%: on "
            f"those seeds a student with that bug gets full marks.",
            style="bold red",
        )
    else:
        summary = Text(
            f"All {len(figures)} figures at or below the threshold {threshold * 100:g}%.",
            style="bold green",
        )
    title = Text(f"audit of {_safe(spec.id)} v{_safe(spec.version)} over {seeds} grading seeds")
    return Group(title, table, summary)
