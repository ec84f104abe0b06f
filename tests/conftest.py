"""Shared fixtures: problems, reference outcomes computed once per seed, and grading helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cases import make_cases
from grader.grading import Expected, grade, run_reference
from grader.models import Limits, Report
from grader.problems import Problem, load_problem

TESTS = Path(__file__).parent
SUBMISSIONS = TESTS / "submissions"
TOY = TESTS / "toy"
# Command-line options that point the grader at the toy problem.
TOY_DIRS = ("--problems-dir", str(TOY / "problems"), "--reference-dir", str(TOY / "reference"))

Grade = Callable[..., Report]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite the golden files under tests/goldens from the current renderers.",
    )


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the real home folder or depends on the working folder.

    The grader's cache is shared by the whole run (all xdist workers), never the user's.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    shared = tmp_path_factory.getbasetemp().parent / "grader-cache"
    monkeypatch.setenv("GRADER_CACHE_DIR", str(shared))
    monkeypatch.delenv("GRADER_PROBLEMS_DIR", raising=False)
    monkeypatch.delenv("GRADER_REFERENCE_DIR", raising=False)
    monkeypatch.chdir(home)


@pytest.fixture(scope="session")
def problem() -> Problem:
    return load_problem("graphdef_vs_state")


@pytest.fixture(scope="session")
def toy() -> Problem:
    return load_problem(
        "vector_stats", problems_dir=TOY / "problems", reference_dir=TOY / "reference"
    )


class ReferenceCache:
    """The reference's outcomes per (problem, seed), computed at most once per session."""

    def __init__(self) -> None:
        self._expected: dict[tuple[str, int], Expected] = {}

    def get(self, problem: Problem, seed: int) -> Expected:
        key = (problem.spec.id, seed)
        if key not in self._expected:
            self._expected[key] = run_reference(problem, make_cases(problem.spec, seed))
        return self._expected[key]


@pytest.fixture(scope="session")
def references() -> ReferenceCache:
    return ReferenceCache()


@pytest.fixture
def grade_file(references: ReferenceCache) -> Grade:
    """Grade a file through the real subprocess path, reusing the session's reference runs."""

    def run(path: Path, problem: Problem, seed: int = 7, limits: Limits | None = None) -> Report:
        expected = references.get(problem, seed)
        return grade(path, problem=problem, seed=seed, expected=expected, limits=limits)

    return run
