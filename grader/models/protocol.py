"""What crosses the process boundary: the request to a worker and the messages it sends back.

Everything a worker sends is untrusted: each field is bounded, and the trusted side checks
it again (grader/run/protocol.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from grader.models.base import Frozen
from grader.models.spec import Case


class Frame(Frozen):
    """One line of a traceback in the submission (grader frames removed)."""

    file: str = Field(max_length=1000, description="File name as the student knows it.")
    line: int = Field(ge=0, le=10**9, description="Line number.")
    function: str = Field(max_length=1000, description="Function name.")
    source: str = Field(max_length=1000, description="The source line, stripped.")


class ErrorInfo(Frozen):
    """An exception raised by the submission."""

    type: str = Field(max_length=200, description="Exception class name, e.g. 'ValueError'.")
    message: str = Field(
        max_length=5000, description="The exception's message, truncated to a few KiB."
    )
    frames: tuple[Frame, ...] = Field(
        (), max_length=50, description="Traceback from the student's first frame."
    )
    line: int | None = Field(
        None,
        ge=0,
        le=10**9,
        description="Line in the submission the error points at (in a notebook: in its cell).",
    )
    cell: int | None = Field(
        None, ge=1, le=10**6, description="Notebook only: the code cell of that line (1 = first)."
    )

    @property
    def location(self) -> str:
        """`line 3`, or in a notebook `cell 4, line 3`; '' when no line is known."""
        if not self.line:
            return ""
        return f"cell {self.cell}, line {self.line}" if self.cell else f"line {self.line}"


Isolation = Literal["full", "basic", "none"]


class Confinement(Frozen):
    """How the worker confines itself before loading the submission (see grader/run/jail.py)."""

    isolation: Isolation = Field(
        description="'full': new PID/network/mount namespaces, hidden folders, unprivileged "
        "uid, resource limits. 'basic': resource limits, and a uid of its own where the "
        "grader is root (no namespaces). 'none': trusted code (the reference)."
    )
    own_uid: bool = Field(
        False,
        description="Whether the submission switches to `uid` ('full' always does; 'basic' "
        "where the grader is root with CAP_SETUID).",
    )
    uid: int = Field(description="User id the submission runs as (when `own_uid`).")
    gid: int = Field(description="Group id the submission runs as (when `own_uid`).")
    root: str = Field(
        description="An empty folder of the grader's, where the submission's root is built."
    )
    expose: tuple[str, ...] = Field(
        description="Folders besides the system ones visible in that root, read-only ('full')."
    )
    hide: tuple[str, ...] = Field(
        description="Private folders covered even if they lie inside an exposed one ('full')."
    )
    memory_bytes: int = Field(description="RLIMIT_AS: address space.")
    cpu_seconds: int = Field(description="RLIMIT_CPU: CPU time of the process.")
    file_bytes: int = Field(description="RLIMIT_FSIZE: largest file it may write.")
    open_files: int = Field(description="RLIMIT_NOFILE: open file descriptors.")
    processes: int = Field(description="RLIMIT_NPROC: processes and threads of its uid.")
    tmp_bytes: int = Field(description="Size of its private /tmp ('full').")
    refuse_sigchld_changes: bool = Field(
        False,
        description="Refuse changes to SIGCHLD's action (seccomp): set where no cgroup accounts "
        "for the run's CPU time, since children the kernel reaps for a process that ignores "
        "SIGCHLD are counted in no process's CPU time.",
    )


class CellSpan(Frozen):
    """Where one code cell of a notebook lies in the Python file made from it."""

    cell: int = Field(ge=1, description="The code cell's number: 1 is the notebook's first.")
    first_line: int = Field(ge=1, description="Its first line in the file.")
    lines: int = Field(ge=0, description="How many lines it has.")


class RunRequest(Frozen):
    """What the trusted side sends to a worker: a file, a function, cases."""

    path: str = Field(description="Absolute path of the file to load.")
    display_name: str = Field(description="Name the file is given in tracebacks.")
    function: str = Field(description="Function to call.")
    scale_function: str | None = Field(None, description="Reference only: scales to compute.")
    parameter_names: tuple[str, ...] = Field(description="Expected parameter names, in order.")
    output_count: int = Field(ge=1, description="How many numbers the function returns.")
    variant_functions: tuple[str, ...] = Field(
        (), description="Reference only: mistaken variants to compute on every case too."
    )
    private_paths: tuple[str, ...] = Field(
        (), description="Folders the submission must not see (the reference, the specs)."
    )
    cases: tuple[Case, ...] = Field(description="Cases to run, in order.")
    cells: tuple[CellSpan, ...] = Field(
        (),
        max_length=100_000,
        description="Notebook only: the file's lines cell by cell; each cell is compiled and run "
        "on its own, as Jupyter does, so that tracebacks name the cell.",
    )
    confinement: Confinement | None = Field(
        None, description="Limits and isolation to apply before loading the file."
    )


CaseOutcomeKind = Literal["returned", "invalid", "raised"]


class CaseOutcome(Frozen):
    """What one call produced, as reported by a worker; checked again by the trusted side."""

    index: int = Field(description="Case index.")
    kind: CaseOutcomeKind = Field(
        description="'returned' numbers, returned something 'invalid', or 'raised'."
    )
    values: tuple[float, ...] | None = Field(
        None, max_length=1000, description="The numbers, when 'returned'."
    )
    scales: tuple[float, ...] | None = Field(None, description="Reference only: output scales.")
    variants: dict[str, tuple[float, ...] | None] | None = Field(
        None, description="Reference only: each mistaken variant's outputs (None if it failed)."
    )
    problem: str | None = Field(
        None, max_length=2000, description="Why the return value is invalid."
    )
    error: ErrorInfo | None = Field(None, description="The exception, when 'raised'.")
    seconds: float = Field(
        0.0, ge=0, le=10**6, description="Time the call took, as the worker saw it."
    )


class LoadedMessage(Frozen):
    """The file was imported and the function found."""

    event: Literal["loaded"] = Field(description="Message type.")


class LoadFailedMessage(Frozen):
    """The file could not be loaded; no case will run."""

    event: Literal["load_failed"] = Field(description="Message type.")
    status: Literal["syntax_error", "import_error", "missing_function", "bad_signature"] = Field(
        description="Why loading failed."
    )
    message: str = Field(max_length=5000, description="What a student should know.")
    error: ErrorInfo | None = Field(None, description="The exception, if one was raised.")


class StartMessage(Frozen):
    """A case is about to be called; its time limit starts now."""

    event: Literal["start"] = Field(description="Message type.")
    index: int = Field(description="Case index.")


class OutcomeMessage(Frozen):
    """What a case produced."""

    event: Literal["outcome"] = Field(description="Message type.")
    outcome: CaseOutcome = Field(description="The outcome.")


class ConfinedMessage(Frozen):
    """The worker confined itself (limits, and for 'full' the jail); no student code ran yet."""

    event: Literal["confined"] = Field(description="Message type.")


class SandboxFailedMessage(Frozen):
    """The worker could not confine itself: a fault of the grader's set-up, not the student's."""

    event: Literal["sandbox_failed"] = Field(description="Message type.")
    message: str = Field(max_length=5000, description="What failed.")


class DoneMessage(Frozen):
    """Every case has run."""

    event: Literal["done"] = Field(description="Message type.")
    peak_rss_kib: int | None = Field(
        None, ge=0, le=2**40, description="The worker's peak resident memory, as it reports it."
    )
    x64_enabled: StrictBool | None = Field(
        None,
        description="Whether jax_enable_x64 was on after the cases ran (None: jax not "
        "imported). The submission's claim about itself: used only to choose a hint.",
    )


WorkerMessage = Annotated[
    ConfinedMessage
    | LoadedMessage
    | LoadFailedMessage
    | StartMessage
    | OutcomeMessage
    | DoneMessage
    | SandboxFailedMessage,
    Field(discriminator="event"),
]
