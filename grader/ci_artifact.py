"""The artifact that carries a pull request's submissions from the untrusted to the trusted side.

Pull-request CI runs in two workflows (docs/ci.md). The *collect* workflow runs on
`pull_request`, from the pull request's own tree, with no secret and a read-only token: it calls
`collect` to write the changed submission files and a manifest into a folder, and uploads that
folder as an artifact. The *grade* workflow runs on `workflow_run`, from the default branch, with
the reference: it downloads the artifact and calls `load_artifact`, which treats every byte of it
as data written by the pull request's author, because it is: they control the collect workflow
file of their branch and everything it runs.

So `load_artifact` trusts nothing in the folder: it walks it without following links, accepts
only `manifest.json` and regular files named `submissions/<name>.py` or `.ipynb` (1 MiB each, at
most `MAX_FILES`), parses the manifest with a strict model, requires the files on disk to be
exactly those the manifest lists with the digests it gives, and checks the manifest's pull
request number and head commit against the values the workflow passes from the `workflow_run`
event, which GitHub sets and the author cannot. Anything else raises `ArtifactError`, whose
message says what is wrong for the people reading the check on the pull request.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.ci import SUBMISSIONS, Change, Submitted, changed_submissions, git
from grader.errors import ArtifactError
from grader.storage import write_atomic

MANIFEST = "manifest.json"
FORMAT: Literal[1] = 1
MAX_FILE_BYTES = 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024
MAX_FILES = 20
MAX_DELETED = 100

# One file directly under submissions/: letters (any script), digits, `_`, `-` and `.`, not
# starting with a dot, ending in .py or .ipynb. No `/`, so no `..` component and no absolute path.
_NAME = re.compile(r"(?!\.)[\w.-]{1,100}\.(?:py|ipynb)")
_SHA = r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$"  # SHA-1 or SHA-256 object names

Sha = Annotated[str, Field(pattern=_SHA)]


def describe(text: str, limit: int = 120) -> str:
    """Untrusted text (a file name) quoted for a message: ASCII-escaped, bounded, one line.

    `ascii()` escapes control characters, newlines and every non-ASCII character, and backticks
    become `\\x60`, so the result is inert inside a Markdown code span.
    """
    quoted = ascii(text)[1:-1].replace("`", "\\x60")
    return quoted if len(quoted) <= limit else quoted[: limit - 3] + "..."


def valid_sha(text: str) -> bool:
    """Whether text is a full commit SHA (SHA-1 or SHA-256, lower-case hex)."""
    return re.fullmatch(_SHA, text) is not None


def valid_path(path: str) -> bool:
    """Whether path is `submissions/<name>.py` or `.ipynb` with an allowed name."""
    folder, slash, name = path.partition("/")
    return folder == SUBMISSIONS and slash == "/" and _NAME.fullmatch(name) is not None


def _path_problem(path: str) -> str | None:
    """Why path cannot travel in an artifact, or None when it can."""
    if valid_path(path):
        return None
    if path.startswith("/") or ".." in path.split("/"):
        return f"`{describe(path)}` leaves the submissions folder"
    return (
        f"`{describe(path)}` is not a file directly under `{SUBMISSIONS}/` named with letters, "
        f"digits, `_`, `-` and `.` and ending in .py or .ipynb"
    )


def _checked_path(path: str) -> str:
    problem = _path_problem(path)
    if problem is not None:
        raise ValueError(problem)
    return path


class ArtifactFile(BaseModel):
    """One submission file in the artifact, as the collect side describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    path: str = Field(description="Repository-relative path: submissions/<name>.py or .ipynb.")
    status: Literal["added", "modified", "renamed", "copied"] = Field(
        description="What the pull request did to the file (git diff's status)."
    )
    size: int = Field(ge=0, le=MAX_FILE_BYTES, description="Size of the file in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes.")


