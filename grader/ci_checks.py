"""The trusted side's verdict on a pull request: a GitHub check run on its head commit.

Runs in the grade workflow (docs/ci.md), never in the pull request's own. The payload is built
from student-view reports through the same renderers as `grader ci` (the summary is
`markdown_summary`'s), bounded by GitHub's limits, and validated by `CheckRun` before it is
written. GitHub counts text limits in bytes of UTF-8, whatever its OpenAPI description says (a
summary over 65,535 bytes but not characters is refused: "exceeds a maximum bytesize"), so every
text here is measured and cut in bytes, at a character boundary, with a line saying what was
cut. `post_check_run` sends it with the workflow's token: one POST, then a PATCH per further
50 annotations (GitHub's limit per request).

Every failure to grade (no artifact, a malformed or forged one, a crash) becomes a check run
with conclusion `failure` (`failure_check_run`): the pull request never shows a pass it did not
earn.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from grader.ci import (
    FileVerdict,
    Submitted,
    annotated_line,
    below_threshold,
    markdown_summary,
    wrong_output_note,
)
from grader.ci_artifact import MAX_FILES, Artifact, describe, load_artifact
from grader.errors import ArtifactError, GraderError, PostError

CHECK_NAME = "grader"
# Limits in bytes of UTF-8. GitHub's REST reference: output.summary and output.text "Maximum
# length: 65535 characters" (enforced in bytes); annotation message and raw_details "The maximum
# size is 64 KB"; annotation title "The maximum size is 255 characters" (held to 255 bytes here,
# the same reading that summary needed). The check run's own title has no documented limit.
MAX_SUMMARY = 65535
MAX_TEXT = 65535
GITHUB_MAX_MESSAGE = 64 * 1024
MAX_MESSAGE = 4000  # ours, well under GITHUB_MAX_MESSAGE: a message and two hints
MAX_TITLE = 255
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 150
API_VERSION = "2022-11-28"


def utf8_size(text: str) -> int:
    """How many bytes GitHub counts for text (lone surrogates, which UTF-8 cannot hold, as 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _at_most(limit: int) -> AfterValidator:
    def check(text: str) -> str:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("holds a lone surrogate, which UTF-8 (and GitHub) cannot") from None
        if size > limit:
            raise ValueError(f"is {size} bytes of UTF-8; GitHub takes at most {limit}")
        return text

    return AfterValidator(check)


def cut_utf8(text: str, limit: int) -> str:
    """The longest start of text that is at most `limit` bytes of UTF-8, never half a
    character; a lone surrogate becomes `?` first."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


class Annotation(BaseModel):
    """A check-run annotation (GitHub's field names)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Repository-relative path of the file.")
    start_line: int = Field(ge=1, description="First line annotated.")
    end_line: int = Field(ge=1, description="Last line annotated.")
    annotation_level: Literal["notice", "warning", "failure"] = Field(
        description="How GitHub shows it."
    )
    title: Annotated[str, _at_most(MAX_TITLE)] = Field(description="Short heading.")
    message: Annotated[str, _at_most(GITHUB_MAX_MESSAGE)] = Field(
        description="Plain text, never Markdown."
    )


class Output(BaseModel):
    """A check run's output: title, Markdown summary, annotations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: Annotated[str, _at_most(MAX_TITLE)] = Field(
        description="One line shown next to the check."
    )
    summary: Annotated[str, _at_most(MAX_SUMMARY)] = Field(
        description="Markdown shown on the check's page."
    )
    annotations: list[Annotation] = Field(
        default_factory=list, max_length=MAX_ANNOTATIONS, description="Located errors."
    )


class CheckRun(BaseModel):
    """The body of `POST /repos/{owner}/{repo}/check-runs`, completed in one go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The check's name on the pull request.")
    head_sha: str = Field(
        pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$", description="The commit it is attached to."
    )
    status: Literal["completed"] = Field(description="Always completed: one run, one verdict.")
    conclusion: Literal["success", "failure"] = Field(description="Pass or fail.")
    details_url: str | None = Field(default=None, description="The grading run's page.")
    output: Output = Field(description="What the check's page shows.")


def fit_summary(text: str, limit: int = MAX_SUMMARY) -> str:
    """text cut at a line boundary to fit GitHub's limit in bytes, with a line saying what was
    cut (a single line longer than the limit is cut at a character boundary)."""
    text = cut_utf8(text, utf8_size(text))  # lone surrogates, which GitHub refuses, become ?
    size = utf8_size(text)
    if size <= limit:
        return text

    def note(dropped: int, lines: int) -> str:
        return (
            f"\n\n*The summary was cut here to fit GitHub's limit of {limit} bytes: the last "
            f"{dropped} bytes ({lines} lines) are missing. The grading run's JUnit artifact has "
            f"every case.*\n"
        )

    # Measured with the largest numbers the note can hold, so it always fits after the cut.
    cut = cut_utf8(text, limit - utf8_size(note(size, text.count("\n") + 1)))
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    missing = text[len(cut) :]
    return cut + note(utf8_size(missing), len(missing.strip("\n").splitlines()))


def _clip(text: str, limit: int) -> str:
    """A one-line text cut to `limit` bytes at a character boundary, ending in `...`."""
    text = cut_utf8(text, utf8_size(text))
    return text if utf8_size(text) <= limit else cut_utf8(text, limit - 3) + "..."


def _clip_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """An annotation message cut to `limit` bytes at a character boundary, with a line saying
    so."""
    text = cut_utf8(text, utf8_size(text))
    size = utf8_size(text)
    if size <= limit:
        return text
    note = f"\n[cut to {limit} bytes of {size}: the check's summary has more]"
    return cut_utf8(text, limit - utf8_size(note)) + note


def check_annotations(graded: list[FileVerdict]) -> list[Annotation]:
    """Annotations where a file fails to load, at the student's line of each exception, and at
    the function's def line for wrong outputs.

    The same places `workflow_annotations` marks for `grader ci`. Check-run annotation messages
    are shown as plain text, so student text needs no escaping here, only a bound.
    """
    annotations = []
    for item in graded:
        report = item.report

        def add(line: int, title: str, message: str, path: str = item.change.path) -> None:
            annotations.append(
                Annotation(
                    path=path,
                    start_line=line,
                    end_line=line,
                    annotation_level="failure",
                    title=_clip(title, MAX_TITLE),
                    message=_clip_message(message),
                )
            )

        if report.error is not None and report.error.line:
            line, cell = annotated_line(report.error)
            add(line, f"{report.status.value}{cell}", report.message)
        seen: set[tuple[int | None, int]] = set()
        for case in report.cases:
            error = case.error
            if error is None or error.line is None or (error.cell, error.line) in seen:
                continue
            seen.add((error.cell, error.line))
            line, cell = annotated_line(error)
            add(line, f"{error.type} in case {case.index}{cell}", case.message)
        note = wrong_output_note(item)
        if note is not None:
            add(*note)
    return annotations[:MAX_ANNOTATIONS]


def graded_check_run(
    artifact: Artifact,
    graded: list[FileVerdict],
    *,
    head_sha: str,
    min_score: float,
    details_url: str | None = None,
) -> CheckRun:
    """The check run for a graded artifact: failure when any file is below min_score."""
    failing = [item for item in graded if below_threshold(item.report, min_score)]
    if not graded:
        # The author controls the artifact: an empty one must not turn the check green.
        title = "No submission graded"
    elif failing:
        title = f"{len(failing)} of {len(graded)} submissions below {min_score:g}%"
    else:
        title = f"{len(graded)} submission{'s' if len(graded) != 1 else ''} graded: all pass"
    scores = ", ".join(f"{g.report.score:g}/{g.report.max_score:g}" for g in graded)
    if scores:
        title = _clip(f"{title} ({scores})", MAX_TITLE)
    summary = markdown_summary(graded, artifact.deleted, None, min_score)
    if details_url:
        summary += f"\nGraded by the trusted workflow: [run log]({details_url}).\n"
    return CheckRun(
        name=CHECK_NAME,
        head_sha=head_sha,
        status="completed",
        conclusion="failure" if failing or not graded else "success",
        details_url=details_url,
        output=Output(
            title=title, summary=fit_summary(summary), annotations=check_annotations(graded)
        ),
    )


def failure_check_run(head_sha: str, reason: str, *, details_url: str | None = None) -> CheckRun:
    """A failing check run for a pull request that could not be graded, saying why.

    reason is written by the grader (student-controlled parts already quoted with
    `ci_artifact.describe`).
    """
    summary = (
        "## Not graded\n\n"
        f"{reason}\n\n"
        "Nothing was graded, so this check fails. If you did not change the workflows, push "
        "your commit again; if it keeps failing, ask the course staff and link this pull "
        "request.\n"
    )
    if details_url:
        summary += f"\nSee the [grading run's log]({details_url}).\n"
    return CheckRun(
        name=CHECK_NAME,
        head_sha=head_sha,
        status="completed",
        conclusion="failure",
        details_url=details_url,
        output=Output(title="Not graded", summary=fit_summary(summary)),
    )


def _request(method: str, url: str, token: str, body: dict[str, object]) -> dict[str, object]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310  # an https:// (or test http://) API URL
        url,
        data=data,
        method=method,
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "grader",
            "X-GitHub-Api-Version": API_VERSION,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        with exc:  # its connection is closed here, not left to the garbage collector
            detail = exc.read(2000).decode(errors="replace")
        hint = " The job needs `permissions: checks: write`." if exc.code in (401, 403, 404) else ""
        raise PostError(f"{method} {url} failed: HTTP {exc.code} {detail}.{hint}") from None
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise PostError(f"{method} {url} failed: {exc}") from None
    return answer if isinstance(answer, dict) else {}


def post_check_run(check_run: CheckRun, *, api_url: str, repository: str, token: str) -> int:
    """Create the check run (annotations beyond 50 in further PATCH requests); its id."""
    if not token:
        raise PostError("no token: set GITHUB_TOKEN (the workflow's github.token)")
    if repository.count("/") != 1:
        raise PostError(f"GITHUB_REPOSITORY {repository!r} is not owner/name")
    base = f"{api_url.rstrip('/')}/repos/{repository}/check-runs"
    annotations = [a.model_dump() for a in check_run.output.annotations]
    body = check_run.model_dump(exclude_none=True)
    batches = [
        annotations[i : i + MAX_ANNOTATIONS_PER_REQUEST]
        for i in range(0, len(annotations), MAX_ANNOTATIONS_PER_REQUEST)
    ] or [[]]
    body["output"]["annotations"] = batches[0]
    created = _request("POST", base, token, body)
    run_id = created.get("id")
    if not isinstance(run_id, int):
        raise PostError(f"POST {base} answered without a check run id")
    for batch in batches[1:]:
        output = {
            "title": check_run.output.title,
            "summary": check_run.output.summary,
            "annotations": batch,
        }
        _request("PATCH", f"{base}/{run_id}", token, {"output": output})
    return run_id


@dataclass(frozen=True)
class PullRequestVerdict:
    """What `grader pr grade` ends with: the check run to post, the files graded, the exit
    code (0 pass, 1 fail or refused artifact, 2 the course's set-up failed), and why nothing
    was graded when so (for the run's log)."""

    check_run: CheckRun
    graded: list[FileVerdict]
    exit_code: int
    refused: str | None = None
    staff_log: str | None = None


def grade_pull_request(
    artifact: Path,
    *,
    head_sha: str,
    pr_text: str,
    collect_conclusion: str,
    details_url: str | None,
    min_score: float,
    grade: Callable[[list[Submitted]], list[FileVerdict]],
) -> PullRequestVerdict:
    """Validate the downloaded artifact against the event, grade its files with `grade`, and
    make the check run; every path ends in a check run on the commit (`head_sha` is valid)."""

    def refuse(reason: str, code: int, staff_log: str | None = None) -> PullRequestVerdict:
        check_run = failure_check_run(head_sha, reason, details_url=details_url)
        return PullRequestVerdict(check_run, [], code, reason, staff_log)

    pr_number: int | None = None
    if pr_text.strip():
        if not (pr_text.strip().isascii() and pr_text.strip().isdigit()):
            return refuse(f"--pr `{describe(pr_text)}` is not a pull request number", 2)
        pr_number = int(pr_text)
    if collect_conclusion != "success":
        return refuse(
            f"The collect workflow run ended with conclusion `{describe(collect_conclusion)}`, so "
            "it uploaded nothing that can be graded. Its log, under the pull request's checks, "
            "says why (for example a submission that is not a file directly under "
            f"submissions/, larger than 1 MiB, or more than {MAX_FILES} changed files).",
            1,
        )
    try:
        loaded = load_artifact(artifact, head_sha=head_sha, pr_number=pr_number)
    except ArtifactError as exc:
        return refuse(f"The artifact was refused: {exc}.", 1)
    try:
        graded = grade(loaded.submissions)
    except GraderError as exc:
        # The message stays in this run's log, for staff: a failing reference's may quote its
        # traceback, which must not reach the pull request.
        return refuse(
            "The grader could not grade this pull request: a problem on the course's side "
            f"({type(exc).__name__}), not in the submission. Course staff: the grading run's "
            "log says what went wrong.",
            2,
            staff_log=str(exc),
        )
    check_run = graded_check_run(
        loaded, graded, head_sha=head_sha, min_score=min_score, details_url=details_url
    )
    return PullRequestVerdict(check_run, graded, 0 if check_run.conclusion == "success" else 1)
