"""The `grader` command: parse arguments, call the library, render, choose the exit code.

Exit codes: 0 full marks, 1 anything less (including a file that failed to load), 2 a usage
error or a fault of the grader's own (missing file, unknown problem, bad spec), 130 a batch
interrupted with Ctrl-C (its finished reports kept).
"""

from __future__ import annotations

import click

from grader import __version__
from grader.cli.ci import ci_command, pr_group
from grader.cli.common import (
    EXIT_FULL_MARKS,
    EXIT_INTERRUPTED,
    EXIT_NOT_FULL_MARKS,
    EXIT_USAGE,
    library_versions,
)
from grader.cli.grading import (
    audit,
    batch,
    check,
    daemon_group,
    gradescope_autograder,
    pack_command,
    problems_command,
    schema,
    show,
)
from grader.cli.service import roster_group, serve, worker
from grader.engine import World


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__,
    prog_name="grader",
    message=f"%(prog)s %(version)s (grading with {library_versions()})",
)
def cli() -> None:
    """Grade JAX/Flax exercises: student code runs in a separate process, never in the grader."""


for command in (
    check,
    batch,
    ci_command,
    show,
    audit,
    problems_command,
    schema,
    pack_command,
    gradescope_autograder,
    pr_group,
    serve,
    worker,
    roster_group,
    daemon_group,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `grader` command."""
    cli(prog_name="grader", obj=World())


__all__ = [
    "EXIT_FULL_MARKS",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FULL_MARKS",
    "EXIT_USAGE",
    "cli",
    "main",
]
