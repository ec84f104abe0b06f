"""`grader audit`: how often a wrong solution could get full marks, over many grading seeds.

Two measures, both per grading seed (a whole class is graded on one seed, so an unlucky seed
lets every student with the same bug pass):

- the case design alone (no JAX, no process): for each int parameter and each vector's
  length, the fraction of seeds whose cases never take a value in a part of its range (one
  parity, a third, below or above a cut between thirds, an extreme, a sign). A solution wrong
  only on that part gets full marks on exactly those seeds.
- the catalogued mistakes: the reference's process computes each mistake's outputs on every
  case (as for hints); a mistake escapes a seed when it passes every case of it.

Runs on the trusted side only: nothing here executes a submission.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from grader import __version__
from grader.cache import cache_root, digest, library_versions
from grader.cases import decades, make_cases, thirds
from grader.compare import check_outputs
from grader.figure import Figure
from grader.models import (
    ArrayArg,
    Case,
    CaseOutcome,
    IntParameter,
    ProblemSpec,
    ScalarArg,
    VectorParameter,
)
from grader.problems import Problem
from grader.run import Runner
from grader.storage import write_atomic


@dataclass(frozen=True)
class Region:
    """A part of one parameter's range: a solution may be wrong there only."""

    parameter: str
    description: str
    contains: Callable[[int], bool]


def regions(spec: ProblemSpec) -> list[Region]:
    """Parts of every int parameter's range, and of every vector's length range."""
    found: list[Region] = []
    for name, low, high in _quantities(spec):
        found.extend(_regions_of(name, low, high))
    return found


def _quantities(spec: ProblemSpec) -> list[tuple[str, int, int]]:
    found = []
    for param in spec.parameters:
        if isinstance(param, IntParameter):
            found.append((param.name, param.low, param.high))
        elif isinstance(param, VectorParameter):
            found.append((f"len({param.name})", *param.draw.length))
    return found


def _regions_of(name: str, low: int, high: int) -> list[Region]:
    if low == high:
        return []
    out = [
        Region(name, f"wrong only when {name} is even", lambda v: v % 2 == 0),
        Region(name, f"wrong only when {name} is odd", lambda v: v % 2 == 1),
    ]
    seen: set[tuple[int, int]] = set()

    def add(start: int, end: int, what: str) -> None:
        if (start, end) in seen or start > end or (start, end) == (low, high):
            return
        seen.add((start, end))
        out.append(Region(name, what, lambda v: start <= v <= end))

    parts = thirds(low, high)
    labels = ["low", "middle", "high"] if len(parts) == 3 else [str(i) for i in range(len(parts))]
    for (start, end), label in zip(parts, labels, strict=True):
        add(start, end, f"wrong only when {name} is in the {label} third [{start}, {end}]")
    for (_, end), (start, _) in itertools.pairwise(parts):
        add(low, end, f"wrong only when {name} < {start}")
        add(start, high, f"wrong only when {name} >= {start}")
    add(low, low, f"wrong only when {name} = {low} (the smallest)")
    add(high, high, f"wrong only when {name} = {high} (the largest)")
    if low < 0 <= high:
        add(low, -1, f"wrong only when {name} is negative")
        add(0, high, f"wrong only when {name} >= 0")
    return out


def _halves(name: str, low: int, high: int) -> list[tuple[str, str, Callable[[int], bool]]]:
    """A parameter's two-way partitions, for pairs: (partition, condition, test)."""
    if low == high:
        return []
    found: list[tuple[str, str, Callable[[int], bool]]] = [
        ("parity", f"{name} is even", lambda v: v % 2 == 0),
        ("parity", f"{name} is odd", lambda v: v % 2 == 1),
    ]
    if low < 0 <= high:
        found.append(("sign", f"{name} is negative", lambda v: v < 0))
        found.append(("sign", f"{name} >= 0", lambda v: v >= 0))
    return found


def _thirds_of(name: str, low: int, high: int) -> list[tuple[str, str, Callable[[int], bool]]]:
    parts = thirds(low, high)
    if len(parts) < 3:
        return []
    return [
        ("third", f"{name} in the {label} third", _between(start, end))
        for (start, end), label in zip(parts, ["low", "middle", "high"], strict=True)
    ]


