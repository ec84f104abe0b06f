"""The score report: what a student, staff and every renderer read.

The statuses and case reasons, and the order that picks a report's headline status, are in
grader/models/status.py.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from grader.models.base import Frozen
from grader.models.protocol import ErrorInfo, Isolation
from grader.models.status import CaseReason, Status


class OutputCheck(Frozen):
    """The verdict on one output of one case."""

    name: str = Field(description="The output's name from the spec.")
    passed: bool = Field(description="Whether this output matched.")
    got: float = Field(description="The submission's value.")
    expected: float = Field(description="The reference's value.")
    error: float = Field(description="|got - expected|.")
    tolerance: float = Field(description="Largest error accepted (0 for exact outputs).")

    @property
    def error_ratio(self) -> float:
        """Error as a multiple of the tolerance (inf for a wrong exact output)."""
        if self.tolerance > 0:
            return self.error / self.tolerance
        return 0.0 if self.error == 0 else math.inf


class CaseResult(Frozen):
    """The verdict on one case."""

    index: int = Field(description="Case index, from 0.")
    name: str = Field(description="What the case is.")
    inputs: str = Field(description="The arguments, briefly.")
    passed: bool = Field(description="Whether every output matched.")
    reason: CaseReason = Field(description="Why it passed or failed.")
    message: str = Field(description="One sentence a student can act on.")
    points: float = Field(description="Points earned by this case.")
    max_points: float = Field(description="Points this case is worth.")
    outputs: tuple[OutputCheck, ...] = Field(
        (), description="Per-output verdicts, when the function returned valid numbers."
    )
    error: ErrorInfo | None = Field(None, description="The exception, when it raised.")
    seconds: float | None = Field(None, description="Time the call took.")
    visible: bool = Field(
        True, description="Whether students see this case's inputs and values (else hidden)."
    )


class Hint(Frozen):
    """Advice for a failing submission: a known mistake its outputs match, or an exception."""

    id: str = Field(description="The mistake's or exception hint's id in the spec.")
    kind: Literal["mistake", "exception", "pattern", "setting", "calls"] = Field(
        description="What the hint is based on: a known mistake's outputs, an exception, a "
        "property the failing cases share and the passing ones do not, a JAX setting the "
        "submission changed, or calls whose results depend on earlier calls or differ for "
        "the same arguments."
    )
    text: str = Field(description="The advice.")
    cases: tuple[int, ...] = Field(description="Indices of the cases that support it.")


class LeftOut(Frozen):
    """A statement or line of a notebook that did not run when it was graded."""

    cell: int = Field(ge=1, description="Code cell (1 is the notebook's first code cell).")
    line: int = Field(ge=1, description="First line of it in that cell.")
    text: str = Field(max_length=200, description="Its first line, shortened.")
    why: str = Field(max_length=300, description="Why it did not run.")


class NotebookInfo(Frozen):
    """How a notebook submission was turned into the code that ran (grader/ipynb.py)."""

    code_cells: int = Field(ge=0, description="Code cells in the notebook.")
    ran: str = Field(description="What of the notebook runs when it is graded, in words.")
    left_out: tuple[LeftOut, ...] = Field(
        (), max_length=200, description="What did not run, by cell (the first 200)."
    )
    left_out_count: int = Field(0, ge=0, description="How many statements and lines in all.")
    note: str | None = Field(
        None, description="Something about the file itself, e.g. a schema problem graded anyway."
    )


class SubmissionInfo(Frozen):
    """Which file was graded."""

    path: str = Field(description="Path of the submission as given to the grader.")
    sha256: str = Field(description="SHA-256 of the file's bytes.")
    size: int = Field(description="Size in bytes.")


class ProblemInfo(Frozen):
    """Which problem the file was graded against."""

    id: str = Field(description="Problem identifier.")
    version: str = Field(description="Spec version.")
    title: str = Field(description="Problem title.")


class Versions(Frozen):
    """Software that produced the report."""

    python: str = Field(description="Python version.")
    jax: str | None = Field(description="jax version, None if not installed.")
    flax: str | None = Field(description="flax version, None if not installed.")
    grader: str = Field(description="grader version.")


class PracticeInfo(Frozen):
    """What a practice run graded against: a public pack, not the reference (grader/pack.py)."""

    pack_digest: str = Field(description="SHA-256 of the pack's content, as checked.")
    pack_created: str = Field(description="When staff made the pack, ISO 8601 UTC.")
    reference_sha256: str = Field(description="SHA-256 of the reference that made the pack.")
    note: str = Field(description="What a practice run does and does not tell.")
    version_note: str | None = Field(
        None,
        description="Set when the installed jax or flax differ from those the pack was made "
        "with (the tolerances are meant to absorb it).",
    )


class Report(Frozen):
    """The score report for one submission."""

    status: Status = Field(description="'graded' when the function could be called.")
    message: str = Field(description="The verdict in one or two sentences.")
    score: float = Field(ge=0, description="Points earned.")
    max_score: float = Field(gt=0, description="Points available.")
    cases: tuple[CaseResult, ...] = Field(description="Per-case verdicts, in case order.")
    problem: ProblemInfo = Field(description="The problem graded against.")
    submission: SubmissionInfo = Field(description="The graded file.")
    seed: int | None = Field(
        ge=0,
        description="Grading seed: the same seed gives the same cases. None in a student's "
        "view of a grading: with the seed and the spec, every hidden case can be rebuilt.",
    )
    isolation: Isolation = Field(
        description="How the submission was isolated: 'full' (namespaces, unprivileged uid, "
        "hidden folders, limits) or 'basic' (resource limits and its own session only)."
    )
    own_uid: bool | None = Field(
        None,
        description="Whether the submission ran under an unprivileged uid of its own (always "
        "with 'full'; with 'basic' where the grader is root), so that it could not touch the "
        "grader's files or processes. False: it ran as the grader's own user. None when no "
        "process was started.",
    )
    run_limits: Literal["cgroup", "per_process", "none"] | None = Field(
        None,
        description="How memory and processes were bounded: 'cgroup' (one budget for all of "
        "the run's processes together), 'per_process' (resource limits of each process only: "
        "no cgroup could be made), 'none' (trusted code); None when no process was started.",
    )
    error: ErrorInfo | None = Field(
        None, description="The exception that stopped the file from loading, if any."
    )
    hints: tuple[Hint, ...] = Field((), description="Likely mistakes, best first.")
    view: Literal["staff", "student"] = Field(
        "staff",
        description="'staff': everything; 'student': hidden cases without inputs or values.",
    )
    stdout: str = Field("", description="The end of what the submission printed to stdout.")
    stderr: str = Field("", description="The end of what the submission printed to stderr.")
    seconds: float = Field(
        ge=0,
        description="Wall-clock time spent grading the submission (for `grader check`, the "
        "reference's run included; in a batch, where the reference is shared, without it).",
    )
    peak_memory_mib: float | None = Field(
        None,
        description="Peak resident memory of the submission's process, as that process "
        "reported it (informational: a submission could misreport it).",
    )
    versions: Versions = Field(description="Software that produced the report.")
    created: str = Field(description="When the report was made, ISO 8601 UTC.")
    notebook: NotebookInfo | None = Field(
        None, description="Set for a notebook (.ipynb): what of it ran and what was left out."
    )
    practice: PracticeInfo | None = Field(
        None,
        description="Set for a practice run: graded on the public cases of a pack, against "
        "outcomes the reference computed when staff made it, not a grade. None: a real grading.",
    )

    @property
    def full_marks(self) -> bool:
        """Whether every point was earned."""
        return self.status is Status.GRADED and self.score >= self.max_score

    @property
    def passed_cases(self) -> int:
        """How many cases passed."""
        return sum(case.passed for case in self.cases)
