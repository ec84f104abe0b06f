"""The grader's data: problem specs in, score reports out.

Every model is frozen and forbids unknown fields, so a typo in a spec or a forged field in a
report is an error rather than silently ignored. Every field carries a description, so that
`grader schema` prints a JSON schema that documents itself.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator


class Frozen(BaseModel):
    """Base for every model here: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------------
# Problem specs (problems/*.toml)
# --------------------------------------------------------------------------------------------


class IntParameter(Frozen):
    """An integer argument drawn uniformly from [low, high]."""

    name: str = Field(description="Argument name, as in the function's signature.")
    kind: Literal["int"] = Field(description="Draws an integer.")
    low: int = Field(description="Smallest value drawn (inclusive).")
    high: int = Field(description="Largest value drawn (inclusive).")
    pass_as: Literal["int", "float"] = Field(
        "int", description="Python type the function receives the value as."
    )
    shape: bool = Field(
        False,
        description="The value sets an array shape in the solution (a layer width): cases "
        "share a few shape groups, so that programs compiled for one case serve others.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> IntParameter:
        if self.low > self.high:
            raise ValueError(f"parameter {self.name!r}: low {self.low} > high {self.high}")
        return self


class VectorDraw(Frozen):
    """How a vector's length and values are drawn; edge cases override single fields."""

    length: tuple[int, int] = Field((1, 8), description="Inclusive range of the vector's length.")
    magnitude: tuple[float, float] = Field(
        (1e-3, 1e2),
        description="Inclusive range of |value|; each element's magnitude is drawn "
        "log-uniformly from it and its sign at random, so values mix sign and scale.",
    )
    fill: float | None = Field(
        None, description="If set, every element equals this value (the length is still drawn)."
    )

    @model_validator(mode="after")
    def _valid(self) -> VectorDraw:
        low, high = self.length
        if not 1 <= low <= high:
            raise ValueError(f"vector length range {self.length} must satisfy 1 <= low <= high")
        if not 0 < self.magnitude[0] <= self.magnitude[1]:
            raise ValueError(f"vector magnitude range {self.magnitude} must be positive, ordered")
        return self


class VectorParameter(Frozen):
    """A 1-D float array argument."""

    name: str = Field(description="Argument name, as in the function's signature.")
    kind: Literal["vector"] = Field(description="Draws a 1-D array.")
    draw: VectorDraw = Field(default_factory=VectorDraw, description="How values are drawn.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Element type.")
    pass_as: Literal["jax", "numpy", "list"] = Field(
        "jax", description="What the function receives: a jax array, a numpy array or a list."
    )
    shape: bool = Field(
        False, description="The length sets array shapes in the solution (see IntParameter)."
    )


class LengthOfParameter(Frozen):
    """An argument equal to the length of a vector argument drawn earlier."""

    name: str = Field(description="Argument name, as in the function's signature.")
    kind: Literal["length_of"] = Field(description="Derived from another argument.")
    of: str = Field(description="Name of the vector parameter whose length this is.")
    pass_as: Literal["int", "float"] = Field(
        "int", description="Python type the function receives the value as."
    )


Parameter = Annotated[
    IntParameter | VectorParameter | LengthOfParameter, Field(discriminator="kind")
]


class EdgeCase(Frozen):
    """A fixed case: some arguments pinned, the rest drawn as usual."""

    name: str = Field(description="What the case exercises, shown to students.")
    values: dict[str, int | dict[str, object]] = Field(
        description="Pinned arguments: an integer for an int parameter, or fields of a vector "
        "draw (length, magnitude, fill) for a vector parameter."
    )


class Mistake(Frozen):
    """A known wrong variant of the solution: a function in the reference file, and a hint."""

    id: str = Field(description="Short identifier, e.g. 'state_keys'.")
    function: str = Field(description="Function in the reference file computing the variant.")
    hint: str = Field(description="What to tell a student whose outputs match the variant.")


class ExceptionHint(Frozen):
    """Advice for an exception a submission commonly raises."""

    id: str = Field(description="Short identifier, e.g. 'float_seed'.")
    type: str = Field(description="Exception class name, e.g. 'ValueError'.")
    match: str = Field(description="Regular expression searched in the exception's message.")
    hint: str = Field(description="What to tell the student.")


class CaseSet(Frozen):
    """How many random cases to draw, and the fixed edge cases."""

    random: int = Field(ge=0, le=1000, description="Number of random cases per grading.")
    visible: tuple[str, ...] | None = Field(
        None,
        description="Names of the cases whose inputs, expected and actual outputs students "
        "see; the others are hidden (pass or fail and hints only). None: all visible.",
    )
    shape_groups: int | None = Field(
        None,
        ge=1,
        description="If set, each grading draws this many values of the shape parameters "
        "and case i takes group i mod N (unless an edge case pins them). Every new shape "
        "costs JAX about a second of compilation, so fewer shapes grade much faster.",
    )
    stratify: bool = Field(
        False,
        description="Draw int parameters and shape sizes so that every grading covers their "
        "range: one value in each third (low, middle, high) and both parities, among the shape "
        "groups for shape parameters and among the random cases for the others; every pair of "
        "two parameters' parities (and signs) together, as a covering array; and a vector's "
        "values in every decade of magnitude with both signs, and zero. A solution wrong on "
        "only part of a range, or of two ranges together, then cannot pass by luck of the seed.",
    )
    repeat_seed: str | None = Field(
        None,
        description="Name of an int parameter the last random case copies from the first one "
        "(its other inputs differ), so a solution that caches results by it is caught.",
    )
    check_calls: bool = Field(
        False,
        description="After the random cases, three cases that test that calls are independent "
        "and repeatable: an earlier random case's seed and sizes with another x, its x and "
        "sizes with another seed, and an exact repeat of one. A solution caching results "
        "between calls, or giving different outputs for the same call, fails one of them.",
    )
    edge: tuple[EdgeCase, ...] = Field((), description="Fixed edge cases, run before the random.")


class Output(Frozen):
    """One element of the function's return value and how it is compared."""

    name: str = Field(description="Name of the output, used in every message about it.")
    compare: Literal["exact", "close"] = Field(
        description="'exact': must equal the reference; 'close': within the tolerance."
    )
    rtol: float = Field(
        0.0,
        ge=0,
        description="Relative tolerance, multiplied by the scale of the output (see "
        "Tolerance.scale). Only for 'close'.",
    )
    atol: float = Field(0.0, ge=0, description="Absolute tolerance floor. Only for 'close'.")


class ReferenceSpec(Frozen):
    """Where the reference solution lives."""

    file: str = Field(description="File name under the reference directory.")
    scale_function: str | None = Field(
        None,
        description="Optional function in the reference file, called with a case's arguments, "
        "returning for each output the magnitude of what is summed to produce it (e.g. the sum "
        "of absolute values). 'close' tolerances are rtol times max(scale, |expected|) plus "
        "atol. Without it the scale is |expected|.",
    )


class Limits(Frozen):
    """Time and resource limits for one submission."""

    case_seconds: float = Field(
        30.0,
        gt=0,
        description="CPU-time limit for one case (all the worker's threads and processes, "
        "measured by the grader), so that a busy machine does not make a correct solution "
        "time out. Wall-clock time when CPU time cannot be measured.",
    )
    total_seconds: float = Field(
        60.0,
        gt=0,
        description="CPU-time limit for loading the file and running every case (as above).",
    )
    wall_factor: float = Field(
        4.0,
        ge=1,
        description="The wall-clock backstop, as a multiple of each CPU-time limit: it stops "
        "a run that waits instead of computing (a sleep, a blocked read).",
    )
    memory_mb: int = Field(
        3072,
        ge=1536,
        description="Address-space limit of the submission's process in MiB "
        "(JAX needs about 1.5 GiB of address space to start).",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        description="After a case times out or kills its process, the remaining cases run in "
        "a fresh process, at most this many times.",
    )


class AuditSpec(Frozen):
    """What `grader audit` accepts of the case design."""

    max_escape: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Largest accepted fraction of grading seeds on which a catalogued mistake, "
        "or a solution wrong on only part of a parameter's range, gets full marks.",
    )


