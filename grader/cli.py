"""The `grader` command: parse arguments, call the library, render, choose the exit code.

Exit codes: 0 full marks, 1 anything less (including a file that failed to load), 2 a usage
error or a fault of the grader's own (missing file, unknown problem, bad spec), 130 a batch
interrupted with Ctrl-C (its finished reports kept).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from grader import __version__, safe_text
from grader.batch import RemoteGrader, batch_interrupted, batch_outcome, discover, run_batch
from grader.cases import MAX_SEED, random_seed
from grader.ci import (
    FileVerdict,
    Submitted,
    changed_submissions,
    contents_at,
    grade_submissions,
    guarded,
    log_lines,
    publish,
    write_junit,
)
from grader.ci_artifact import collect, describe, valid_sha
from grader.ci_checks import CheckRun, failure_check_run, grade_pull_request, post_check_run
from grader.engine import Catalog, Grader, Setup, World
from grader.errors import GraderError, UnknownProblem, UsageError
from grader.gradescope import build_autograder
from grader.grading import read_limit, versions
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
from grader.problems import PROBLEMS_ENV, REFERENCE_ENV, list_problems, load_spec, spec_path_for
from grader.render import batch_progress, gradescope_json, output_console, print_report, statement
from grader.storage import read_regular, write_atomic


def _library_versions() -> str:
    """The versions that grade (numerics can move between jax releases)."""
    found = versions()
    return f"jax {found.jax}, flax {found.flax}, python {found.python}"


EXIT_FULL_MARKS = 0
EXIT_NOT_FULL_MARKS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

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


def _world() -> World:
    """How this invocation builds its gradings (`main` gives the real one; tests their own)."""
    found = click.get_current_context().find_object(World)
    return found if found is not None else World()


def _staff_setup(
    *, require_sandbox: bool, allow_basic: bool, protect: tuple[Path, ...] = ()
) -> Setup:
    """The Setup for grading other people's work; says so on stderr when it is less than full
    isolation (see `Setup.for_staff`)."""
    world = _world()
    setup = world.staff(require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect)
    if setup.warning is not None:
        Console(stderr=True).print(f"[yellow]warning:[/] {safe_text.markup(setup.warning)}")
    return setup


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__,
    prog_name="grader",
    message=f"%(prog)s %(version)s (grading with {_library_versions()})",
)
def cli() -> None:
    """Grade JAX/Flax exercises: student code runs in a separate process, never in the grader."""


@cli.command()
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
@_problems_dir
@_reference_dir
@_require_sandbox
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
) -> None:
    """Grade one submission FILE and print the verdict (a practice run with a pack)."""
    to_stdout = json_path is not None and str(json_path) == "-"
    console = output_console(stderr=to_stdout)
    if not file.exists() and not file.is_symlink():
        _fail(_no_such_file(file))
    try:
        source = read_regular(file, read_limit(file.name)).decode("utf-8", errors="replace")
        catalog = Catalog(problems_dir, reference_dir)
        target = catalog.target(source, problem_id=problem_id, pack=pack_location)
        if target.practice is not None and seed is not None:
            raise UsageError(
                "--seed chooses the cases of a real grading; a practice run always uses the "
                "pack's cases. Leave out --seed."
            )
        if target.found_pack is not None:
            where = safe_text.terminal(str(target.found_pack))
            note = f"No reference solution here: practising on the public pack in {where}."
            console.print(Text(note, style="magenta"))
        graded = Grader(_world().student(require_sandbox=require_sandbox)).grade(
            file, target, seed=seed
        )
    except GraderError as exc:
        _fail(str(exc))
    # The seed stays: this machine has the reference, hence every hidden case already.
    report = graded.staff if staff else graded.student_with_seed
    print_report(report, console)
    if json_path is not None:
        _write_json(report, json_path)
    if gradescope_path is not None:
        write_atomic(gradescope_path, gradescope_json(graded.student))
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
@click.option(
    "--queue",
    "queue_url",
    default=None,
    metavar="redis://HOST:6379/0",
    help="Grade on the `grader worker`s of this Redis queue instead of here (same outputs).",
)
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
    queue_url: str | None,
) -> None:
    """Grade every submission in FOLDER (student id = file name without .py)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        entries, _ = discover(folder)
        first = entries[0].path.read_text(errors="replace") if entries else None
        problem = Catalog(problems_dir, reference_dir).find(first, problem_id)
        remote = None
        if queue_url is not None:
            setup, remote = _world().queue_sender(), _queue_grader(console, queue_url)
        else:
            protect = (out.resolve(), folder.resolve())
            setup = _staff_setup(
                require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect
            )
        with batch_progress(console, len(entries)) as progress:
            result = run_batch(
                folder, out, problem=problem, grader=Grader(setup), seed=seed, workers=workers,
                force=force, on_progress=progress, remote=remote,
            )  # fmt: skip
    except GraderError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print(Text(batch_interrupted(out)))
        sys.exit(EXIT_INTERRUPTED)
    console.print(Text(batch_outcome(result, out)))
    if result.grader_faults:
        _fail(
            f"{len(result.grader_faults)} file(s) could not be graded because of a fault of the "
            f"grader's own (their reports say what happened and give no points): fix the cause "
            f"and rerun the same command to grade just those."
        )


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


