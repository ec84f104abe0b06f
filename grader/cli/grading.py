"""Grading commands: check, batch, show, audit, problems, schema, pack, gradescope-autograder."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from grader import daemon, safe_text
from grader.batch import RemoteGrader, batch_interrupted, batch_outcome, discover, run_batch
from grader.cases import MAX_SEED, random_seed
from grader.cli.common import (
    EXIT_FULL_MARKS,
    EXIT_INTERRUPTED,
    EXIT_NOT_FULL_MARKS,
    allow_basic_option,
    fail,
    no_such_file,
    problems_dir_option,
    reference_dir_option,
    require_sandbox_option,
    staff_setup,
    world,
    write_json,
)
from grader.engine import Catalog, Graded, Grader, Setup, Target
from grader.errors import GraderError, UnknownProblem
from grader.figure import Figure
from grader.gradescope import build_autograder
from grader.grading import read_limit
from grader.ipynb import is_notebook
from grader.models import ProblemSpec, Report
from grader.pack import (
    DEFAULT_EXTRA,
    PACKS_ENV,
    PracticePack,
    PublicSpec,
    find_pack,
    load_pack,
    make_pack,
    write_pack,
)
from grader.problems import Problem, list_problems, load_spec, spec_path_for
from grader.render import batch_progress, gradescope_json, output_console, print_report, statement
from grader.storage import read_regular, write_atomic


@click.command()
# Not exists=True: a missing file gets a "did you mean" (see _no_such_file).
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
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
@click.option(
    "--pack",
    "pack_location",
    type=click.Path(exists=True, path_type=Path),
    help="Practise on the public cases of this pack (a folder holding pack.json, or the file) "
    f"instead of grading with the reference. Used by itself when the reference is missing "
    f"and packs/<problem id>/ (or ${PACKS_ENV}/<problem id>/) holds one.",
)
@click.option(
    "--no-daemon",
    is_flag=True,
    envvar="GRADER_NO_DAEMON",
    help="Grade in this process, not in the warm background grader the first check starts "
    "(it stops after 15 idle minutes, or with `grader daemon stop`).",
)
@problems_dir_option
@reference_dir_option
@require_sandbox_option
def check(
    file: Path,
    seed: int | None,
    json_path: Path | None,
    gradescope_path: Path | None,
    staff: bool,
    pack_location: Path | None,
    problem_id: str | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    no_daemon: bool,
) -> None:
    """Grade one submission FILE and print the verdict (a practice run with a pack)."""
    to_stdout = json_path is not None and str(json_path) == "-"
    console = output_console(stderr=to_stdout)
    if not file.exists() and not file.is_symlink():
        fail(no_such_file(file))
    try:
        raw = read_regular(file, read_limit(file.name))
        catalog = Catalog(problems_dir, reference_dir)
        source = raw.decode("utf-8", errors="replace")
        target = catalog.target(source, problem_id=problem_id, pack=pack_location)
        graded = _check_one(console, file, raw, target, seed, require_sandbox, no_daemon)
    except GraderError as exc:
        fail(str(exc))
    # The seed stays: this machine has the reference, hence every hidden case already.
    report = graded.staff if staff else graded.student_with_seed
    print_report(report, console)
    if json_path is not None:
        write_json(report, json_path)
    if gradescope_path is not None:
        write_atomic(gradescope_path, gradescope_json(graded.student))
    sys.exit(EXIT_FULL_MARKS if report.full_marks else EXIT_NOT_FULL_MARKS)


@click.command()
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
@click.option(
    "--queue",
    "queue_url",
    default=None,
    metavar="redis://HOST:6379/0",
    help="Grade on the `grader worker`s of this Redis queue instead of here (same outputs).",
)
@problems_dir_option
@reference_dir_option
@require_sandbox_option
@allow_basic_option
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
    queue_url: str | None,
) -> None:
    """Grade every submission in FOLDER (student id = file name without .py)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        entries, _ = discover(folder)
        first = entries[0].path.read_text(errors="replace") if entries else None
        problem = Catalog(problems_dir, reference_dir).find(first, problem_id)
        protect = (out.resolve(), folder.resolve())
        setup, remote = _batch_graders(console, queue_url, protect, require_sandbox, allow_basic)
        with batch_progress(console, len(entries)) as progress:
            result = run_batch(
                folder, out, problem=problem, grader=Grader(setup), seed=seed, workers=workers,
                force=force, on_progress=progress, remote=remote,
            )  # fmt: skip
    except GraderError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        console.print(Text(batch_interrupted(out)))
        sys.exit(EXIT_INTERRUPTED)
    console.print(Text(batch_outcome(result, out)))
    if result.grader_faults:
        fail(
            f"{len(result.grader_faults)} file(s) could not be graded because of a fault of the "
            f"grader's own (their reports say what happened and give no points): fix the cause "
            f"and rerun the same command to grade just those."
        )


