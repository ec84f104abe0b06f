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
    """Edge cases first, then random ones, then (with `check_calls`) the three cases that
    check calls are independent; all deterministic from the seed.

    `practice` draws from a pack seed (PRACTICE_SEEDS) instead of a grading seed.
    """
    if practice and seed not in PRACTICE_SEEDS:
        raise ValueError(f"a practice seed must be in [2**63, 2**64), got {seed}")
    if not practice and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"grading seed must be between 0 and {MAX_SEED}, got {seed}")
    groups = shape_groups(spec, seed)
    rows = _random_rows(spec, seed, groups)
    cases = [
        _draw_case(spec, seed, index, edge.name, dict(edge.values), _group(groups, index))
        for index, edge in enumerate(spec.cases.edge)
    ]
    for number, (group, pins) in enumerate(rows):
        index = len(cases)
        cases.append(_draw_case(spec, seed, index, f"random {number + 1}", dict(pins), group))
    randoms = slice(len(spec.cases.edge), len(cases))
    if spec.cases.stratify:
        cases[randoms] = _stratify_values(spec, seed, cases[randoms])
    repeated = spec.cases.repeat_seed
    if repeated is not None and spec.cases.random >= 2:
        # The last random case takes the first one's value of `repeated` (its other inputs are
        # its own): a solution that caches its answer by that value fails one of the two.
        first, last = len(spec.cases.edge), len(cases) - 1
        position = [p.name for p in spec.parameters].index(repeated)
        args = list(cases[last].args)
        args[position] = cases[first].args[position]
        cases[last] = cases[last].model_copy(update={"args": tuple(args)})
    if spec.cases.check_calls:
        cases.extend(_call_checks(spec, seed, cases[randoms], len(cases)))
    return tuple(cases)


def _group(groups: list[dict[str, int]], index: int) -> dict[str, int]:
    return groups[index % len(groups)] if groups else {}


def shape_groups(spec: ProblemSpec, seed: int) -> list[dict[str, int]]:
    """The grading's shape groups: a value for every shape parameter (a vector's length).

    With `stratify`, each shape parameter's values across the groups fall one in each third of
    its range and cover both parities (given three groups or more); with at least 2**k groups
    for k shape parameters, the first 2**k groups take every combination of their parities
    (len(x) odd with hidden odd, odd with even, ...).
    """
    if spec.cases.shape_groups is None:
        return []
    count = spec.cases.shape_groups
    rng = np.random.default_rng([seed, _SHAPE_STREAM])
    ranges = dict(_shape_ranges(spec))
    if not spec.cases.stratify:
        return [
            {name: int(rng.integers(low, high + 1)) for name, (low, high) in ranges.items()}
            for _ in range(count)
        ]
    groups: list[dict[str, int]] = [{} for _ in range(count)]
    crossed = count >= 2 ** len(ranges)
    for bit, (name, (low, high)) in enumerate(ranges.items()):
        if not crossed:
            values = stratified(rng, low, high, count)
        else:
            flip = int(rng.integers(0, 2))
            parities = [((g >> bit) & 1) ^ flip for g in range(2 ** len(ranges))]
            parities += [int(rng.integers(0, 2)) for _ in range(count - len(parities))]
            values = _in_thirds(rng, low, high, parities)
        for group, value in zip(groups, values, strict=True):
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


def _with_parity(rng: np.random.Generator, start: int, end: int, parity: int) -> int:
    """A value in [start, end] of the given parity (any value if the part has one value)."""
    value = int(rng.integers(start, end + 1))
    if value % 2 != parity:
        value = value + 1 if value < end else value - 1
    return max(start, min(end, value))


def _in_thirds(rng: np.random.Generator, low: int, high: int, parities: list[int]) -> list[int]:
    """One value per parity given: the first three one in each third (in random order), the
    rest in a random third."""
    parts = thirds(low, high)
    order = [int(i) for i in rng.permutation(len(parts))]
    order += [int(rng.integers(0, len(parts))) for _ in range(len(parities) - len(order))]
    return [
        _with_parity(rng, *parts[part], parity)
        for part, parity in zip(order, parities, strict=False)
    ]


# A covering array over two-valued factors: every pair of factors takes all four combinations
# of values in some random case. The factors are the shape groups' parities (one per shape
# parameter) and, for each int parameter that sets no shape, its parity and (when its range
# holds both) its sign.
Column = tuple[int, ...]


def _covers(first: Column, second: Column) -> int:
    return len(set(zip(first, second, strict=True)))