F = TypeVar("F", bound=Callable[..., Any])


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, in the order they would be stacked."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


# Options `grader ci` and `grader pr` share.
_git_range = compose(
    click.option("--base", required=True, help="Git ref the change starts from (the PR's base)."),
    click.option("--head", default="HEAD", show_default=True, help="Git ref of the change."),
    click.option(
        "--repo",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=Path(),
        help="The repository (default: the current folder).",
    ),
)
_junit = click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the per-case results as JUnit XML here (none by default: nothing is "
    "written into the working tree unasked).",
)
_seed_and_problem_per_file = compose(
    click.option(
        "--seed",
        type=click.IntRange(0, MAX_SEED),
        default=None,
        help="Grading seed (default: random). Students never see it (with it and the "
        "reference, every hidden case can be rebuilt): pass it to repeat a grading.",
    ),
    click.option("--problem", "problem_id", help="Problem id (default: found from each file)."),
)


def _min_score(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--min-score",
        type=click.FloatRange(0, 100),
        default=100.0,
        show_default=True,
        help=help_text,
    )


@cli.command(name="ci")
@_git_range
@_min_score("Percentage of the maximum a changed submission needs for exit code 0.")
@_junit
@_seed_and_problem_per_file
@_problems_dir
@_reference_dir
@_require_sandbox
@_allow_basic
def ci_command(
    base: str,
    head: str,
    repo: Path,
    min_score: float,
    junit_path: Path | None,
    seed: int | None,
    problem_id: str | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
    allow_basic: bool,
) -> None:
    """Grade the submissions a change adds or modifies (CI on a trusted branch; PRs: `pr`)."""
    try:
        changes = changed_submissions(repo, base, head)
        submitted = contents_at(repo, head, changes)
        graded = []
        if submitted:
            setup = _staff_setup(require_sandbox=require_sandbox, allow_basic=allow_basic)
            graded = grade_submissions(
                Grader(setup),
                Catalog(problems_dir, reference_dir),
                submitted,
                seed=random_seed() if seed is None else seed,
                problem_id=problem_id,
            )
    except GraderError as exc:
        _fail(str(exc))
    deleted = [change for change in changes if change.status == "deleted"]
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    output, passed = publish(
        graded, deleted, min_score=min_score, junit_path=junit_path,
        step_summary=Path(step_summary) if step_summary else None,
    )  # fmt: skip
    sys.stdout.write(output)
    sys.exit(EXIT_FULL_MARKS if passed else EXIT_NOT_FULL_MARKS)


@cli.command()
@click.argument("problem_id")
@_problems_dir
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
        _fail(str(exc))
    output_console().print(statement(shown))


@cli.command()
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
@_problems_dir
@_reference_dir
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
            with Console(stderr=True).status("running the reference on the seeds' cases") as shown:

                def progress(what: str) -> None:
                    shown.update(f"running the reference: {what}")

                reference = _world().student().reference
                figures = (
                    auditing.mistake_figures(
                        problem, list(range(seeds)), runner=reference, progress=progress
                    )
                    + figures
                )
    except GraderError as exc:
        _fail(str(exc))
    threshold = spec.audit.max_escape
    if as_json:
        click.echo(auditing.figures_json(figures, threshold))
    else:
        Console().print(audit_table(spec, figures, threshold))
    sys.exit(EXIT_NOT_FULL_MARKS if auditing.failing(figures, threshold) else EXIT_FULL_MARKS)


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
@click.option("--pack", "of_pack", is_flag=True, help="The schema of a practice pack instead.")
def schema(of_pack: bool) -> None:
    """Print the JSON schema of the score report (or of a practice pack)."""
    model = PracticePack if of_pack else Report
    click.echo(json.dumps(model.model_json_schema(), indent=2))


@cli.command(name="pack")
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
@_problems_dir
@_reference_dir
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
        pack = make_pack(problem, extra=extra, runner=_world().student().reference)
        path = write_pack(pack, out)
    except GraderError as exc:
        _fail(str(exc))
    click.echo(
        f"Wrote {path}: {len(pack.cases)} practice cases of {pack.problem.id} "
        f"v{pack.problem.version}, digest {pack.digest[:12]}. Publish the folder; students put "
        f"it in packs/{pack.problem.id}/ and run `grader check FILE`."
    )


