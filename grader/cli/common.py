"""What every command shares: exit codes, options, the World, failing with a message."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from grader import safe_text
from grader.cases import MAX_SEED
from grader.ci_checks import CheckRun
from grader.engine import Setup, World
from grader.grading import versions
from grader.models import Report
from grader.problems import PROBLEMS_ENV, REFERENCE_ENV
from grader.storage import write_atomic


def library_versions() -> str:
    """The versions that grade (numerics can move between jax releases)."""
    found = versions()
    return f"jax {found.jax}, flax {found.flax}, python {found.python}"


EXIT_FULL_MARKS = 0
EXIT_NOT_FULL_MARKS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

problems_dir_option = click.option(
    "--problems-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar=PROBLEMS_ENV,
    help=f"Folder of problem specs (default: the repository's problems/; env {PROBLEMS_ENV}).",
)
reference_dir_option = click.option(
    "--reference-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar=REFERENCE_ENV,
    help=f"Folder of reference solutions (default: the repository's reference/; "
    f"env {REFERENCE_ENV}).",
)
require_sandbox_option = click.option(
    "--require-sandbox",
    is_flag=True,
    help="Refuse to grade unless submissions get full isolation (root, Linux namespaces).",
)
allow_basic_option = click.option(
    "--allow-basic-isolation",
    "allow_basic",
    is_flag=True,
    help="Grade other people's files even without full isolation (not root, no namespaces). "
    "Submissions then run as your own user: they can read your files and environment, and "
    "the grader trusts no cache they could have written (slower). See docs/sandbox.md.",
)


def world() -> World:
    """How this invocation builds its gradings (`main` gives the real one; tests their own)."""
    found = click.get_current_context().find_object(World)
    return found if found is not None else World()


def staff_setup(
    *, require_sandbox: bool, allow_basic: bool, protect: tuple[Path, ...] = ()
) -> Setup:
    """The Setup for grading other people's work; says so on stderr when it is less than full
    isolation (see `Setup.for_staff`)."""
    setup = world().staff(require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect)
    if setup.warning is not None:
        Console(stderr=True).print(f"[yellow]warning:[/] {safe_text.markup(setup.warning)}")
    return setup


F = TypeVar("F", bound=Callable[..., Any])


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, in the order they would be stacked."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


# Options `grader ci` and `grader pr` share.
git_range = compose(
    click.option("--base", required=True, help="Git ref the change starts from (the PR's base)."),
    click.option("--head", default="HEAD", show_default=True, help="Git ref of the change."),
    click.option(
        "--repo",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=Path(),
        help="The repository (default: the current folder).",
    ),
)
junit_option = click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the per-case results as JUnit XML here (none by default: nothing is "
    "written into the working tree unasked).",
)
seed_and_problem_per_file = compose(
    click.option(
        "--seed",
        type=click.IntRange(0, MAX_SEED),
        default=None,
        help="Grading seed (default: random). Students never see it (with it and the "
        "reference, every hidden case can be rebuilt): pass it to repeat a grading.",
    ),
    click.option("--problem", "problem_id", help="Problem id (default: found from each file)."),
)


def min_score_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--min-score",
        type=click.FloatRange(0, 100),
        default=100.0,
        show_default=True,
        help=help_text,
    )


def no_such_file(path: Path) -> str:
    """That a file does not exist, and the closest names in its folder (a typo is likely)."""
    folder = path.parent
    try:
        names = [entry.name for entry in folder.iterdir() if entry.is_file()]
    except OSError:
        return f"{path} does not exist (nor does its folder {folder})."
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    if not close:
        python = sorted(name for name in names if name.endswith((".py", ".ipynb")))[:5]
        there = f" Python files there: {', '.join(python)}." if python else ""
        return f"{path} does not exist.{there}"
    options = " or ".join(str(folder / name) for name in close)
    return f"{path} does not exist. Did you mean {options}?"


def fail(message: str) -> NoReturn:
    # The message may quote a submission (a file name, a forged sandbox message): stderr is a
    # terminal and, in CI, a log read for workflow commands.
    click.echo(safe_text.error_lines(message, "grader: error: "), err=True)
    sys.exit(EXIT_USAGE)


def write_payload(path: Path, check_run: CheckRun) -> None:
    """Write a check run; readable by all, since the grade step runs as root and the post step
    does not (it holds no secret: the student view only)."""
    write_atomic(path, check_run.model_dump_json(indent=2) + "\n")
    path.chmod(0o644)


def write_json(report: Report, path: Path) -> None:
    """Write the report; a reader never sees a half-written file."""
    # Safe to print wherever it goes: stdout may be a CI log, and files get `cat`.
    text = safe_text.json_for_log(report.model_dump_json(indent=2) + "\n")
    if str(path) == "-":
        sys.stdout.write(text)
        return
    write_atomic(path, text)
