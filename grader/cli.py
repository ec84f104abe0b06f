"""The `grader` command: parse arguments, call the library, render, choose the exit code.

Exit codes: 0 full marks, 1 anything less (including a file that failed to load), 2 a usage
error or a fault of the grader's own (missing file, unknown problem, bad spec).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.text import Text

from grader import __version__, safe_text
from grader.batch import discover, run_batch
from grader.cases import MAX_SEED, random_seed
from grader.ci import (
    below_threshold,
    changed_submissions,
    grade_changes,
    guarded,
    junit_xml,
    markdown_summary,
    workflow_annotations,
)
from grader.errors import GraderError, UsageError
from grader.feedback import student_view
from grader.grading import MAX_SOURCE_BYTES
from grader.grading import check as check_submission
from grader.models import Report
from grader.problems import PROBLEMS_ENV, REFERENCE_ENV, find_problem, list_problems, load_problem
from grader.render import batch_progress, gradescope_json, print_report, statement
from grader.run import SandboxPolicy, SubprocessRunner, full_isolation_problem
from grader.storage import read_regular, write_atomic

EXIT_FULL_MARKS = 0
EXIT_NOT_FULL_MARKS = 1
EXIT_USAGE = 2

_problems_dir = click.option(
    "--problems-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar=PROBLEMS_ENV,
    help=f"Folder of problem specs (default: the repository's problems/; env {PROBLEMS_ENV}).",
)
_reference_dir = click.option(
    "--reference-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar=REFERENCE_ENV,
    help=f"Folder of reference solutions (default: the repository's reference/; "
    f"env {REFERENCE_ENV}).",
)
_require_sandbox = click.option(
    "--require-sandbox",
    is_flag=True,
    help="Refuse to grade unless submissions get full isolation (root, Linux namespaces).",
)
_allow_basic = click.option(
    "--allow-basic-isolation",
    "allow_basic",
    is_flag=True,
    help="Grade other people's files even without full isolation (not root, no namespaces). "
    "Submissions then run as your own user: they can read your files and environment, and "
    "the grader trusts no cache they could have written (slower). See docs/sandbox.md.",
)


def _staff_runner(
    *, require_sandbox: bool, allow_basic: bool, protect: tuple[Path, ...] = ()
) -> tuple[SubprocessRunner, bool]:
    """The runner for grading other people's work, and whether on-disk caches can be trusted.

    Basic isolation is for checking your own file: grading others needs full isolation unless
    staff say otherwise, and then no cache a submission could have written is trusted.
    """
    runner = SubprocessRunner(policy=SandboxPolicy(require_full=require_sandbox, protect=protect))
    if runner.isolation() == "full":
        return runner, True
    why = full_isolation_problem() or "it is not available"
    if not allow_basic:
        raise UsageError(
            f"grading other people's submissions needs full isolation, which is not available "
            f"here: {why}. Run the grader as root on Linux (as CI runners and course servers "
            f"do), or pass --allow-basic-isolation to grade with resource limits only (a "
            f"submission could then read this account's files and environment; see "
            f"docs/sandbox.md)."
        )
    Console(stderr=True).print(
        f"[yellow]warning:[/] grading with basic isolation ({safe_text.markup(why)}): submissions "
        f"run as your own user; caches are not trusted."
    )
    return runner, False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def cli() -> None:
    """Grade JAX/Flax exercises: student code runs in a separate process, never in the grader."""


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Grading seed; the same seed repeats a grading exactly. Default: random.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report as JSON to this path ('-' for stdout).",
)
@click.option(
    "--gradescope",
    "gradescope_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write Gradescope's results.json to this path.",
)
@click.option("--problem", "problem_id", help="Problem id (default: found from the file).")
@click.option(
    "--staff",
    is_flag=True,
    help="Show and write everything, hidden cases' inputs and values included.",
)
@_problems_dir
@_reference_dir
@_require_sandbox
def check(
    file: Path,
    seed: int | None,
    json_path: Path | None,
    gradescope_path: Path | None,
    staff: bool,
    problem_id: str | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
) -> None:
    """Grade one submission FILE and print the verdict."""
    try:
        source = read_regular(file, MAX_SOURCE_BYTES + 1).decode("utf-8", errors="replace")
        problem = find_problem(
            source, problem_id=problem_id, problems_dir=problems_dir, reference_dir=reference_dir
        )
        runner = SubprocessRunner(policy=SandboxPolicy(require_full=require_sandbox))
        full = check_submission(file, problem=problem, seed=seed, runner=runner)
    except GraderError as exc:
        _fail(str(exc))
    report = full if staff else student_view(full)
    to_stdout = json_path is not None and str(json_path) == "-"
    console = Console(stderr=to_stdout)
    print_report(report, console)
    if json_path is not None:
        _write_json(report, json_path)
    if gradescope_path is not None:
        write_atomic(gradescope_path, gradescope_json(student_view(full)))
    sys.exit(EXIT_FULL_MARKS if report.full_marks else EXIT_NOT_FULL_MARKS)


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the reports, grades.csv, summary.json and index.html.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Submissions graded at once (default: one per core).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Batch seed: every student gets the cases it draws. Default: the seed of "
    "an earlier run into the same --out, else random.",
)
@click.option(
    "--problem",
    "problem_id",
    help="Problem id (default: the only one, or found from the first submission).",
)
@click.option("--force", is_flag=True, help="Regrade everything, even unchanged submissions.")
@_problems_dir
@_reference_dir
@_require_sandbox
@_allow_basic
def batch(
    folder: Path,
    out: Path,
    workers: int | None,
    seed: int | None,
    problem_id: str | None,
    force: bool,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    allow_basic: bool,
) -> None:
    """Grade every submission in FOLDER (student id = file name without .py)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        entries, _ = discover(folder)
        first = entries[0].path.read_text(errors="replace") if entries else None
        problem = find_problem(
            first, problem_id=problem_id, problems_dir=problems_dir, reference_dir=reference_dir
        )
        protect = (out.resolve(), folder.resolve())
        runner, trust_caches = _staff_runner(
            require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect
        )
        with batch_progress(console, len(entries)) as progress:
            result = run_batch(
                folder,
                out,
                problem=problem,
                seed=seed,
                workers=workers,
                force=force,
                runner=runner,
                on_progress=progress,
                trust_caches=trust_caches,
            )
    except GraderError as exc:
        _fail(str(exc))
    graded = len(result.reports) - len(result.reused)
    console.print(
        f"{len(result.reports)} students ({graded} graded now, {len(result.reused)} unchanged "
        f"since the last run), {len(result.skipped)} entries skipped; seed {result.seed}."
    )
    for item in result.skipped:
        # Both may hold file names (a duplicate id names its files).
        name, reason = safe_text.terminal(item.name), safe_text.terminal(item.reason)
        console.print(Text(f"  skipped {name}: {reason}"))
    console.print(
        Text(
            f"Wrote {safe_text.terminal(str(out))}/grades.csv, summary.json, index.html and one "
            f"report per student."
        )
    )
    if result.grader_faults:
        _fail(
            f"{len(result.grader_faults)} file(s) could not be graded because of a fault of the "
            f"grader's own (their reports say what happened and give no points): fix the cause "
            f"and rerun the same command to grade just those."
        )