@cli.command(name="gradescope-autograder")
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
@_problems_dir
@_reference_dir
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
        _fail(str(exc))
    click.echo(
        f"Wrote {safe_text.terminal(str(out))}: {', '.join(built.members)}. Every submission "
        f"is graded on seed {chosen} (the same cases for all). Upload it as the autograder of "
        f"a Gradescope programming assignment (Ubuntu base image)."
    )


# --------------------------------------------------------------------------------------------
# `grader pr`: pull-request CI split between an untrusted and a trusted workflow (docs/ci.md)
# --------------------------------------------------------------------------------------------


_BAD_SHA = "--sha `{}` is not a full commit SHA: pass github.event.workflow_run.head_sha"


@cli.group(name="pr")
def pr_group() -> None:
    """Pull-request CI in two workflows: collect (untrusted), grade and post (trusted)."""


@pr_group.command(name="collect")
@_git_range
@click.option("--pr", "pr_number", required=True, type=click.IntRange(min=1), help="PR number.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to create for the artifact (must not exist).",
)
def pr_collect(base: str, head: str, repo: Path, pr_number: int, out: Path) -> None:
    """Write the changed submissions and a manifest into OUT, for upload as an artifact."""
    if out.exists():
        _fail(f"{out} already exists; name a new folder with --out")
    try:
        manifest = collect(repo, base, head, pr_number=pr_number, out=out)
    except GraderError as exc:
        _fail(str(exc))
    lines = [f"{entry.path} ({entry.status}, {entry.size} bytes)" for entry in manifest.files]
    lines += [f"{path} (deleted, not graded)" for path in manifest.deleted]
    # File names come from the pull request: no workflow command may hide in them.
    sys.stdout.write(
        guarded(
            f"Collected {len(manifest.files)} submission(s) of pull request "
            f"#{manifest.pr_number} at {manifest.head_sha} into {out}:\n" + "\n".join(lines)
        )
    )


@pr_group.command(name="grade")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--sha",
    "head_sha",
    required=True,
    help="The head commit, from the event: github.event.workflow_run.head_sha.",
)
@click.option(
    "--pr",
    "pr_text",
    default="",
    help="The PR number from the event (github.event.workflow_run.pull_requests[0].number); "
    "empty for fork PRs, whose event lists none.",
)
@click.option(
    "--collect-conclusion",
    default="success",
    show_default=True,
    help="github.event.workflow_run.conclusion: anything but success is not graded.",
)
@click.option(
    "--payload",
    "payload_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the check run (JSON), pass or fail; `grader pr post` sends it.",
)
@click.option("--details-url", default=None, help="Link to this grading run, for the check.")
@_junit
@_min_score("Percentage of the maximum each submission needs for the check to pass.")
@_seed_and_problem_per_file
@_problems_dir
@_reference_dir
@_require_sandbox
def pr_grade(
    artifact: Path,
    head_sha: str,
    pr_text: str,
    collect_conclusion: str,
    payload_path: Path,
    details_url: str | None,
    junit_path: Path | None,
    min_score: float,
    seed: int | None,
    problem_id: str | None,
    problems_dir: Path | None,
    reference_dir: Path | None,
    require_sandbox: bool,
) -> None:
    """Validate the downloaded ARTIFACT, grade it, and write the check run to --payload.

    Exit 0 when the check passes, 1 when it fails (a low score, or an artifact that is missing,
    malformed or not this pull request's), 2 when the grader itself cannot grade; every path
    that knows the commit writes a payload, so the pull request always gets a verdict.
    """

    payload_path.unlink(missing_ok=True)  # no stale verdict may be posted for this run
    if not valid_sha(head_sha):  # without the commit, no check run can carry the verdict
        _fail(_BAD_SHA.format(describe(head_sha)))
    chosen_seed = random_seed() if seed is None else seed

    def grade(submitted: list[Submitted]) -> list[FileVerdict]:
        setup = _staff_setup(require_sandbox=require_sandbox, allow_basic=False)
        catalog = Catalog(problems_dir, reference_dir)
        return grade_submissions(
            Grader(setup), catalog, submitted, seed=chosen_seed, problem_id=problem_id
        )

    verdict = grade_pull_request(
        artifact, head_sha=head_sha, pr_text=pr_text, collect_conclusion=collect_conclusion,
        details_url=details_url, min_score=min_score, grade=grade,
    )  # fmt: skip
    _write_payload(payload_path, verdict.check_run)
    if verdict.staff_log is not None:
        click.echo(safe_text.error_lines(verdict.staff_log, "grader: error: "), err=True)
    if verdict.refused is not None:
        click.echo(f"grader: not graded: {verdict.refused}", err=True)
        sys.exit(verdict.exit_code)
    write_junit(verdict.graded, junit_path)
    sys.stdout.write(guarded(log_lines(verdict.graded)))
    run = verdict.check_run
    click.echo(f"check run {run.conclusion}: {run.output.title} -> {payload_path}")
    sys.exit(verdict.exit_code)


