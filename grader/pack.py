"""Practice packs: a problem's public cases and their expected outcomes, without the reference.

Runs on the trusted side. Staff make a pack where the reference is (`grader pack`); students
grade against it where it is not (`grader check --pack`). A pack holds the statement, the
spec's student-facing parts, practice cases with the reference's outputs and tolerance scales
on them, each catalogued mistake's outputs on them (so hints work without the mistake
functions), and the versions and reference digest that made it. It holds no code.

Grading against a pack is a real grading in every step but one: `Expected` comes from the pack
instead of a reference run. The same worker runs the file, the same `grade()` compares,
diagnoses and builds the report, which is then marked as practice.

No hidden case of a real grading is in a pack. Practice cases are drawn by the same case
design (`make_cases`) from a pack seed in [2**63, 2**64), a range no grading accepts
(`cases.PRACTICE_SEEDS`): each random stream is keyed by (seed, stream number), and no
grading's key equals a practice key, so a practice case comes from streams no grading draws
from. Of those draws a pack keeps the spec's visible cases and a few random ones, and never an
edge case the spec hides (its pinned values are what staff keep for the real grading).
tests/test_pack.py checks over thousands of grading seeds that no case of theirs equals or
shares an array with a practice case.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from grader.cases import PRACTICE_SEEDS, make_cases
from grader.errors import GraderError, InvalidPack, UsageError
from grader.grading import Expected, grade, run_reference, versions
from grader.models import (
    Case,
    CaseOutcome,
    CaseSet,
    ExceptionHint,
    Frozen,
    Limits,
    Mistake,
    Output,
    Parameter,
    PracticeInfo,
    ProblemSpec,
    ReferenceSpec,
    Report,
    Versions,
)
from grader.problems import Problem, defined_functions
from grader.run import Runner
from grader.storage import read_regular, write_atomic

PACK_FILE = "pack.json"
PACKS_ENV = "GRADER_PACKS_DIR"
MAX_PACK_BYTES = 32 * 1024 * 1024
DEFAULT_EXTRA = 3
FORMAT = 1

PRACTICE_NOTE = (
    "Passing every public case does not promise full marks: the real grading draws other "
    "cases, most of them hidden, from a fresh seed."
)


class PublicMistake(Frozen):
    """A catalogued mistake as a student's grader needs it: its hint, never its code."""

    id: str = Field(description="The mistake's id in the spec.")
    hint: str = Field(description="What to tell a student whose outputs match it.")


class PublicSpec(Frozen):
    """The spec's student-facing parts. No edge case definitions, no reference file."""

    id: str = Field(description="Problem identifier.")
    version: str = Field(description="Spec version the pack was made from.")
    title: str = Field(description="One-line title.")
    statement: str = Field(description="The exercise, in words a student reads.")
    function: str = Field(description="Name of the function students define.")
    parameters: tuple[Parameter, ...] = Field(description="The function's arguments, in order.")
    outputs: tuple[Output, ...] = Field(description="The returned values and their tolerances.")
    points_per_case: float = Field(gt=0, description="Points for each fully passed case.")
    limits: Limits = Field(description="Limits for one submission.")
    tolerance_note: str = Field("", description="Why the tolerances are what they are.")
    mistakes: tuple[PublicMistake, ...] = Field((), description="Hints for known mistakes.")
    exception_hints: tuple[ExceptionHint, ...] = Field(
        (), description="Advice for common exceptions."
    )
    x64_hint: str = Field(
        "", description="What to tell a failing submission that turned jax_enable_x64 on."
    )


def _public_fields(spec: ProblemSpec | PublicSpec) -> dict[str, Any]:
    """The fields a spec and its public part share, taken from either (mistakes differ in
    shape and are built by the caller). Derived from PublicSpec, so that a field added to it
    travels both ways: written out by hand, the x64 hint was once left behind."""
    return {name: getattr(spec, name) for name in PublicSpec.model_fields if name != "mistakes"}


class PracticeCase(Frozen):
    """One public case: its inputs and what the reference and each known mistake give on it."""

    case: Case = Field(description="The case: index in the pack, name, arguments.")
    expected: tuple[float, ...] = Field(description="The reference's outputs.")
    scales: tuple[float, ...] | None = Field(
        None, description="Magnitude of what each output sums, for 'close' tolerances."
    )
    mistakes: dict[str, tuple[float, ...] | None] = Field(
        default_factory=dict,
        description="Each catalogued mistake's outputs by mistake id (None if it raised).",
    )


class PackVersions(Frozen):
    """The software that made the pack."""

    python: str = Field(description="Python version.")
    jax: str | None = Field(description="jax version, None if not installed.")
    flax: str | None = Field(description="flax version, None if not installed.")
    grader: str = Field(description="grader version.")