class Manifest(BaseModel):
    """What the collect side says about the artifact; checked, never believed."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: Literal[1] = Field(description="Version of this manifest format.")
    pr_number: int = Field(ge=1, description="The pull request the files come from.")
    head_sha: Sha = Field(description="The pull request's head commit the files were read at.")
    base_sha: Sha = Field(description="The commit the change was compared against.")
    files: list[ArtifactFile] = Field(
        max_length=MAX_FILES, description="The changed submissions, in the artifact's folder."
    )
    deleted: list[str] = Field(
        default_factory=list,
        max_length=MAX_DELETED,
        description="Submissions the pull request deletes (listed, not graded).",
    )


@dataclass(frozen=True)
class Artifact:
    """A validated artifact: what may be graded, and what was deleted."""

    manifest: Manifest
    submissions: list[Submitted]
    deleted: list[Change]


# --------------------------------------------------------------------------------------------
# Collect side (untrusted workflow)
# --------------------------------------------------------------------------------------------


def collect(repo: Path, base: str, head: str, *, pr_number: int, out: Path) -> Manifest:
    """Write the submissions head changes since base, and a manifest, into out (must not exist).

    Files are read from git at head, so the working tree may be anywhere. A changed file the
    trusted side would refuse (a nested or oddly named path, an oversized file) stops the
    collection here, with a message the student can act on.
    """
    changes = changed_submissions(repo, base, head)
    head_sha = git(repo, "rev-parse", "--verify", f"{head}^{{commit}}").decode().strip()
    base_sha = git(repo, "rev-parse", "--verify", f"{base}^{{commit}}").decode().strip()
    graded = [change for change in changes if change.status != "deleted"]
    deleted = [change.path for change in changes if change.status == "deleted"]
    problems = [p for change in graded if (p := _path_problem(change.path)) is not None]
    if problems:
        raise ArtifactError(
            "these changed submissions cannot be graded: "
            + "; ".join(problems)
            + f". Move or rename them to {SUBMISSIONS}/<name>.py."
        )
    if len(graded) > MAX_FILES:
        raise ArtifactError(
            f"the pull request changes {len(graded)} submissions; at most {MAX_FILES} are graded "
            "at once. Split it into smaller pull requests."
        )
    contents: dict[str, bytes] = {}
    for change in graded:
        content = git(repo, "show", f"{head}:{change.path}")
        if len(content) > MAX_FILE_BYTES:
            raise ArtifactError(
                f"{change.path} is {len(content)} bytes; a submission may be at most "
                f"{MAX_FILE_BYTES} bytes (1 MiB)."
            )
        contents[change.path] = content
    manifest = Manifest(
        format=FORMAT,
        pr_number=pr_number,
        head_sha=head_sha,
        base_sha=base_sha,
        files=[
            ArtifactFile(
                path=change.path,
                status=change.status,  # type: ignore[arg-type]  # not "deleted": filtered above
                size=len(contents[change.path]),
                sha256=hashlib.sha256(contents[change.path]).hexdigest(),
            )
            for change in graded
        ],
        deleted=[path for path in deleted if valid_path(path)],
    )
    out.mkdir(parents=True)
    (out / SUBMISSIONS).mkdir()
    for path, content in contents.items():
        (out / path).write_bytes(content)
    write_atomic(out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------------------------
# Trusted side (grade workflow)
# --------------------------------------------------------------------------------------------


def _entries(folder: bytes, where: str) -> list[tuple[str, os.stat_result]]:
    """The names in folder with their lstat, names strictly UTF-8; links are never followed."""
    found = []
    with os.scandir(folder) as listing:
        for entry in listing:
            try:
                name = entry.name.decode("utf-8")
            except UnicodeDecodeError:
                raise ArtifactError(
                    f"the artifact holds a file in {where} whose name is not UTF-8 "
                    f"(`{describe(entry.name.decode('utf-8', 'replace'))}`); "
                    "submission names must be UTF-8."
                ) from None
            found.append((name, entry.stat(follow_symlinks=False)))
    return found


def _read_regular(path: bytes, shown: str) -> bytes:
    """The bytes of a regular file, opened without following a link, at most 1 MiB."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ArtifactError(
            f"cannot open `{describe(shown)}` in the artifact: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise ArtifactError(f"`{describe(shown)}` in the artifact is not a regular file")
        content = stream.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        raise ArtifactError(
            f"`{describe(shown)}` in the artifact is larger than {MAX_FILE_BYTES} bytes (1 MiB)"
        )
    return content


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file (not a regular file)"