@pr_group.command(name="post")
@click.argument("payload_path", metavar="PAYLOAD", type=click.Path(path_type=Path))
@click.option(
    "--sha",
    "head_sha",
    required=True,
    help="The head commit, from the event: a missing payload becomes a failing check on it.",
)
@click.option(
    "--reason",
    default="The grading step did not finish, so there is no result.",
    show_default=True,
    help="What the failing check says when PAYLOAD is missing or unreadable.",
)
@click.option("--details-url", default=None, help="Link to this grading run, for the check.")
def pr_post(payload_path: Path, head_sha: str, reason: str, details_url: str | None) -> None:
    """Send the check run in PAYLOAD to GitHub ($GITHUB_API_URL, $GITHUB_REPOSITORY, $GITHUB_TOKEN).

    A payload that is missing, unreadable or for another commit is replaced by a failing check
    saying so: the pull request never goes without a verdict, and never gets a pass by accident.
    """
    if not valid_sha(head_sha):
        _fail(_BAD_SHA.format(describe(head_sha)))
    try:
        check_run = CheckRun.model_validate_json(payload_path.read_bytes())
    except (OSError, ValueError):
        check_run = failure_check_run(head_sha, reason, details_url=details_url)
    if check_run.head_sha != head_sha:
        check_run = failure_check_run(
            head_sha, f"The result found was for another commit. {reason}", details_url=details_url
        )
    try:
        run_id = post_check_run(
            check_run,
            api_url=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
            repository=os.environ.get("GITHUB_REPOSITORY", ""),
            token=os.environ.get("GITHUB_TOKEN", ""),
        )
    except GraderError as exc:
        _fail(str(exc))
    click.echo(f"posted check run {run_id} ({check_run.conclusion}: {check_run.output.title})")


def _no_such_file(path: Path) -> str:
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


@cli.command()
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
    "--max-connections-per-address",
    "per_address",
    type=click.IntRange(0, 256),
    default=64,  # http.DEFAULT_PER_ADDRESS (not imported: uvicorn is slow to import)
    show_default=True,
    help="Connections one client address may hold at once (more: 503). 0: no cap, behind a "
    "reverse proxy (every client then has the proxy's address; cap them in the proxy).",
)
@_problems_dir
@_reference_dir
@_require_sandbox
@_allow_basic
def serve(
    data: Path,
    roster_path: Path,
    host: str,
    port: int,
    workers: int | None,
    rate: str | None,
    queue_url: str | None,
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
            world=_world(), rate=rate, queue_url=queue_url, workers=workers,
            require_sandbox=require_sandbox, allow_basic=allow_basic,
        )  # fmt: skip
        limits = Limits.from_environment(per_address=per_address)
    except GraderError as exc:
        _fail(str(exc))
    if warning is not None:
        Console(stderr=True).print(f"[yellow]warning:[/] {safe_text.markup(warning)}")
    if not os.environ.get(STAFF_TOKEN_ENV):
        click.echo(
            f"grader: warning: ${STAFF_TOKEN_ENV} is not set: no one has staff access.", err=True
        )
    run(service, host=host, port=port, limits=limits)


@cli.command()
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
@_problems_dir
@_reference_dir
@_require_sandbox
@_allow_basic
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
        setup = _staff_setup(require_sandbox=require_sandbox, allow_basic=allow_basic)
        count = workers or os.cpu_count() or 1
        click.echo(f"grader worker: grading {count} at a time from the queue", err=True)
        catalog = Catalog(problems_dir, reference_dir)
        run_worker(queue_url, setup=setup, threads=count, catalog=catalog, stop=stop)
    except GraderError as exc:
        _fail(str(exc))


@cli.group("roster")
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
        _fail(str(exc))
    click.echo(
        f"wrote {safe_text.terminal(str(out))}: {count} students, one random token each. Give "
        f"each student their own line; the file is readable by you only."
    )


def _fail(message: str) -> NoReturn:
    # The message may quote a submission (a file name, a forged sandbox message): stderr is a
    # terminal and, in CI, a log read for workflow commands.
    click.echo(safe_text.error_lines(message, "grader: error: "), err=True)
    sys.exit(EXIT_USAGE)


def _write_payload(path: Path, check_run: CheckRun) -> None:
    """Write a check run; readable by all, since the grade step runs as root and the post step
    does not (it holds no secret: the student view only)."""
    write_atomic(path, check_run.model_dump_json(indent=2) + "\n")
    path.chmod(0o644)


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
    cli(prog_name="grader", obj=World())