class ServiceSpec(Frozen):
    """How `grader serve` accepts submissions to the problem."""

    submissions_per_hour: int | None = Field(
        None,
        ge=1,
        description="Most submissions a student may make to this problem in any hour (an "
        "anti-oracle limit: fewer tries to probe hidden cases); none: no limit. `grader serve "
        "--rate` overrides it.",
    )


class ProblemSpec(Frozen):
    """A problem: the function students write, how it is tested and scored."""

    id: str = Field(description="Problem identifier, e.g. 'graphdef_vs_state'.")
    version: str = Field(description="Spec version; changes whenever grading would change.")
    title: str = Field(description="One-line title.")
    statement: str = Field(description="The exercise, in words a student reads.")
    function: str = Field(description="Name of the function students define.")
    parameters: tuple[Parameter, ...] = Field(description="The function's arguments, in order.")
    outputs: tuple[Output, ...] = Field(description="The elements of the returned sequence.")
    cases: CaseSet = Field(description="Which cases are run.")
    points_per_case: float = Field(1.0, gt=0, description="Points for each fully passed case.")
    reference: ReferenceSpec = Field(description="The reference solution.")
    limits: Limits = Field(default_factory=Limits, description="Limits for one submission.")
    tolerance_note: str = Field("", description="Why the tolerances are what they are.")
    mistakes: tuple[Mistake, ...] = Field(
        (), description="Known wrong variants, to diagnose a failing submission."
    )
    exception_hints: tuple[ExceptionHint, ...] = Field(
        (), description="Advice for common exceptions."
    )
    x64_hint: str = Field(
        "",
        description="What to tell a failing submission that turned jax_enable_x64 on (as its "
        "worker reports it); empty: nothing.",
    )
    audit: AuditSpec = Field(
        default_factory=AuditSpec, description="Thresholds for `grader audit`."
    )
    service: ServiceSpec = Field(
        default_factory=ServiceSpec, description="Submission limits for `grader serve`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProblemSpec:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        kinds = {p.name: p.kind for p in self.parameters}
        for p in self.parameters:
            if isinstance(p, LengthOfParameter) and kinds.get(p.of) != "vector":
                raise ValueError(f"parameter {p.name!r}: {p.of!r} is not a vector parameter")
        by_name = {p.name: p for p in self.parameters}
        for edge in self.cases.edge:
            for key, value in edge.values.items():
                param = by_name.get(key)
                if isinstance(param, IntParameter) and isinstance(value, int):
                    continue
                if isinstance(param, VectorParameter) and isinstance(value, dict):
                    VectorDraw.model_validate({**param.draw.model_dump(), **value})
                    continue
                raise ValueError(f"edge case {edge.name!r}: cannot pin {key!r} to {value!r}")
        repeated = self.cases.repeat_seed
        if repeated is not None and not isinstance(by_name.get(repeated), IntParameter):
            raise ValueError(f"cases.repeat_seed: {repeated!r} is not an int parameter")
        if repeated is not None and self.cases.random < 2:
            raise ValueError("cases.repeat_seed needs at least 2 random cases")
        if self.cases.check_calls and self.cases.random < 1:
            raise ValueError("cases.check_calls needs at least 1 random case")
        if not self.outputs:
            raise ValueError("a problem needs at least one output")
        if not self.cases.edge and self.cases.random == 0:
            raise ValueError("a problem needs at least one case")
        return self


# --------------------------------------------------------------------------------------------
# Cases and what crosses the process boundary
# --------------------------------------------------------------------------------------------


class ScalarArg(Frozen):
    """A number argument."""

    kind: Literal["int", "float"] = Field(description="Python type the function receives.")
    value: float = Field(description="The value (an integer for kind 'int').")


class ArrayArg(Frozen):
    """A 1-D array argument."""

    kind: Literal["jax", "numpy", "list"] = Field(description="What the function receives.")
    dtype: Literal["float32", "float64"] = Field(description="Element type.")
    values: tuple[float, ...] = Field(description="The elements, exactly representable.")


Arg = Annotated[ScalarArg | ArrayArg, Field(discriminator="kind")]


FULL_ARRAY_LIMIT = 32  # elements of an array argument shown in full


class Case(Frozen):
    """One concrete call of the function: its arguments, never its expected output."""

    index: int = Field(ge=0, description="Position in the case set, from 0.")
    name: str = Field(description="What the case is, e.g. 'random 3' or an edge case's name.")
    args: tuple[Arg, ...] = Field(description="Positional arguments, in the spec's order.")

    def summary(self, names: tuple[str, ...]) -> str:
        """The arguments as a student can retype them: scalars and arrays of up to
        FULL_ARRAY_LIMIT elements in full (each element in the shortest form that gives back
        the same value in its dtype), longer arrays by length and range."""
        parts = []
        for name, arg in zip(names, self.args, strict=True):
            if isinstance(arg, ScalarArg):
                shown = int(arg.value) if arg.value.is_integer() else arg.value
                parts.append(f"{name}={shown}")
            else:
                if len(arg.values) <= FULL_ARRAY_LIMIT:
                    import numpy as np  # here: models is imported by the worker before jax

                    items = ", ".join(str(v) for v in np.asarray(arg.values, dtype=arg.dtype))
                    parts.append(f"{name}=[{items}] ({arg.dtype})")
                elif arg.values:
                    low = min(arg.values)
                    high = max(arg.values)
                    parts.append(f"len({name})={len(arg.values)} in [{low:.3g}, {high:.3g}]")
                else:
                    parts.append(f"len({name})=0")
        return ", ".join(parts)


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


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


class Status(StrEnum):
    """How far grading got: 'graded' means the function was called on the cases."""

    GRADED = "graded"
    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    ENCODING_ERROR = "encoding_error"
    SYNTAX_ERROR = "syntax_error"
    INVALID_NOTEBOOK = "invalid_notebook"
    IMPORT_ERROR = "import_error"
    MISSING_FUNCTION = "missing_function"
    BAD_SIGNATURE = "bad_signature"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"


class CaseReason(StrEnum):
    """Why a case passed or failed."""

    PASSED = "passed"
    WRONG_OUTPUT = "wrong_output"
    INVALID_OUTPUT = "invalid_output"
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"
    NOT_RUN = "not_run"


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
    """How a notebook submission was turned into the code that ran (grader/notebook.py)."""

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