def _between(start: int, end: int) -> Callable[[int], bool]:
    return lambda v: start <= v <= end


@dataclass(frozen=True)
class PairRegion:
    """Two parameters' conditions together: a solution may be wrong only where both hold."""

    subject: str
    description: str
    first: tuple[str, Callable[[int], bool]]
    second: tuple[str, Callable[[int], bool]]
    held: bool


def pair_regions(spec: ProblemSpec) -> list[PairRegion]:
    """Every combination of two parameters' parities and signs (held to max_escape), and of
    their thirds (measured, not held: nine shapes per grading would cost ~9 s)."""
    found = []
    quantities = _quantities(spec)
    for (a, a_low, a_high), (b, b_low, b_high) in itertools.combinations(quantities, 2):
        for held, parts in ((True, _halves), (False, _thirds_of)):
            for (kind_a, says_a, test_a), (kind_b, says_b, test_b) in itertools.product(
                parts(a, a_low, a_high), parts(b, b_low, b_high)
            ):
                found.append(
                    PairRegion(
                        f"{a} {kind_a} x {b} {kind_b}",
                        f"wrong only when {says_a} and {says_b}",
                        (a, test_a),
                        (b, test_b),
                        held,
                    )
                )
    return found


@dataclass(frozen=True)
class ValueRegion:
    """Values an array argument's elements may take: a solution may be wrong there only."""

    parameter: str
    description: str
    contains: Callable[[Case], bool]


def value_regions(spec: ProblemSpec) -> list[ValueRegion]:
    """For each vector, the values it takes: each decade of magnitude of each sign, and zero.
    A solution wrong only on such an element (it clips x at -100, or drops tiny values) is
    caught only by a case holding one."""
    found = []
    for position, param in enumerate(spec.parameters):
        if not isinstance(param, VectorParameter):
            continue
        name = param.name
        found.append(
            ValueRegion(
                name, f"wrong only when an element of {name} is 0", _has(position, 0.0, 0.0)
            )
        )
        for low, high in decades(spec, param):
            for sign, word in ((-1.0, "negative"), (1.0, "positive")):
                found.append(
                    ValueRegion(
                        name,
                        f"wrong only when an element of {name} is {word} with magnitude in "
                        f"[{low:g}, {high:g}]",
                        _has(position, sign * low, sign * high),
                    )
                )
    return found


def _has(position: int, first: float, second: float) -> Callable[[Case], bool]:
    low, high = min(first, second), max(first, second)

    def test(case: Case) -> bool:
        arg = case.args[position]
        return isinstance(arg, ArrayArg) and any(low <= v <= high for v in arg.values)

    return test


def case_values(spec: ProblemSpec, case: Case) -> dict[str, int]:
    """Each parameter's value in a case, as the regions see it (a vector by its length)."""
    values = {}
    for param, arg in zip(spec.parameters, case.args, strict=True):
        if isinstance(param, IntParameter) and isinstance(arg, ScalarArg):
            values[param.name] = int(arg.value)
        elif isinstance(param, VectorParameter) and isinstance(arg, ArrayArg):
            values[f"len({param.name})"] = len(arg.values)
    return values


# What a solution keeping state between calls could key its cache by, and the pair of cases
# that catches it: (description, test on an earlier and a later case's arguments).
def _call_checks(spec: ProblemSpec) -> list[tuple[str, Callable[[Case, Case], bool]]]:
    vectors = [i for i, p in enumerate(spec.parameters) if isinstance(p, VectorParameter)]
    others = [i for i, p in enumerate(spec.parameters) if not isinstance(p, VectorParameter)]

    def sizes(case: Case) -> tuple[object, ...]:
        return tuple(
            len(arg.values) if isinstance(arg, ArrayArg) else arg.value
            for i, arg in enumerate(case.args)
            if i in vectors or _sets_shape(spec, i)
        )

    def ints(case: Case) -> tuple[object, ...]:
        return tuple(case.args[i] for i in others)

    def arrays(case: Case) -> tuple[object, ...]:
        return tuple(case.args[i] for i in vectors)

    return [
        (
            "a result cached by the int arguments and sizes (ignoring the arrays' values) "
            "gets full marks",
            lambda a, b: ints(a) == ints(b) and arrays(a) != arrays(b),
        ),
        (
            "a result cached by the arrays and sizes (ignoring the other ints) gets full marks",
            lambda a, b: arrays(a) == arrays(b) and sizes(a) == sizes(b) and ints(a) != ints(b),
        ),
        (
            "a function giving another result for the same call is not told apart from a "
            "wrong one (no identical calls)",
            lambda a, b: a.args == b.args,
        ),
    ]