@cli.command(name="ci")
@click.option("--base", required=True, help="Git ref the change starts from (the PR's base).")
@click.option("--head", default="HEAD", show_default=True, help="Git ref of the change.")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path(),
    help="The repository (default: the current folder).",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0, 100),
    default=100.0,
    show_default=True,
    help="Percentage of the maximum a changed submission needs for exit code 0.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("grading-junit.xml"),
    show_default=True,
    help="Where to write the JUnit XML.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Grading seed (default: random, shown in the summary).",
)
@click.option("--problem", "problem_id", help="Problem id (default: found from each file).")
@_problems_dir
@_reference_dir
@_require_sandbox
@_allow_basic
def ci_command(
    base: str,
    head: str,
    repo: Path,
    min_score: float,
    junit_path: Path,
    seed: int | None,
    problem_id: str | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    allow_basic: bool,
) -> None:
    """Grade the submissions a change adds or modifies (for CI on pull requests)."""
    seed = random_seed() if seed is None else seed
    runner: SubprocessRunner | None = None
    trust_caches = True

    def grade_file(copy: Path, display_name: str, content: bytes) -> Report:
        problem = find_problem(
            content.decode("utf-8", errors="replace"),
            problem_id=problem_id,
            problems_dir=problems_dir,
            reference_dir=reference_dir,
        )
        assert runner is not None  # made before any file is graded
        return check_submission(
            copy,
            problem=problem,
            seed=seed,
            runner=runner,
            display_name=display_name,
            trust_caches=trust_caches,
        )

    try:
        changes = changed_submissions(repo, base, head)
        deleted = [change for change in changes if change.status == "deleted"]
        if any(change.status != "deleted" for change in changes):
            runner, trust_caches = _staff_runner(
                require_sandbox=require_sandbox, allow_basic=allow_basic
            )
        graded = grade_changes(repo, head, changes, grade_file)
    except GraderError as exc:
        _fail(str(exc))
    summary = markdown_summary(graded, deleted, None, min_score)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with Path(step_summary).open("a", encoding="utf-8") as stream:
            stream.write(summary)
    lines = [
        f"{safe_text.terminal(g.change.path)}: {g.report.score:g}/{g.report.max_score:g} "
        f"{g.report.status}"
        for g in graded
    ] or ["No submission changed."]
    # File names and messages come from students: no workflow command may hide in them.
    sys.stdout.write(guarded("\n".join(lines) + ("" if step_summary else "\n\n" + summary)))
    for command in workflow_annotations(graded):
        print(command)
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(graded).write(str(junit_path), pretty=True)
    failing = [g for g in graded if below_threshold(g.report, min_score)]
    sys.exit(EXIT_NOT_FULL_MARKS if failing else EXIT_FULL_MARKS)


