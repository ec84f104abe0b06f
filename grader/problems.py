"""Find and load problem specs (problems/*.toml) and their reference solutions."""

from __future__ import annotations

import ast
import os
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from grader import safe_text
from grader.cache import digest
from grader.errors import InvalidSpec, ReferenceMissing, UnknownProblem
from grader.models import ProblemSpec
from grader.paths import REPO_ROOT

PROBLEMS_ENV = "GRADER_PROBLEMS_DIR"
REFERENCE_ENV = "GRADER_REFERENCE_DIR"
# A problem id is a name, never a path: letters, digits, '_' and '-', starting with a letter or
# digit (so no '/', no '..', no hidden file, nothing a shell or a URL would change).
PROBLEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class Problem:
    """A validated spec together with the reference file that answers it."""

    spec: ProblemSpec
    spec_path: Path
    reference_path: Path

    @cached_property
    def key(self) -> str:
        """What the reference's outcomes depend on: the spec and the reference's source, read
        once per Problem (a Problem loaded again after an edit has another key; one whose
        reference file is then removed, as Gradescope's basic isolation does, keeps its own)."""
        try:
            source = self.reference_path.read_bytes()
        except OSError:
            source = b""  # the grading itself says the reference is missing
        return digest(self.spec.model_dump_json(), source)


def default_problems_dir() -> Path:
    """$GRADER_PROBLEMS_DIR, else the repository's problems/ folder."""
    return Path(os.environ.get(PROBLEMS_ENV) or REPO_ROOT / "problems")


def default_reference_dir() -> Path:
    """$GRADER_REFERENCE_DIR, else the repository's reference/ folder."""
    return Path(os.environ.get(REFERENCE_ENV) or REPO_ROOT / "reference")


def load_spec(path: Path) -> ProblemSpec:
    """Parse and validate one spec file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidSpec(f"cannot read problem spec {path}: {exc}") from exc
    try:
        spec = ProblemSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidSpec(f"problem spec {path} is invalid:\n{exc}") from exc
    if PROBLEM_ID.fullmatch(spec.id) is None:
        raise InvalidSpec(
            f"problem spec {path} has id {spec.id!r}: an id is letters, digits, '_' and '-'"
        )
    if spec.id != path.stem:
        raise InvalidSpec(f"problem spec {path} has id {spec.id!r}; name the file {spec.id}.toml")
    return spec


def list_problems(problems_dir: Path | None = None) -> list[ProblemSpec]:
    """Every spec in the problems folder, sorted by id."""
    folder = problems_dir or default_problems_dir()
    if not folder.is_dir():
        raise UnknownProblem(
            f"problems folder {folder} does not exist. Point --problems-dir or "
            f"${PROBLEMS_ENV} at the course's problems/ folder (the grader installed with pip "
            f"carries none), or, as a student, put the course's practice pack in "
            f"packs/<problem id>/ and run `grader check` from there"
        )
    return [load_spec(path) for path in sorted(folder.glob("*.toml"))]


def check_problem_id(problem_id: str) -> str:
    """The id, if it has a problem id's syntax; else UnknownProblem (an id is never a path)."""
    if PROBLEM_ID.fullmatch(problem_id) is None:
        shown = safe_text.visible_controls(problem_id[:100])
        raise UnknownProblem(
            f"{shown!r} is not a problem id: an id is a name such as 'graphdef_vs_state' "
            f"(letters, digits, '_' and '-'), never a path"
        )
    return problem_id


def spec_path_for(problem_id: str, problems_dir: Path | None = None) -> Path:
    """The spec file of a problem id (the spec alone: a student may not have the reference).

    The id must have an id's syntax and be one of the folder's specs (by name, as listed):
    nothing a job or a request names can make the grader read a file elsewhere."""
    check_problem_id(problem_id)
    folder = problems_dir or default_problems_dir()
    spec_path = folder / f"{problem_id}.toml"
    listed = folder.is_dir() and any(p.name == spec_path.name for p in folder.glob("*.toml"))
    if not listed or not spec_path.is_file():
        known = ", ".join(spec.id for spec in list_problems(folder)) or "none"
        raise UnknownProblem(f"no problem {problem_id!r} in {folder} (known: {known})")
    return spec_path


def load_problem(
    problem_id: str, *, problems_dir: Path | None = None, reference_dir: Path | None = None
) -> Problem:
    """Load a problem by id and locate its reference solution."""
    spec_path = spec_path_for(problem_id, problems_dir)
    spec = load_spec(spec_path)
    folder = reference_dir or default_reference_dir()
    reference_path = reference_in(folder, spec.reference.file, spec_path)
    if not reference_path.is_file():
        raise ReferenceMissing(
            f"the reference solution for {problem_id!r} is missing: expected {reference_path}. "
            f"Point --reference-dir or ${REFERENCE_ENV} at the folder that holds it.",
            problem_id,
        )
    return Problem(spec=spec, spec_path=spec_path, reference_path=reference_path)


def reference_in(folder: Path, name: str, spec_path: Path) -> Path:
    """The reference file `name` resolved (symlinks followed) inside `folder`; InvalidSpec when
    it would lie anywhere else (an absolute path, '..', a symlink pointing out): the reference
    runs as trusted code, so only files staff put in the reference folder may be one."""
    root = folder.resolve()
    resolved = (root / name).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise InvalidSpec(
            f"problem spec {spec_path} names the reference {name!r}, which resolves to "
            f"{resolved}, outside the reference folder {root}: name a file inside that folder"
        )
    return resolved


def defined_functions(source: str) -> set[str]:
    """Names of the top-level functions a source defines, without running it (a notebook's
    text: those its code cells define)."""
    if source.lstrip().startswith("{"):  # a notebook's JSON (which Python would parse too)
        from grader import ipynb  # imports grader.run: only when it is needed

        raw = source.encode(errors="replace")
        converted = ipynb.convert(raw, "notebook.ipynb", validate=False)
        if isinstance(converted, ipynb.Converted):
            source = converted.source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def find_problem(
    source: str | None,
    *,
    problem_id: str | None = None,
    problems_dir: Path | None = None,
    reference_dir: Path | None = None,
) -> Problem:
    """The problem named, else the one whose function the source defines, else the only one."""
    if problem_id is not None:
        return load_problem(problem_id, problems_dir=problems_dir, reference_dir=reference_dir)
    specs = list_problems(problems_dir)
    if not specs:
        raise UnknownProblem(f"no problem specs in {problems_dir or default_problems_dir()}")
    if len(specs) == 1:
        only = specs[0].id
        return load_problem(only, problems_dir=problems_dir, reference_dir=reference_dir)
    names = defined_functions(source or "")
    matching = [spec for spec in specs if spec.function in names]
    if len(matching) == 1:
        return load_problem(matching[0].id, problems_dir=problems_dir, reference_dir=reference_dir)
    ids = ", ".join(spec.id for spec in specs)
    why = "several problems match" if matching else "no problem's function is defined in it"
    raise UnknownProblem(
        f"cannot tell which problem this file answers ({why}); "
        f"name one with --problem (one of: {ids})"
    )