def load_artifact(folder: Path, *, head_sha: str, pr_number: int | None) -> Artifact:
    """Validate a downloaded artifact against the workflow_run event's head SHA and PR number.

    head_sha and pr_number come from the event (`github.event.workflow_run`), never from the
    artifact; pr_number is None when the event lists no pull request (GitHub leaves the list
    empty for pull requests from forks), and then the manifest's number is not used at all.
    """
    if not valid_sha(head_sha):
        raise ArtifactError(
            f"--sha `{describe(head_sha)}` is not a commit SHA; pass "
            "github.event.workflow_run.head_sha"
        )
    root = os.fsencode(folder)
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        raise ArtifactError(
            f"the artifact is missing: {folder} does not exist. The collect workflow did not "
            "upload it, or it could not be downloaded."
        ) from None
    if not stat.S_ISDIR(mode):
        raise ArtifactError(f"the artifact {folder} is {_kind(mode)}, not a folder")

    top = dict(_entries(root, "the artifact"))
    unexpected = sorted(set(top) - {MANIFEST, SUBMISSIONS})
    if unexpected:
        shown = ", ".join(f"`{describe(name)}`" for name in unexpected[:5])
        raise ArtifactError(
            f"the artifact holds unexpected entries: {shown}; only {MANIFEST} and "
            f"{SUBMISSIONS}/ belong in it"
        )
    if MANIFEST not in top:
        raise ArtifactError(
            f"the artifact has no {MANIFEST}: it was not made by `grader pr collect`"
        )
    if not stat.S_ISREG(top[MANIFEST].st_mode):
        raise ArtifactError(f"{MANIFEST} in the artifact is {_kind(top[MANIFEST].st_mode)}")
    if top[MANIFEST].st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    raw = _read_regular(root + b"/" + MANIFEST.encode(), MANIFEST)
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'manifest'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ArtifactError(f"{MANIFEST} is malformed: {describe(errors, 600)}") from None

    if manifest.head_sha != head_sha:
        raise ArtifactError(
            f"{MANIFEST} says the files come from commit {manifest.head_sha}, but the collect "
            f"run was for commit {head_sha}: the artifact does not belong to this pull request's "
            "head commit, so it is not graded"
        )
    if pr_number is not None and manifest.pr_number != pr_number:
        raise ArtifactError(
            f"{MANIFEST} says pull request #{manifest.pr_number}, but the collect run was for "
            f"pull request #{pr_number}: the artifact is not graded"
        )
    for entry in manifest.files:
        problem = _path_problem(entry.path)
        if problem is not None:
            raise ArtifactError(f"{MANIFEST} lists {problem}")
    listed = [entry.path for entry in manifest.files]
    if len(set(listed)) != len(listed):
        raise ArtifactError(f"{MANIFEST} lists a file twice")
    for path in manifest.deleted:
        problem = _path_problem(path)
        if problem is not None:
            raise ArtifactError(f"{MANIFEST} lists as deleted {problem}")

    on_disk: dict[str, bytes] = {}
    if SUBMISSIONS in top:
        mode = top[SUBMISSIONS].st_mode
        if not stat.S_ISDIR(mode):
            raise ArtifactError(f"{SUBMISSIONS} in the artifact is {_kind(mode)}, not a folder")
        folder_bytes = root + b"/" + SUBMISSIONS.encode()
        entries = _entries(folder_bytes, f"{SUBMISSIONS}/")
        if len(entries) > MAX_FILES:
            raise ArtifactError(
                f"the artifact holds {len(entries)} entries in {SUBMISSIONS}/; at most "
                f"{MAX_FILES} are graded at once"
            )
        for name, info in entries:
            shown = f"{SUBMISSIONS}/{name}"
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(
                    f"`{describe(shown)}` in the artifact is {_kind(info.st_mode)}; only regular "
                    "files are graded"
                )
            problem = _path_problem(shown)
            if problem is not None:
                raise ArtifactError(f"the artifact holds {problem}")
            on_disk[shown] = _read_regular(folder_bytes + b"/" + name.encode(), shown)

    missing = sorted(set(listed) - set(on_disk))
    extra = sorted(set(on_disk) - set(listed))
    if missing or extra:
        parts = []
        if missing:
            parts.append("listed but absent: " + ", ".join(f"`{describe(p)}`" for p in missing))
        if extra:
            parts.append("present but not listed: " + ", ".join(f"`{describe(p)}`" for p in extra))
        raise ArtifactError(f"the artifact's files do not match {MANIFEST} ({'; '.join(parts)})")

    submissions = []
    for entry in manifest.files:
        content = on_disk[entry.path]
        if len(content) != entry.size or hashlib.sha256(content).hexdigest() != entry.sha256:
            raise ArtifactError(
                f"`{entry.path}` does not match the size and SHA-256 {MANIFEST} gives for it"
            )
        submissions.append(Submitted(Change(path=entry.path, status=entry.status), content))
    deleted = [Change(path=path, status="deleted") for path in manifest.deleted]
    return Artifact(manifest=manifest, submissions=submissions, deleted=deleted)