class PracticePack(Frozen):
    """A public practice bundle for one problem (`grader schema --pack`)."""

    format: Literal[1] = Field(description="Version of this file's layout.")
    problem: PublicSpec = Field(description="The spec's student-facing parts.")
    seed: int = Field(
        ge=PRACTICE_SEEDS.start,
        lt=PRACTICE_SEEDS.stop,
        description="The pack seed the cases were drawn from: in [2**63, 2**64), a range no "
        "grading uses, so no practice case comes from a grading's random streams.",
    )
    cases: tuple[PracticeCase, ...] = Field(min_length=1, description="The practice cases.")
    reference_sha256: str = Field(description="SHA-256 of the reference file that made it.")
    versions: PackVersions = Field(description="Software that made the pack.")
    created: str = Field(description="When the pack was made, ISO 8601 UTC.")
    digest: str = Field(
        description="SHA-256 of every other field, canonically serialised: a pack changed "
        "after it was made is refused. A checksum, not a signature."
    )

    @model_validator(mode="after")
    def _consistent(self) -> PracticePack:
        count = len(self.problem.outputs)
        ids = {m.id for m in self.problem.mistakes}
        for position, item in enumerate(self.cases):
            where = f"case {position} ({item.case.name!r})"
            if item.case.index != position:
                raise ValueError(f"{where} has index {item.case.index}, expected {position}")
            if len(item.case.args) != len(self.problem.parameters):
                raise ValueError(f"{where} has {len(item.case.args)} arguments")
            if len(item.expected) != count or (item.scales and len(item.scales) != count):
                raise ValueError(f"{where} does not have {count} outputs")
            if set(item.mistakes) - ids:
                raise ValueError(f"{where} names mistakes the problem does not list")
        return self

    def content_digest(self) -> str:
        """The digest of everything but the digest field."""
        data = self.model_dump(mode="json", exclude={"digest"})
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def seal(pack: PracticePack) -> PracticePack:
    """The pack with its digest set over its content."""
    return pack.model_copy(update={"digest": pack.content_digest()})


def random_pack_seed() -> int:
    """A fresh pack seed, leaving room below 2**64 for the extra draws."""
    room = PRACTICE_SEEDS.stop - PRACTICE_SEEDS.start - 10_000
    return PRACTICE_SEEDS.start + secrets.randbelow(room)


def practice_cases(spec: ProblemSpec, seed: int, *, extra: int = DEFAULT_EXTRA) -> tuple[Case, ...]:
    """The spec's visible cases drawn from the pack seed, then `extra` random ones.

    Hidden edge cases are never drawn. The extra cases are random cases of the same draw, and
    of the next pack seeds when it has too few; they are named 'practice N'. Cases are
    numbered 0, 1, ... in the pack.
    """
    if seed not in PRACTICE_SEEDS or seed + extra not in PRACTICE_SEEDS:
        raise UsageError(f"a pack seed must be in [2**63, 2**64 - {extra}), got {seed}")
    visible = spec.cases.visible
    edge_names = {edge.name for edge in spec.cases.edge}
    drawn = make_cases(spec, seed, practice=True)
    kept = [case for case in drawn if visible is None or case.name in visible]
    spare = [case for case in drawn if case.name not in edge_names and case not in kept]
    offset = 1
    while len(spare) < extra and spec.cases.random > 0:
        randoms = make_cases(spec, seed + offset, practice=True)[len(spec.cases.edge) :]
        spare.extend(randoms)
        offset += 1
    extras = [
        case.model_copy(update={"name": f"practice {number + 1}"})
        for number, case in enumerate(spare[:extra])
    ]
    return tuple(
        case.model_copy(update={"index": index}) for index, case in enumerate([*kept, *extras])
    )


def make_pack(
    problem: Problem,
    *,
    seed: int | None = None,
    extra: int = DEFAULT_EXTRA,
    runner: Runner,
) -> PracticePack:
    """Run the reference (with `runner`, a trusted one) on fresh practice cases and bundle
    what a student may have."""
    spec = problem.spec
    seed = random_pack_seed() if seed is None else seed
    cases = practice_cases(spec, seed, extra=extra)
    expected = run_reference(problem, cases, runner=runner)
    items = []
    for case in cases:
        outcome = expected.outcomes[case.index]
        assert outcome.values is not None  # run_reference accepts only returned values
        variants = outcome.variants or {}
        items.append(
            PracticeCase(
                case=case,
                expected=outcome.values,
                scales=outcome.scales,
                mistakes={m.id: variants.get(m.function) for m in spec.mistakes},
            )
        )
    public = PublicSpec(
        **_public_fields(spec),
        mistakes=tuple(PublicMistake(id=m.id, hint=m.hint) for m in spec.mistakes),
    )
    made_with = versions()
    return seal(
        PracticePack(
            format=FORMAT,
            problem=public,
            seed=seed,
            cases=tuple(items),
            reference_sha256=hashlib.sha256(problem.reference_path.read_bytes()).hexdigest(),
            versions=PackVersions(**made_with.model_dump()),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            digest="",
        )
    )


