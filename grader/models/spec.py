"""Problem specs (problems/*.toml) and the cases drawn from them: what staff write.

Trusted side and worker both import this module (the worker for `Case`), so it imports only
pydantic; numpy is imported where a case is summarised.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from grader.models.base import Frozen


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


# How an output is compared; each kind has one entry in grader/compare.py's COMPARATORS.
OutputKind = Literal["exact", "close"]


class Output(Frozen):
    """One element of the function's return value and how it is compared."""

    name: str = Field(description="Name of the output, used in every message about it.")
    compare: OutputKind = Field(
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
# Cases: one concrete call of the function
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