@cli.command()
@click.argument("problem_id")
@_problems_dir
@_reference_dir
def show(problem_id: str, problems_dir: Path | None, reference_dir: Path | None) -> None:
    """Print the exercise statement of PROBLEM_ID."""
    try:
        problem = load_problem(problem_id, problems_dir=problems_dir, reference_dir=reference_dir)
    except GraderError as exc:
        _fail(str(exc))
    Console().print(statement(problem.spec))


@cli.command(name="problems")
@_problems_dir
def problems_command(problems_dir: Path | None) -> None:
    """List the problems the grader knows."""
    try:
        specs = list_problems(problems_dir)
    except GraderError as exc:
        _fail(str(exc))
    for spec in specs:
        click.echo(f"{spec.id}\tv{spec.version}\t{spec.title}")


@cli.command()
def schema() -> None:
    """Print the JSON schema of the score report."""
    click.echo(json.dumps(Report.model_json_schema(), indent=2))


def _fail(message: str) -> NoReturn:
    # The message may quote a submission (a file name, a forged sandbox message): stderr is a
    # terminal and, in CI, a log read for workflow commands.
    click.echo(safe_text.error_lines(message, "grader: error: "), err=True)
    sys.exit(EXIT_USAGE)


def _write_json(report: Report, path: Path) -> None:
    """Write the report; a reader never sees a half-written file."""
    # Safe to print wherever it goes: stdout may be a CI log, and files get `cat`.
    text = safe_text.json_for_log(report.model_dump_json(indent=2) + "\n")
    if str(path) == "-":
        sys.stdout.write(text)
        return
    write_atomic(path, text)


def main() -> None:
    """Entry point of the `grader` command."""
    cli(prog_name="grader")
