"""A report as text for a person: the student's verdict in the terminal."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from grader.models import CaseReason, Frame, ProblemSpec, Report, Status

_MARK = {True: "[green]✔[/]", False: "[red]✘[/]"}


def verdict(report: Report) -> Group:
    """Score first, then what went wrong, then the case table; no wall of tracebacks."""
    colour = "green" if report.full_marks else ("yellow" if report.score > 0 else "red")
    headline = Text.assemble(
        (f"{report.score:g}/{report.max_score:g} points", f"bold {colour}"),
        f"  ·  {report.problem.id} (v{report.problem.version})",
        f"  ·  status: {report.status.value}",
    )
    parts: list[object] = [headline, Text(report.message)]
    if report.hints:
        parts.append(Text("Hints:", style="bold"))
        for hint in report.hints:
            parts.append(Text(f"  • {' '.join(hint.text.split())}"))
    if report.error is not None and report.error.frames:
        parts.append(_traceback(report))
    if report.status is Status.GRADED or any(
        c.reason is not CaseReason.NOT_RUN for c in report.cases
    ):
        parts.append(_case_table(report))
        first_error = next((c for c in report.cases if c.error is not None), None)
        if first_error is not None and first_error.error is not None and first_error.error.frames:
            parts.append(
                Text(f"Traceback of case {first_error.index} ({first_error.name}):", style="bold")
            )
            parts.append(
                _frames(first_error.error.frames, first_error.error.type, first_error.error.message)
            )
    if report.stdout.strip():
        parts.append(Text("Your code printed (end of stdout):", style="bold"))
        parts.append(Text(_last_lines(report.stdout), style="dim"))
    parts.append(
        Text(
            f"seed {report.seed} · {report.submission.path} · sha256 "
            f"{report.submission.sha256[:12]} · isolation: {report.isolation} · "
            f"{report.seconds:.1f} s",
            style="dim",
        )
    )
    return Group(*parts)  # type: ignore[arg-type]


def _case_table(report: Report) -> Table:
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("case")
    table.add_column("inputs", overflow="fold")
    table.add_column("", justify="center")
    table.add_column("result", overflow="fold")
    for case in report.cases:
        table.add_row(
            str(case.index),
            escape(case.name),
            escape(case.inputs),
            _MARK[case.passed],
            escape(case.message) if not case.passed else "[green]correct[/]",
        )
    return table


def _traceback(report: Report) -> Group:
    assert report.error is not None
    return _frames(report.error.frames, report.error.type, report.error.message)


def _frames(frames: tuple[Frame, ...], kind: str, message: str) -> Group:
    lines = [Text("Traceback (your code first, grader frames removed):", style="dim")]
    for frame in frames[-6:]:
        lines.append(Text(f'  File "{frame.file}", line {frame.line}, in {frame.function}'))
        if frame.source:
            lines.append(Text(f"    {frame.source}", style="cyan"))
    lines.append(Text(f"{kind}: {message}", style="red"))
    return Group(*lines)


def _last_lines(text: str, count: int = 10) -> str:
    lines = text.rstrip().splitlines()
    shown = lines[-count:]
    if len(lines) > count:
        shown.insert(0, f"[... {len(lines) - count} earlier lines ...]")
    return "\n".join(shown)


def statement(spec: ProblemSpec) -> Panel:
    """The exercise as a student reads it."""
    signature = f"def {spec.function}({', '.join(p.name for p in spec.parameters)}):"
    body = Group(
        Text(signature, style="bold cyan"),
        Text(""),
        Text(spec.statement.strip()),
    )
    return Panel(body, title=f"{spec.title} · {spec.id} v{spec.version}", expand=False)


def print_report(report: Report, console: Console | None = None) -> None:
    """Print a student's verdict."""
    (console or Console()).print(verdict(report))


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def batch_page(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no network) showing a batch's summary."""
    e = html.escape
    scores = summary["scores"]
    bins = scores["histogram"]
    tallest = max((b["count"] for b in bins), default=0) or 1
    bar_width, chart_height = 44, 160
    bars = []
    for i, b in enumerate(bins):
        height = round(chart_height * b["count"] / tallest)
        x = 10 + i * (bar_width + 6)
        bars.append(
            f'<g class="bin"><rect x="{x}" y="{chart_height - height + 20}" width="{bar_width}" '
            f'height="{height}" fill="#4c78a8"><title>{b["low"]:g} to {b["high"]:g}: '
            f"{b['count']}</title></rect>"
            f'<text x="{x + bar_width / 2}" y="{chart_height - height + 14}" '
            f'text-anchor="middle">{b["count"]}</text>'
            f'<text x="{x + bar_width / 2}" y="{chart_height + 36}" text-anchor="middle" '
            f'class="axis">{b["low"]:g}</text></g>'
        )
    svg_width = 10 + len(bins) * (bar_width + 6)
    case_rows = "".join(
        f"<tr><td>{c['index']}</td><td>{e(c['name'])}</td>"
        f'<td class="num">{c["passed"]}/{c["graded"]}</td>'
        f'<td><div class="rate"><div style="width:{(c["rate"] or 0) * 100:.1f}%"></div></div>'
        f'</td><td class="num">{_percent(c["rate"])}</td></tr>'
        for c in summary["case_pass_rates"]
    )
    failure_rows = (
        "".join(
            f'<tr><td>{e(f["reason"])}</td><td class="num">{f["students"]}</td></tr>'
            for f in summary["common_failures"]
        )
        or '<tr><td colspan="2">none</td></tr>'
    )
    status_rows = "".join(
        f'<tr><td>{e(status)}</td><td class="num">{count}</td></tr>'
        for status, count in summary["by_status"].items()
    )
    student_rows = "".join(
        f'<tr><td><a href="{e(r["file"])}">{e(student)}</a></td>'
        f'<td class="num">{r["score"]:g}</td><td>{e(r["status"])}</td></tr>'
        for student, r in summary["reports"].items()
    )
    skipped_rows = "".join(
        f"<tr><td>{e(s['name'])}</td><td>{e(s['reason'])}</td></tr>" for s in summary["skipped"]
    )
    skipped = (
        (
            f'<h2>Not graded</h2><table id="skipped"><tr><th>entry</th><th>why</th></tr>'
            f"{skipped_rows}</table>"
        )
        if skipped_rows
        else ""
    )
    problem = summary["problem"]

    def stat(value: object) -> str:
        return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(problem["id"])} · batch results</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ padding: .2em .8em; border-bottom: 1px solid #ddd; text-align: left; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.rate {{ width: 12em; background: #eee; height: .8em; }}