def _sets_shape(spec: ProblemSpec, position: int) -> bool:
    param = spec.parameters[position]
    return isinstance(param, IntParameter) and param.shape


def design_figures(spec: ProblemSpec, seeds: Iterable[int]) -> list[Figure]:
    """For each region, on how many seeds no case falls in it (computed from the cases): one
    parameter's ranges, two parameters' conditions together, the values of arrays, and the
    pairs of calls that tell state between calls; and the expected share of gradings a
    solution wrong on a random tenth of its calls passes."""
    found = regions(spec)
    pairs = pair_regions(spec)
    values = value_regions(spec)
    calls = _call_checks(spec)
    escapes = [0] * len(found)
    pair_escapes = [0] * len(pairs)
    value_escapes = [0] * len(values)
    call_escapes = [0] * len(calls)
    count = 0
    cases_per_grading = 0
    for seed in seeds:
        count += 1
        cases = make_cases(spec, seed)
        cases_per_grading = len(cases)
        facts = [case_values(spec, case) for case in cases]
        for position, region in enumerate(found):
            if not any(region.contains(v[region.parameter]) for v in facts):
                escapes[position] += 1
        for position, pair in enumerate(pairs):
            (a, test_a), (b, test_b) = pair.first, pair.second
            if not any(test_a(v[a]) and test_b(v[b]) for v in facts):
                pair_escapes[position] += 1
        for position, value_region in enumerate(values):
            if not any(value_region.contains(case) for case in cases):
                value_escapes[position] += 1
        for position, (_, test) in enumerate(calls):
            if not any(test(a, b) for a, b in itertools.combinations(cases, 2)):
                call_escapes[position] += 1
    figures = [
        Figure("range", region.parameter, region.description, escaped, count)
        for region, escaped in zip(found, escapes, strict=True)
    ]
    figures += [
        Figure("pair", pair.subject, pair.description, escaped, count, pair.held)
        for pair, escaped in zip(pairs, pair_escapes, strict=True)
    ]
    figures += [
        Figure("values", value_region.parameter, value_region.description, escaped, count)
        for value_region, escaped in zip(values, value_escapes, strict=True)
    ]
    figures += [
        Figure("calls", "calls", description, escaped, count)
        for (description, _), escaped in zip(calls, call_escapes, strict=True)
    ]
    # Each call is wrong with probability 0.1, independently: all N pass with 0.9**N (the
    # expected count over the seeds, as no seed can change it).
    figures.append(
        Figure(
            "random",
            "calls",
            f"a solution wrong on a random tenth of its {cases_per_grading} calls gets full "
            f"marks (0.9**{cases_per_grading}; not held: only more cases lower it)",
            round(0.9**cases_per_grading * count),
            count,
            held=False,
        )
    )
    return figures


