"""A report as text for a person: the student's verdict in the terminal."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.models import CaseReason, ProblemSpec, Report, Status

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


def _frames(frames: tuple, kind: str, message: str) -> Group:  # type: ignore[type-arg]
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