def _check_one(
    console: Console,
    file: Path,
    raw: bytes,
    target: Target,
    seed: int | None,
    require_sandbox: bool,
    no_daemon: bool,
) -> Graded:
    """`grader check`'s grading: by the warm daemon when it can, else in this process."""
    if target.found_pack is not None:
        where = safe_text.terminal(str(target.found_pack))
        note = f"No reference solution here: practising on the public pack in {where}."
        console.print(Text(note, style="magenta"))
    if world().daemon and not no_daemon:
        graded = _in_daemon(console, file, raw, target, seed, require_sandbox)
        if graded is not None:
            return graded
    setup = world().student(require_sandbox=require_sandbox)
    return Grader(setup).grade(file, target, seed=seed)


def _in_daemon(
    console: Console, file: Path, raw: bytes, target: Target, seed: int | None, sandbox: bool
) -> Graded | None:
    """The grading done by the warm daemon (grader/daemon.py); None if it cannot be reached
    (then this process grades, as with --no-daemon)."""
    spec_path, reference_path = target.problem.spec_path, target.problem.reference_path
    request = daemon.Request(
        content=base64.b64encode(raw).decode(),
        name=str(file),
        suffix=".ipynb" if is_notebook(file.name) else ".py",
        kind="pack" if target.practice is not None else "problem",
        problem_id=target.problem.spec.id,
        problems_dir=str(spec_path.parent.resolve()),
        reference_dir=str(reference_path.parent.resolve()),
        pack=str(spec_path.resolve()),
        seed=seed,
        require_sandbox=sandbox,
    )
    try:
        staff, fault = daemon.grade(request)
    except OSError as exc:
        note = f"(the background grader could not be used: {exc}; grading in this process)"
        console.print(Text(safe_text.terminal(note), style="dim"), overflow="fold")
        return None
    return Graded(staff, fault=fault)


@click.group(name="daemon")
def daemon_group() -> None:
    """The warm background grader `grader check` uses (one per user and grader version)."""


@daemon_group.command(name="stop")
def daemon_stop() -> None:
    """Stop it (the next `grader check` starts a new one)."""
    click.echo("stopped" if daemon.stop() else "no daemon was running")


@daemon_group.command(name="status")
def daemon_status() -> None:
    """Whether it runs, and its pid."""
    pid = daemon.status()
    click.echo(f"running, pid {pid}" if pid is not None else "not running")


def _batch_graders(
    console: Console,
    queue_url: str | None,
    protect: tuple[Path, ...],
    require_sandbox: bool,
    allow_basic: bool,
) -> tuple[Setup, RemoteGrader | None]:
    """Where a batch grades: here, in the staff sandbox, or on the queue's workers."""
    if queue_url is not None:
        return world().queue_sender(), _queue_grader(console, queue_url)
    setup = staff_setup(require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect)
    return setup, None


def _queue_grader(console: Console, queue_url: str) -> RemoteGrader:
    """`grader batch --queue`: the workers grade, each in its own sandbox (`grader worker`
    refuses basic isolation as `batch` does); nothing of the students' runs here."""
    from grader.service.queue import QueueGrader, shown_url

    shown = safe_text.terminal(shown_url(queue_url))  # no password on the screen
    console.print(
        Text(
            f"Grading through the queue {shown}: the files are graded by `grader worker "
            f"--queue ...` processes (none running: this waits)."
        )
    )
    return QueueGrader(queue_url)


@click.command()
@click.argument("problem_id")
@problems_dir_option
def show(problem_id: str, problems_dir: Path | None) -> None:
    """Print the exercise statement of PROBLEM_ID (from its spec, else from its practice pack;
    the reference solution is not needed)."""
    try:
        try:
            shown: ProblemSpec | PublicSpec = load_spec(spec_path_for(problem_id, problems_dir))
        except UnknownProblem:
            location = find_pack("", problem_id)
            if location is None:
                raise
            shown = load_pack(location).problem
    except GraderError as exc:
        fail(str(exc))
    output_console().print(statement(shown))