.rate div {{ background: #54a24b; height: 100%; }}
svg text {{ font-size: 12px; }} svg .axis {{ fill: #666; }}
.cards span {{ display: inline-block; margin-right: 2em; }} .cards b {{ font-size: 1.4em; }}
</style></head><body>
<h1>{e(problem["id"])} <small>v{e(problem["version"])}</small></h1>
<p>Batch seed <code id="seed">{summary["seed"]}</code>; every student graded on the same
cases.</p>
<p class="cards">
<span>students <b id="students">{summary["students"]}</b></span>
<span>full marks <b id="full-marks">{summary["full_marks"]}</b></span>
<span>mean <b id="mean">{stat(scores["mean"])}</b></span>
<span>median <b id="median">{stat(scores["median"])}</b></span>
<span>max score <b id="max-score">{stat(summary["max_score"])}</b></span>
</p>
<h2>Scores</h2>
<svg id="histogram" width="{svg_width}" height="{chart_height + 45}" role="img"
 aria-label="score histogram">{"".join(bars)}</svg>
<h2>Status</h2><table id="status">{status_rows}</table>
<h2>Pass rate per case</h2>
<table id="cases"><tr><th>#</th><th>case</th><th>passed</th><th></th><th>rate</th></tr>
{case_rows}</table>
<h2>Most common failures</h2>
<table id="failures"><tr><th>reason</th><th>students</th></tr>{failure_rows}</table>
<h2>Students</h2>
<table id="students-table"><tr><th>student</th><th>score</th><th>status</th></tr>
{student_rows}</table>
{skipped}
</body></html>
"""


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
                bar.update(task, advance=1, description=student)

            yield advance
        return

    def line(student: str, report: Report | None, reused: bool) -> None:
        nonlocal done
        done += 1
        verdict = "" if report is None else f"{report.score:g}/{report.max_score:g} {report.status}"
        note = " (unchanged, not regraded)" if reused else ""
        console.print(f"[{done}/{total}] {student}: {verdict}{note}", highlight=False)

    yield line


def gradescope_results(report: Report) -> dict[str, Any]:
    """Gradescope's autograder results.json: one test per case, the report's score in total.

    Hidden cases are reported as tests visible only once grades are published, without
    their inputs.
    """
    tests = []
    for case in report.cases:
        tests.append(
            {
                "name": f"case {case.index}: {case.name}",
                "number": str(case.index),
                "score": case.points,
                "max_score": case.max_points,
                "status": "passed" if case.passed else "failed",
                "output": case.message if case.passed else f"{case.inputs}\n{case.message}",
                "visibility": "visible",
            }
        )
    return {
        "score": report.score,
        "output": f"{report.message} (status: {report.status.value}, seed {report.seed})",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