def write_pack(pack: PracticePack, folder: Path) -> Path:
    """Write the pack as folder/pack.json, readable by all (it is public)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PACK_FILE
    write_atomic(path, pack.model_dump_json(indent=1) + "\n")
    path.chmod(0o644)
    return path


def pack_path(location: Path) -> Path:
    """The pack file of a pack folder (or the file itself)."""
    return location / PACK_FILE if location.is_dir() else location


def load_pack(location: Path) -> PracticePack:
    """Read and check a pack: a folder holding pack.json, or the file. Refuses a changed one."""
    path = pack_path(location)
    try:
        raw = read_regular(path, MAX_PACK_BYTES + 1)
    except GraderError as exc:
        raise InvalidPack(f"cannot read the practice pack {path}: {exc}") from exc
    if len(raw) > MAX_PACK_BYTES:
        raise InvalidPack(f"{path} is larger than {MAX_PACK_BYTES} bytes: not a practice pack")
    try:
        pack = PracticePack.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidPack(
            f"{path} is not a valid practice pack ({exc.error_count()} problem(s), first: "
            f"{_first_error(exc)}). Download the pack again, or ask course staff for it."
        ) from exc
    if pack.content_digest() != pack.digest:
        raise InvalidPack(
            f"the practice pack {path} has been changed since course staff made it (its "
            f"content does not match its digest), so its expected outputs cannot be trusted. "
            f"Download the pack again; do not edit it."
        )
    return pack


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the file"
    return f"{where}: {error['msg']}"


@dataclass(frozen=True)
class Practice:
    """A pack made ready for `grade()`: a problem whose outcomes come from the pack."""

    pack: PracticePack
    problem: Problem
    expected: Expected


def practice_problem(pack: PracticePack, location: Path) -> Practice:
    """The pack as a Problem and an Expected, for the one grading code path.

    The spec keeps only the public parts: every case visible, no edge cases, mistakes whose
    outputs are looked up by id. The pack's folder stands in for the spec's and reference's,
    so a fully isolated submission does not see it.
    """
    public = pack.problem
    spec = ProblemSpec(
        **_public_fields(public),
        cases=CaseSet(random=len(pack.cases), visible=None),
        reference=ReferenceSpec(file=PACK_FILE),
        mistakes=tuple(Mistake(id=m.id, function=m.id, hint=m.hint) for m in public.mistakes),
    )
    path = pack_path(location).resolve()
    outcomes = {
        item.case.index: CaseOutcome(
            index=item.case.index,
            kind="returned",
            values=item.expected,
            scales=item.scales,
            variants=dict(item.mistakes),
        )
        for item in pack.cases
    }
    expected = Expected(cases=tuple(item.case for item in pack.cases), outcomes=outcomes)
    return Practice(pack, Problem(spec=spec, spec_path=path, reference_path=path), expected)


def version_note(made_with: PackVersions, here: Versions) -> str | None:
    """Say so when jax or flax here differ from those the pack was made with."""
    differ = [
        f"{name} {getattr(made_with, name)} (here {getattr(here, name)})"
        for name in ("jax", "flax")
        if getattr(made_with, name) != getattr(here, name)
    ]
    if not differ:
        return None
    return (
        f"This pack was made with {' and '.join(differ)}. The tolerances are meant to absorb "
        f"such a difference; if a case fails by a hair, install the versions the pack names."
    )


def check_practice(
    path: Path,
    practice: Practice,
    *,
    runner: Runner,
    limits: Limits | None = None,
    display_name: str | None = None,
) -> Report:
    """Grade a file on the pack's cases, by `grade()` itself; the report says it is practice."""
    report = grade(
        path,
        problem=practice.problem,
        seed=practice.pack.seed,
        expected=practice.expected,
        runner=runner,
        limits=limits,
        display_name=display_name,
    )
    info = PracticeInfo(
        pack_digest=practice.pack.digest,
        pack_created=practice.pack.created,
        reference_sha256=practice.pack.reference_sha256,
        note=PRACTICE_NOTE,
        version_note=version_note(practice.pack.versions, report.versions),
    )
    return report.model_copy(update={"practice": info})


def packs_dirs() -> list[Path]:
    """Where packs live: $GRADER_PACKS_DIR if set, else ./packs (one folder per problem id)."""
    explicit = os.environ.get(PACKS_ENV)
    return [Path(explicit)] if explicit else [Path("packs")]


def find_pack(source: str, problem_id: str | None) -> Path | None:
    """The pack for a problem where packs live: by id, else the only pack whose function the
    source defines, else the only pack there (a file that does not parse, or misnames its
    function, defines none). None when there is none; a pack there that is broken raises
    InvalidPack (a student who edited it must hear so, not that there is no pack)."""
    for folder in packs_dirs():
        if problem_id is not None:
            candidate = folder / problem_id / PACK_FILE
            if candidate.is_file():
                return candidate.parent
            continue
        names = defined_functions(source)
        matching, broken = [], []
        every = sorted(folder.glob(f"*/{PACK_FILE}"))
        for candidate in every:
            try:
                pack = load_pack(candidate)
            except InvalidPack as exc:
                broken.append(exc)
                continue
            if pack.problem.function in names:
                matching.append(candidate.parent)
        if len(matching) == 1:
            return matching[0]
        if not matching and broken:
            raise broken[0]
        if not matching and len(every) == 1:
            return every[0].parent
    return None