@click.command()
@click.argument("problem_id")
@click.option(
    "--seeds",
    type=click.IntRange(min=1, max=100_000),
    default=200,
    show_default=True,
    help="How many grading seeds (0, 1, ...) to measure over.",
)
@click.option(
    "--design-only",
    is_flag=True,
    help="Measure the case design alone (fast, no JAX); skip the catalogued mistakes, which "
    "need the reference to run on every seed's cases.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@problems_dir_option
@reference_dir_option
def audit(
    problem_id: str,
    seeds: int,
    design_only: bool,
    as_json: bool,
    problems_dir: Path | None,
    reference_dir: Path | None,
) -> None:
    """Measure how often a wrong solution of PROBLEM_ID could get full marks.

    For each catalogued mistake, and for a solution wrong only on part of a parameter's range
    (one parity, a third, below or above a cut, an extreme, a sign), the fraction of grading
    seeds on which it passes every case. Exit 1 when any is above the spec's
    [audit] max_escape.
    """
    from grader import audit as auditing
    from grader.render import audit_table

    try:
        problem = Catalog(problems_dir, reference_dir).problem(problem_id)
        spec = problem.spec
        figures = auditing.design_figures(spec, range(seeds))
        if not design_only and spec.mistakes:
            figures = _mistake_figures(problem, seeds) + figures
    except GraderError as exc:
        fail(str(exc))
    threshold = spec.audit.max_escape
    if as_json:
        click.echo(auditing.figures_json(figures, threshold))
    else:
        Console().print(audit_table(spec, figures, threshold))
    sys.exit(EXIT_NOT_FULL_MARKS if auditing.failing(figures, threshold) else EXIT_FULL_MARKS)


def _mistake_figures(problem: Problem, seeds: int) -> list[Figure]:
    """The audit's figures for the catalogued mistakes (the reference runs on every seed's
    cases, trusted), with a line saying how far it is."""
    from grader import audit as auditing

    with Console(stderr=True).status("running the reference on the seeds' cases") as shown:

        def progress(what: str) -> None:
            shown.update(f"running the reference: {what}")

        reference = world().student().reference
        return auditing.mistake_figures(
            problem, list(range(seeds)), runner=reference, progress=progress
        )


@click.command(name="problems")
@problems_dir_option
def problems_command(problems_dir: Path | None) -> None:
    """List the problems the grader knows."""
    try:
        specs = list_problems(problems_dir)
    except GraderError as exc:
        fail(str(exc))
    for spec in specs:
        click.echo(f"{spec.id}\tv{spec.version}\t{spec.title}")


@click.command()
@click.option("--pack", "of_pack", is_flag=True, help="The schema of a practice pack instead.")
def schema(of_pack: bool) -> None:
    """Print the JSON schema of the score report (or of a practice pack)."""
    model = PracticePack if of_pack else Report
    click.echo(json.dumps(model.model_json_schema(), indent=2))


@click.command(name="pack")
@click.argument("problem_id")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write pack.json into (students put it in packs/<problem id>/).",
)
@click.option(
    "--extra",
    type=click.IntRange(0, 100),
    default=DEFAULT_EXTRA,
    show_default=True,
    help="Random practice cases besides the spec's visible ones.",
)
@problems_dir_option
@reference_dir_option
def pack_command(
    problem_id: str,
    out: Path,
    extra: int,
    problems_dir: Path | None,
    reference_dir: Path | None,
) -> None:
    """Write a public practice pack of PROBLEM_ID (staff, where the reference is).

    It holds the statement, public cases with the reference's outputs, and the outputs of
    known mistakes on them (for hints): no code, no hidden case.
    """
    try:
        problem = Catalog(problems_dir, reference_dir).problem(problem_id)
        pack = make_pack(problem, extra=extra, runner=world().student().reference)
        path = write_pack(pack, out)
    except GraderError as exc:
        fail(str(exc))
    click.echo(
        f"Wrote {path}: {len(pack.cases)} practice cases of {pack.problem.id} "
        f"v{pack.problem.version}, digest {pack.digest[:12]}. Publish the folder; students put "
        f"it in packs/{pack.problem.id}/ and run `grader check FILE`."
    )


@click.command(name="gradescope-autograder")
@click.argument("problem_id", required=False)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip to write (upload it as the assignment's autograder).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Grading seed every submission is graded on (default: random, drawn now).",
)
@problems_dir_option
@reference_dir_option
def gradescope_autograder(
    problem_id: str | None,
    out: Path,
    seed: int | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
) -> None:
    """Build Gradescope's autograder zip for PROBLEM_ID (default: the only problem).

    It holds setup.sh, run_autograder, the spec, the reference (Gradescope keeps the zip from
    students) and a wheel of this grader; Gradescope's image gets jax and flax from PyPI.
    """
    try:
        problem = Catalog(problems_dir, reference_dir).find(None, problem_id)
        chosen = random_seed() if seed is None else seed
        built = build_autograder(problem, out, seed=chosen)
    except GraderError as exc:
        fail(str(exc))
    click.echo(
        f"Wrote {safe_text.terminal(str(out))}: {', '.join(built.members)}. Every submission "
        f"is graded on seed {chosen} (the same cases for all). Upload it as the autograder of "
        f"a Gradescope programming assignment (Ubuntu base image)."
    )
