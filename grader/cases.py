"""Turn a problem and a grading seed into concrete cases. Never expected outputs.

Each case draws from its own random stream, derived from (grading seed, case index), so the
same seed always gives the same cases and adding random cases leaves earlier ones unchanged.
When the spec asks for shape groups, the parameters that set array shapes (layer widths, a
vector's length) come from a few groups drawn per grading: a new shape costs JAX about a second
of compilation, a repeated one almost nothing. When it asks to stratify, those groups and the
random cases' other int parameters are drawn so that every grading covers each range (each
third, both parities): `grader audit` measures what that guarantees.
"""

from __future__ import annotations

import itertools
import math
import secrets

import numpy as np

from grader.models import (
    ArrayArg,
    Case,
    IntParameter,
    LengthOfParameter,
    ProblemSpec,
    ScalarArg,
    VectorDraw,
    VectorParameter,
)

MAX_SEED = 2**63 - 1
# Seeds of practice packs (grader/pack.py): above every grading seed, so that no grading ever
# draws from a practice case's random streams. Every stream is keyed by (seed, stream number);
# numpy turns that key into 32-bit words, and a practice seed's second word is >= 2**31 while
# a grading seed's (or, below 2**32, the stream number's) never is.
PRACTICE_SEEDS = range(2**63, 2**64)
_SHAPE_STREAM = 2**32  # a stream index no case uses


def random_seed() -> int:
    """A fresh grading seed, recorded in the report so the grading can be repeated."""
    return secrets.randbelow(2**32)


def make_cases(spec: ProblemSpec, seed: int, *, practice: bool = False) -> tuple[Case, ...]:
    """Edge cases first, then random ones, all deterministic from the seed.

    `practice` draws from a pack seed (PRACTICE_SEEDS) instead of a grading seed.
    """
    if practice and seed not in PRACTICE_SEEDS:
        raise ValueError(f"a practice seed must be in [2**63, 2**64), got {seed}")
    if not practice and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"grading seed must be between 0 and {MAX_SEED}, got {seed}")
    groups = shape_groups(spec, seed)
    strata = _random_case_strata(spec, seed)
    cases = [
        _draw_case(spec, seed, index, edge.name, dict(edge.values), groups)
        for index, edge in enumerate(spec.cases.edge)
    ]
    for number in range(spec.cases.random):
        index = len(cases)
        pins: dict[str, object] = {name: values[number] for name, values in strata.items()}
        cases.append(_draw_case(spec, seed, index, f"random {number + 1}", pins, groups))
    repeated = spec.cases.repeat_seed
    if repeated is not None and spec.cases.random >= 2:
        # The last random case takes the first one's value of `repeated` (its other inputs are
        # its own): a solution that caches its answer by that value fails one of the two.
        first, last = len(spec.cases.edge), len(cases) - 1
        position = [p.name for p in spec.parameters].index(repeated)
        args = list(cases[last].args)
        args[position] = cases[first].args[position]
        cases[last] = cases[last].model_copy(update={"args": tuple(args)})
    return tuple(cases)


def shape_groups(spec: ProblemSpec, seed: int) -> list[dict[str, int]]:
    """The grading's shape groups: a value for every shape parameter (a vector's length).

    With `stratify`, each shape parameter's values across the groups fall one in each third of
    its range and cover both parities (given three groups or more).
    """
    if spec.cases.shape_groups is None:
        return []
    count = spec.cases.shape_groups
    rng = np.random.default_rng([seed, _SHAPE_STREAM])
    ranges = {name: span for name, span in _shape_ranges(spec)}
    if not spec.cases.stratify:
        return [
            {name: int(rng.integers(low, high + 1)) for name, (low, high) in ranges.items()}
            for _ in range(count)
        ]
    groups: list[dict[str, int]] = [{} for _ in range(count)]
    for name, (low, high) in ranges.items():
        for group, value in zip(groups, stratified(rng, low, high, count), strict=True):
            group[name] = value
    return groups


def _shape_ranges(spec: ProblemSpec) -> list[tuple[str, tuple[int, int]]]:
    ranges = []
    for param in spec.parameters:
        if isinstance(param, IntParameter) and param.shape:
            ranges.append((param.name, (param.low, param.high)))
        elif isinstance(param, VectorParameter) and param.shape:
            ranges.append((param.name, param.draw.length))
    return ranges