def _cover(rng: np.random.Generator, fixed: list[Column], wanted: int, rows: int) -> list[Column]:
    """`wanted` more columns of `rows` zeros and ones, each covering all four pairs of values
    with every column before it if possible (a search, random among the solutions), else as
    many pairs as it can."""
    if rows <= 10:
        candidates = [tuple((n >> r) & 1 for r in range(rows)) for n in range(2**rows)]
    else:
        candidates = [tuple(int(v) for v in rng.integers(0, 2, rows)) for _ in range(4096)]
    order = [candidates[int(i)] for i in rng.permutation(len(candidates))]

    def search(chosen: list[Column], left: int, budget: list[int]) -> list[Column] | None:
        if left == 0:
            return chosen
        for column in order:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if all(_covers(column, other) == 4 for other in chosen):
                found = search([*chosen, column], left - 1, budget)
                if found is not None:
                    return found
        return None

    found = search(list(fixed), wanted, [200_000])
    if found is not None:
        return found[len(fixed) :]
    chosen = list(fixed)
    for _ in range(wanted):  # too few cases for a full covering array: the most pairs
        chosen.append(max(order, key=lambda c: sum(_covers(c, other) for other in chosen)))
    return chosen[len(fixed) :]


def _random_rows(
    spec: ProblemSpec, seed: int, groups: list[dict[str, int]]
) -> list[tuple[dict[str, int], dict[str, object]]]:
    """Each random case's shape group and its pinned int values.

    Without `stratify`, case i takes group i mod N and its ints are drawn with the case.
    With it, the groups and the ints' sign and parity form a covering array (see `_cover`),
    and each int also falls once in every third of its range (of each sign).
    """
    count = spec.cases.random
    edges = len(spec.cases.edge)
    if not spec.cases.stratify:
        return [(_group(groups, edges + number), {}) for number in range(count)]
    rng = np.random.default_rng([seed, _SHAPE_STREAM + 1])
    chosen: list[int] = []
    if groups:
        chosen = [int(g) for g in rng.permutation(len(groups))][:count]
        chosen += [int(rng.integers(0, len(groups))) for _ in range(count - len(chosen))]
        chosen = [chosen[int(i)] for i in rng.permutation(count)]
    fixed = (
        [tuple(groups[g][name] % 2 for g in chosen) for name, _ in _shape_ranges(spec)]
        if groups
        else []
    )
    ints = [p for p in spec.parameters if isinstance(p, IntParameter) and not p.shape]
    signed = [p.low < 0 <= p.high for p in ints]
    columns = iter(_cover(rng, fixed, len(ints) + sum(signed), count))
    pins: list[dict[str, object]] = [{} for _ in range(count)]
    for param, has_sign in zip(ints, signed, strict=True):
        parity = next(columns)
        if has_sign:
            negative = next(columns)
            values = _signed_values(rng, param.low, param.high, negative, parity)
        else:
            values = _in_thirds(rng, param.low, param.high, list(parity))
            values = [values[int(i)] for i in rng.permutation(count)]
            values = [
                _with_parity(rng, *_part_of(param.low, param.high, v), p)
                for v, p in zip(values, parity, strict=True)
            ]
        for row, value in zip(pins, values, strict=True):
            row[param.name] = value
    return [
        (groups[g] if groups else {}, row)
        for g, row in zip(chosen or [0] * count, pins, strict=True)
    ]


def _part_of(low: int, high: int, value: int) -> tuple[int, int]:
    return next(part for part in thirds(low, high) if part[0] <= value <= part[1])


def _signed_values(
    rng: np.random.Generator, low: int, high: int, negative: Column, parity: Column
) -> list[int]:
    """Values of the given signs and parities; each part of a third on one side of zero gets
    one of the values of that sign (as many as there are), the others fall anywhere on it."""
    parts = {
        sign: [
            (max(start, low if sign else 0), min(end, -1 if sign else high))
            for start, end in thirds(low, high)
            if (start < 0 if sign else end >= 0)
        ]
        for sign in (1, 0)
    }
    seen = {1: 0, 0: 0}
    values = []
    for sign, wanted in zip(negative, parity, strict=True):
        mine = parts[sign]
        if seen[sign] < len(mine):
            start, end = mine[seen[sign]]
        else:
            start, end = (low, -1) if sign else (0, high)
        seen[sign] += 1
        values.append(_with_parity(rng, start, end, wanted))
    return values