def mistake_figures(
    problem: Problem,
    seeds: Sequence[int],
    *,
    runner: Runner,
    chunk: int = 40,
    progress: Callable[[str], None] | None = None,
) -> list[Figure]:
    """For each catalogued mistake, on how many seeds its outputs pass every case.

    A mistake is caught on a seed as soon as one case tells it from the reference, so the
    cases are run one position at a time (random cases first, which have no pinned value a
    mistake could hide behind), each pass only for the seeds where some mistake is not caught
    yet: most seeds need one case, not all of them. The reference's outcomes are cached per
    case on disk, so a second audit costs no JAX at all.
    """
    spec = problem.spec
    per_seed = {seed: make_cases(spec, seed) for seed in seeds}
    edges = len(spec.cases.edge)
    open_mistakes = {seed: {m.function for m in spec.mistakes} for seed in seeds}
    count = len(next(iter(per_seed.values()))) if per_seed else 0
    order = [*range(edges, count), *range(edges)]
    for step, position in enumerate(order):
        pending = [seed for seed in seeds if open_mistakes[seed]]
        if not pending:
            break
        if progress:
            progress(f"case {step + 1} of {count} for {len(pending)} seeds")
        cases = [per_seed[seed][position] for seed in pending]
        outcomes = case_outcomes(problem, cases, runner=runner, chunk=chunk)
        for seed, outcome in zip(pending, outcomes, strict=True):
            open_mistakes[seed] = {
                function
                for function in open_mistakes[seed]
                if _variant_passes(spec, function, outcome)
            }
    return [
        Figure(
            "mistake",
            mistake.id,
            f"mistake {mistake.id} gets full marks",
            sum(mistake.function in open_mistakes[seed] for seed in seeds),
            len(seeds),
        )
        for mistake in spec.mistakes
    ]


def _variant_passes(spec: ProblemSpec, function: str, reference: CaseOutcome) -> bool:
    variant = (reference.variants or {}).get(function)
    if variant is None or reference.values is None:
        return False
    checks = check_outputs(spec.outputs, variant, reference.values, reference.scales)
    return all(check.passed for check in checks)


def case_outcomes(
    problem: Problem, cases: Sequence[Case], *, runner: Runner, chunk: int = 40
) -> list[CaseOutcome]:
    """The reference's outcome (with the mistakes' outputs) on each case: from the on-disk
    cache, the missing ones computed `chunk` at a time in one trusted process each."""
    from grader.grading import run_reference

    root = cache_root() / "audit"
    spec = problem.spec
    # What the reference's outcome depends on (not the hints' wording, nor the case design).
    sources = (
        json.dumps(
            [
                spec.function,
                spec.reference.scale_function,
                [m.function for m in spec.mistakes],
                [p.model_dump(mode="json") for p in spec.parameters],
                len(spec.outputs),
            ]
        ),
        problem.reference_path.read_bytes(),
        library_versions(),
        __version__,
    )
    keys = [
        digest(*sources, json.dumps(case.model_dump(mode="json", exclude={"index", "name"})))
        for case in cases
    ]
    found: dict[int, CaseOutcome] = {}
    for position, key in enumerate(keys):
        try:
            found[position] = CaseOutcome.model_validate_json((root / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            continue  # missing or unreadable: compute it
    missing = [position for position in range(len(cases)) if position not in found]
    for start in range(0, len(missing), chunk):
        batch = missing[start : start + chunk]
        renumbered = [
            cases[position].model_copy(update={"index": number})
            for number, position in enumerate(batch)
        ]
        expected = run_reference(problem, renumbered, runner=runner, use_cache=False)
        for number, position in enumerate(batch):
            outcome = expected.outcomes[number]
            write_atomic(root / f"{keys[position]}.json", outcome.model_dump_json())
            found[position] = outcome
    return [
        found[position].model_copy(update={"index": case.index})
        for position, case in enumerate(cases)
    ]


def failing(figures: Sequence[Figure], threshold: float) -> list[Figure]:
    """The figures held to the threshold and above it."""
    return [figure for figure in figures if figure.held and figure.rate > threshold]


def figures_json(figures: Sequence[Figure], threshold: float) -> str:
    """The audit as JSON, for scripts."""
    return json.dumps(
        {
            "threshold": threshold,
            "figures": [
                {
                    "kind": f.kind,
                    "subject": f.subject,
                    "description": f.description,
                    "escapes": f.escapes,
                    "seeds": f.seeds,
                    "rate": f.rate,
                    "held": f.held,
                    "ok": f.rate <= threshold or not f.held,
                }
                for f in figures
            ],
        },
        indent=2,
    )
