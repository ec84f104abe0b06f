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
from grader.cases import make_cases, thirds
from grader.compare import check_outputs
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


@dataclass(frozen=True)
class Figure:
    """How many grading seeds a wrong solution escapes on."""

    kind: str  # "range" or "mistake"
    subject: str  # the parameter, or the mistake's id
    description: str
    escapes: int
    seeds: int

    @property
    def rate(self) -> float:
        return self.escapes / self.seeds if self.seeds else 0.0


def regions(spec: ProblemSpec) -> list[Region]:
    """Parts of every int parameter's range, and of every vector's length range."""
    found: list[Region] = []
    for param in spec.parameters:
        if isinstance(param, IntParameter):
            name, low, high = param.name, param.low, param.high
        elif isinstance(param, VectorParameter):
            name, (low, high) = f"len({param.name})", param.draw.length
        else:
            continue
        found.extend(_regions_of(name, low, high))
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


def case_values(spec: ProblemSpec, case: Case) -> dict[str, int]:
    """Each parameter's value in a case, as the regions see it (a vector by its length)."""
    values = {}
    for param, arg in zip(spec.parameters, case.args, strict=True):
        if isinstance(param, IntParameter) and isinstance(arg, ScalarArg):
            values[param.name] = int(arg.value)
        elif isinstance(param, VectorParameter) and isinstance(arg, ArrayArg):
            values[f"len({param.name})"] = len(arg.values)
    return values


def design_figures(spec: ProblemSpec, seeds: Iterable[int]) -> list[Figure]:
    """For each region, on how many seeds no case falls in it (computed from the cases)."""
    found = regions(spec)
    escapes = [0] * len(found)
    count = 0
    for seed in seeds:
        count += 1
        values = [case_values(spec, case) for case in make_cases(spec, seed)]
        for position, region in enumerate(found):
            if not any(region.contains(v[region.parameter]) for v in values):
                escapes[position] += 1
    return [
        Figure("range", region.parameter, region.description, escaped, count)
        for region, escaped in zip(found, escapes, strict=True)
    ]


def mistake_figures(
    problem: Problem,
    seeds: Sequence[int],
    *,
    runner: Runner | None = None,
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
    problem: Problem, cases: Sequence[Case], *, runner: Runner | None = None, chunk: int = 40
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
    """The figures above the threshold."""
    return [figure for figure in figures if figure.rate > threshold]


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
                    "ok": f.rate <= threshold,
                }
                for f in figures
            ],
        },
        indent=2,
    )