def _stratify_values(spec: ProblemSpec, seed: int, cases: list[Case]) -> list[Case]:
    """Give some elements of the random cases' vectors a magnitude in each decade the spec
    draws (from its smallest magnitude to its largest, edge cases included), of each sign, and
    one element zero: every grading has them, in cases of every shape group."""
    rng = np.random.default_rng([seed, _SHAPE_STREAM + 2])
    for position, param in enumerate(spec.parameters):
        if not isinstance(param, VectorParameter):
            continue
        strata: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]
        for low, high in decades(spec, param):
            strata += [(1.0, low, high), (-1.0, low, high)]
        slots = [(c, e) for c, case in enumerate(cases) for e in range(_length(case, position))]
        picked = rng.choice(len(slots), size=min(len(strata), len(slots)), replace=False)
        order = [int(i) for i in rng.permutation(len(strata))]
        values = [list(_vector(case, position)) for case in cases]
        for slot, stratum in zip(picked, order, strict=False):
            sign, low, high = strata[stratum]
            magnitude = 0.0
            if sign:
                exponent = float(rng.uniform(math.log10(low), math.log10(high)))
                magnitude = min(high, max(low, math.pow(10.0, exponent)))
            c, e = slots[int(slot)]
            # One element at a time (see _draw_vector), rounded to the element type.
            values[c][e] = float(np.asarray([sign * magnitude]).astype(param.dtype)[0])
        cases = [_with_arg(case, position, tuple(v)) for case, v in zip(cases, values, strict=True)]
    return cases


def decades(spec: ProblemSpec, param: VectorParameter) -> list[tuple[float, float]]:
    """The magnitudes a vector takes in the spec, from the smallest its draws allow to the
    largest (edge cases included), cut at powers of ten."""
    ranges = [param.draw.magnitude]
    for edge in spec.cases.edge:
        pin = edge.values.get(param.name)
        if isinstance(pin, dict) and "magnitude" in pin:
            draw = VectorDraw.model_validate({**param.draw.model_dump(), **pin})
            ranges.append(draw.magnitude)
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    found = []
    power = math.floor(math.log10(low))
    while math.pow(10.0, power) <= high:
        start, end = max(low, math.pow(10.0, power)), min(high, math.pow(10.0, power + 1))
        if start < end:
            found.append((start, end))
        power += 1
    return found


def _length(case: Case, position: int) -> int:
    return len(_vector(case, position))


def _vector(case: Case, position: int) -> tuple[float, ...]:
    arg = case.args[position]
    return arg.values if isinstance(arg, ArrayArg) else ()


def _with_arg(case: Case, position: int, values: tuple[float, ...]) -> Case:
    arg = case.args[position]
    assert isinstance(arg, ArrayArg)
    args = list(case.args)
    args[position] = arg.model_copy(update={"values": values})
    return case.model_copy(update={"args": tuple(args)})


def _call_checks(spec: ProblemSpec, seed: int, randoms: list[Case], first: int) -> list[Case]:
    """Three cases after the random ones, each made from an earlier (hidden) random case: its
    sizes and ints with another vector (a result cached by seed and sizes fails it), its
    vectors and sizes with other ints that set no shape (a result cached by shape or by x
    fails it), and an exact repeat (a solution giving another result for the same call fails
    one of them)."""
    rng = np.random.default_rng([seed, _SHAPE_STREAM + 3])
    # From hidden cases when there are some: a visible one's copy would show its values.
    shown = spec.cases.visible or ()
    hidden = [case for case in randoms if case.name not in shown]
    randoms = hidden or randoms
    picks = [int(i) for i in rng.permutation(len(randoms))][:3]
    picks += [int(rng.integers(0, len(randoms))) for _ in range(3 - len(picks))]
    vectors = [p.name for p in spec.parameters if isinstance(p, VectorParameter)]
    ints = [p.name for p in spec.parameters if isinstance(p, IntParameter) and not p.shape]
    checks = []
    for number, (pick, redraw) in enumerate(zip(picks, (vectors, ints, []), strict=True)):
        source = randoms[pick]
        index = first + number
        case_rng = np.random.default_rng([seed, index])
        args = list(source.args)
        for position, param in enumerate(spec.parameters):
            arg = args[position]
            if param.name not in redraw:
                continue
            if isinstance(param, VectorParameter) and isinstance(arg, ArrayArg):
                length = len(arg.values)
                draw = param.draw.model_copy(update={"length": (length, length)})
                values = arg.values
                while values == arg.values:
                    values = _draw_vector(case_rng, draw, param.dtype)
                args[position] = arg.model_copy(update={"values": values})
            elif isinstance(param, IntParameter) and isinstance(arg, ScalarArg):
                value = arg.value
                while value == arg.value:
                    value = int(case_rng.integers(param.low, param.high + 1))
                args[position] = arg.model_copy(update={"value": float(value)})
        what = " and ".join(redraw)
        name = f"{source.name} with another {what}" if redraw else f"{source.name} again"
        checks.append(Case(index=index, name=name, args=tuple(args)))
    return checks


def _draw_case(
    spec: ProblemSpec,
    seed: int,
    index: int,
    name: str,
    pinned: dict[str, object],
    group: dict[str, int],
) -> Case:
    rng = np.random.default_rng([seed, index])
    for key, size in group.items():
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