def thirds(low: int, high: int) -> list[tuple[int, int]]:
    """The range [low, high] cut into three contiguous parts (fewer if it is that small)."""
    span = high - low + 1
    cuts = sorted({low + span * k // 3 for k in range(3)} | {high + 1})
    return [(start, end - 1) for start, end in itertools.pairwise(cuts)]


def stratified(rng: np.random.Generator, low: int, high: int, count: int) -> list[int]:
    """`count` values in [low, high]: the first three one in each third, in random order, the
    first two of opposite parities; the rest uniform over the whole range."""
    parts = thirds(low, high)
    order = [int(i) for i in rng.permutation(len(parts))]
    first_parity = int(rng.integers(0, 2))
    values = []
    for slot in range(count):
        if slot >= len(order):
            values.append(int(rng.integers(low, high + 1)))
            continue
        start, end = parts[order[slot]]
        value = int(rng.integers(start, end + 1))
        wanted = first_parity if slot == 0 else 1 - first_parity if slot == 1 else value % 2
        if value % 2 != wanted:
            value = value + 1 if value < end else value - 1
        values.append(max(start, min(end, value)))
    return values


def _random_case_strata(spec: ProblemSpec, seed: int) -> dict[str, list[int]]:
    """With `stratify`, the values of int parameters that set no shape, per random case."""
    if not spec.cases.stratify:
        return {}
    strata = {}
    for position, param in enumerate(spec.parameters):
        if isinstance(param, IntParameter) and not param.shape:
            rng = np.random.default_rng([seed, _SHAPE_STREAM + 1 + position])
            strata[param.name] = stratified(rng, param.low, param.high, spec.cases.random)
    return strata


def _draw_case(
    spec: ProblemSpec,
    seed: int,
    index: int,
    name: str,
    pinned: dict[str, object],
    groups: list[dict[str, int]],
) -> Case:
    rng = np.random.default_rng([seed, index])
    for key, size in (groups[index % len(groups)] if groups else {}).items():
        pin = pinned.get(key)
        if pin is None:
            pinned[key] = size if _is_int(spec, key) else {"length": (size, size)}
        elif isinstance(pin, dict) and "length" not in pin:
            pinned[key] = {**pin, "length": (size, size)}
    drawn: dict[str, ScalarArg | ArrayArg] = {}
    for param in spec.parameters:
        pin = pinned.get(param.name)
        if isinstance(param, IntParameter):
            value = pin if isinstance(pin, int) else int(rng.integers(param.low, param.high + 1))
            drawn[param.name] = ScalarArg(kind=param.pass_as, value=value)
        elif isinstance(param, VectorParameter):
            draw = param.draw
            if isinstance(pin, dict):
                draw = VectorDraw.model_validate({**draw.model_dump(), **pin})
            values = _draw_vector(rng, draw, param.dtype)
            drawn[param.name] = ArrayArg(kind=param.pass_as, dtype=param.dtype, values=values)
    for param in spec.parameters:
        if isinstance(param, LengthOfParameter):
            source = drawn[param.of]
            assert isinstance(source, ArrayArg)
            drawn[param.name] = ScalarArg(kind=param.pass_as, value=len(source.values))
    args = tuple(drawn[param.name] for param in spec.parameters)
    return Case(index=index, name=name, args=args)


def _is_int(spec: ProblemSpec, name: str) -> bool:
    return any(isinstance(p, IntParameter) and p.name == name for p in spec.parameters)


def _draw_vector(rng: np.random.Generator, draw: VectorDraw, dtype: str) -> tuple[float, ...]:
    """Elements of mixed sign, magnitudes log-uniform in the draw's range, exact in dtype."""
    length = int(rng.integers(draw.length[0], draw.length[1] + 1))
    if draw.fill is not None:
        values = np.full(length, draw.fill)
    else:
        low, high = math.log10(draw.magnitude[0]), math.log10(draw.magnitude[1])
        # math.pow, one element at a time: numpy's vectorised power takes a SIMD path that
        # differs by an ulp between CPUs (AVX-512 or not), and the same seed must draw the
        # same cases on every machine (goldens, regrades, a staff re-run).
        exponents = rng.uniform(low, high, size=length)
        magnitudes = np.array([math.pow(10.0, float(e)) for e in exponents])
        signs = rng.choice([-1.0, 1.0], size=length)
        values = signs * magnitudes
    # Round to the element type here, so the JSON sent to workers holds exact values.
    return tuple(float(v) for v in values.astype(dtype))
