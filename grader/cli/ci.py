"""CI commands: `grader ci` (a trusted branch) and `grader pr` (pull requests, in two workflows)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from grader import safe_text
from grader.cases import random_seed
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
from grader.cli.common import (
    EXIT_FULL_MARKS,
    EXIT_NOT_FULL_MARKS,
    allow_basic_option,
    fail,
    git_range,
    junit_option,
    min_score_option,
    problems_dir_option,
    reference_dir_option,
    require_sandbox_option,
    seed_and_problem_per_file,
    staff_setup,
    write_payload,
)
from grader.engine import Catalog, Grader
from grader.errors import GraderError


@click.command(name="ci")
@git_range
@min_score_option("Percentage of the maximum a changed submission needs for exit code 0.")
@junit_option
@seed_and_problem_per_file
@problems_dir_option
@reference_dir_option
@require_sandbox_option
@allow_basic_option
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
            setup = staff_setup(require_sandbox=require_sandbox, allow_basic=allow_basic)
            graded = grade_submissions(
                Grader(setup),
                Catalog(problems_dir, reference_dir),
                submitted,
                seed=random_seed() if seed is None else seed,
                problem_id=problem_id,
            )
    except GraderError as exc:
        fail(str(exc))
    deleted = [change for change in changes if change.status == "deleted"]
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    output, passed = publish(
        graded, deleted, min_score=min_score, junit_path=junit_path,
        step_summary=Path(step_summary) if step_summary else None,
    )  # fmt: skip
    sys.stdout.write(output)
    sys.exit(EXIT_FULL_MARKS if passed else EXIT_NOT_FULL_MARKS)


# --------------------------------------------------------------------------------------------
# `grader pr`: pull-request CI split between an untrusted and a trusted workflow (docs/ci.md)
# --------------------------------------------------------------------------------------------


_BAD_SHA = "--sha `{}` is not a full commit SHA: pass github.event.workflow_run.head_sha"


@click.group(name="pr")
def pr_group() -> None:
    """Pull-request CI in two workflows: collect (untrusted), grade and post (trusted)."""


@pr_group.command(name="collect")
@git_range
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
        fail(f"{out} already exists; name a new folder with --out")
    try:
        manifest = collect(repo, base, head, pr_number=pr_number, out=out)
    except GraderError as exc:
        fail(str(exc))
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
@junit_option
@min_score_option("Percentage of the maximum each submission needs for the check to pass.")
@seed_and_problem_per_file
@problems_dir_option
@reference_dir_option
@require_sandbox_option
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
        fail(_BAD_SHA.format(describe(head_sha)))
    chosen_seed = random_seed() if seed is None else seed

    def grade(submitted: list[Submitted]) -> list[FileVerdict]:
        setup = staff_setup(require_sandbox=require_sandbox, allow_basic=False)
        catalog = Catalog(problems_dir, reference_dir)
        return grade_submissions(
            Grader(setup), catalog, submitted, seed=chosen_seed, problem_id=problem_id
        )

    verdict = grade_pull_request(
        artifact, head_sha=head_sha, pr_text=pr_text, collect_conclusion=collect_conclusion,
        details_url=details_url, min_score=min_score, grade=grade,
    )  # fmt: skip
    write_payload(payload_path, verdict.check_run)
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
        fail(_BAD_SHA.format(describe(head_sha)))
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
        fail(str(exc))
    click.echo(f"posted check run {run_id} ({check_run.conclusion}: {check_run.output.title})")
