"""Service commands: serve, worker, roster."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
from rich.console import Console

from grader import safe_text
from grader.cli.common import (
    allow_basic_option,
    fail,
    problems_dir_option,
    reference_dir_option,
    require_sandbox_option,
    staff_setup,
    world,
)
from grader.engine import Catalog
from grader.errors import GraderError


@click.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder where submissions, reports and the queue are kept (created if missing).",
)
@click.option(
    "--roster",
    "roster_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV 'student,token' (make one with `grader roster make`). The staff token comes "
    "from $GRADER_STAFF_TOKEN.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Submissions graded at once on this machine (default: one per core).",
)
@click.option(
    "--rate",
    default=None,
    metavar="N/hour",
    help="Submissions a student may make per problem per hour (overrides each spec's "
    "[service] submissions_per_hour; default: the spec's, else no limit).",
)
@click.option(
    "--queue",
    "queue_url",
    default=None,
    metavar="redis://HOST:6379/0",
    help="Grade through this Redis queue, on `grader worker` machines, instead of locally.",
)
@click.option(
    "--ready-seeds",
    type=click.IntRange(0, 1000),
    default=32,
    show_default=True,
    help="Seeds per problem whose reference outcomes the workers compute while the queue is "
    "empty, so that an upload graded on one runs only the submission (each seed is used once).",
)
@click.option(
    "--max-connections-per-address",
    "per_address",
    type=click.IntRange(0, 256),
    default=64,  # http.DEFAULT_PER_ADDRESS (not imported: uvicorn is slow to import)
    show_default=True,
    help="Connections one client address may hold at once (more: 503). 0: no cap, behind a "
    "reverse proxy (every client then has the proxy's address; cap them in the proxy).",
)
@problems_dir_option
@reference_dir_option
@require_sandbox_option
@allow_basic_option
def serve(
    data: Path,
    roster_path: Path,
    host: str,
    port: int,
    workers: int | None,
    rate: str | None,
    queue_url: str | None,
    ready_seeds: int,
    per_address: int,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    allow_basic: bool,
) -> None:
    """Serve the grading service: students upload files and see their verdicts."""
    from grader.service.app import run
    from grader.service.http import Limits
    from grader.service.roster import STAFF_TOKEN_ENV
    from grader.service.start import build_service

    try:
        service, warning = build_service(
            data=data, roster_path=roster_path, catalog=Catalog(problems_dir, reference_dir),
            world=world(), rate=rate, queue_url=queue_url, workers=workers,
            require_sandbox=require_sandbox, allow_basic=allow_basic, ready_seeds=ready_seeds,
        )  # fmt: skip
        limits = Limits.from_environment(per_address=per_address)
    except GraderError as exc:
        fail(str(exc))
    if warning is not None:
        Console(stderr=True).print(f"[yellow]warning:[/] {safe_text.markup(warning)}")
    if not os.environ.get(STAFF_TOKEN_ENV):
        click.echo(
            f"grader: warning: ${STAFF_TOKEN_ENV} is not set: no one has staff access.", err=True
        )
    run(service, host=host, port=port, limits=limits)


@click.command()
@click.option(
    "--queue",
    "queue_url",
    required=True,
    metavar="redis://HOST:6379/0",
    help="The Redis queue `grader serve --queue` or `grader batch --queue` sends to.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Submissions graded at once on this machine (default: one per core).",
)
@problems_dir_option
@reference_dir_option
@require_sandbox_option
@allow_basic_option
def worker(
    queue_url: str,
    workers: int | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    allow_basic: bool,
) -> None:
    """Grade submissions from a Redis queue, on this machine, until stopped (Ctrl-C)."""
    import signal
    import threading

    from grader.service.queue import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        setup = staff_setup(require_sandbox=require_sandbox, allow_basic=allow_basic)
        count = workers or os.cpu_count() or 1
        click.echo(f"grader worker: grading {count} at a time from the queue", err=True)
        catalog = Catalog(problems_dir, reference_dir)
        run_worker(queue_url, setup=setup, threads=count, catalog=catalog, stop=stop)
    except GraderError as exc:
        fail(str(exc))


@click.group("roster")
def roster_group() -> None:
    """The service's roster: who may submit, with which token."""


@roster_group.command("make")
@click.argument("names", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The roster CSV to write (student,token; readable by you only).",
)
@click.option("--force", is_flag=True, help="Replace an existing roster (every token changes).")
def roster_make(names: Path, out: Path, force: bool) -> None:
    """Make a roster from NAMES, a file with one student name a line (# comments)."""
    from grader.service.roster import make_roster

    try:
        count = make_roster(names, out, force=force)
    except GraderError as exc:
        fail(str(exc))
    click.echo(
        f"wrote {safe_text.terminal(str(out))}: {count} students, one random token each. Give "
        f"each student their own line; the file is readable by you only."
    )
