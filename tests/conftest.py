"""Shared fixtures: problems, reference outcomes computed once per seed, and grading helpers.

Two ways to grade a file here:

- `grade_file`: the submission runs in the real sandbox (`Setup.for_student().submissions`);
  for tests whose subject is the sandbox (hostile files, limits, containment, crashes).
- `grade_in_process`, `in_process`, `in_process_grader`: the submission runs in this process
  (`InProcessRunner`), for tests of grading, feedback, reports and doors, on files the test
  suite itself wrote (never a hostile one).

The trusted reference always runs in process (`references`): it is the course's own code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.cases import make_cases
from grader.engine import Grader, Setup, World
from grader.grading import Expected, grade, run_reference
from grader.models import Limits, Report
from grader.problems import Problem, load_problem
from grader.run import Runner
from grader.run.fake import InProcessRunner

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
    # `grader check` run as a process grades in that process: a test never leaves a warm
    # daemon behind (tests/test_daemon.py starts its own, in a folder of its own).
    monkeypatch.setenv("GRADER_NO_DAEMON", "1")
    monkeypatch.delenv("GRADER_PROBLEMS_DIR", raising=False)
    monkeypatch.delenv("GRADER_REFERENCE_DIR", raising=False)
    monkeypatch.chdir(home)


@pytest.fixture(autouse=True)
def _jax_left_as_found() -> Iterator[None]:
    """A file run in this process (`InProcessRunner`) must not change JAX for the tests after
    it: tests/submissions/wrong/x64_enabled.py turns jax_enable_x64 on for its whole process."""
    yield
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", False)  # the next tests run as they would alone
        pytest.fail(
            "this test left jax_enable_x64 on in the test process (a file run in process by "
            "InProcessRunner turned it on?): grade such a file in the sandbox (grade_file)"
        )


@pytest.fixture(scope="session")
def problem() -> Problem:
    return load_problem("graphdef_vs_state")


@pytest.fixture(scope="session")
def toy() -> Problem:
    return load_problem(
        "vector_stats", problems_dir=TOY / "problems", reference_dir=TOY / "reference"
    )


class ReferenceCache:
    """The reference's outcomes per (problem, seed), computed at most once per session, in
    this process (the reference is trusted: no sandbox needed)."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner or InProcessRunner()
        self._expected: dict[tuple[str, int], Expected] = {}

    def get(self, problem: Problem, seed: int) -> Expected:
        key = (problem.spec.id, seed)
        if key not in self._expected:
            cases = make_cases(problem.spec, seed)
            self._expected[key] = run_reference(problem, cases, runner=self.runner)
        return self._expected[key]


@pytest.fixture(scope="session")
def references() -> ReferenceCache:
    return ReferenceCache()


def in_process_setup() -> Setup:
    """Submissions and reference both run in this process (files the suite wrote only)."""
    return Setup(InProcessRunner(), InProcessRunner())


@pytest.fixture
def in_process() -> Setup:
    """A Setup whose runners run in this process: for `Grader(...)`, `World.of(...)`."""
    return in_process_setup()


@pytest.fixture
def in_process_world(in_process: Setup) -> World:
    """Every CLI door on in-process runners: `CliRunner().invoke(cli, args, obj=...)`."""
    return World.of(in_process)


@pytest.fixture(scope="session")
def in_process_grader() -> Grader:
    """One Grader on in-process runners for the session (reference runs shared)."""
    return Grader(in_process_setup())


@pytest.fixture
def sandboxed() -> Runner:
    """The real sandbox a student's `grader check` runs submissions in."""
    return Setup.for_student().submissions


@pytest.fixture
def grade_file(references: ReferenceCache, sandboxed: Runner) -> Grade:
    """Grade a file through the real subprocess path, reusing the session's reference runs."""

    def run(path: Path, problem: Problem, seed: int = 7, limits: Limits | None = None) -> Report:
        expected = references.get(problem, seed)
        return grade(
            path, problem=problem, seed=seed, expected=expected, runner=sandboxed, limits=limits
        )

    return run


@pytest.fixture
def grade_in_process(references: ReferenceCache) -> Grade:
    """Grade a file the suite wrote in this process (no sandbox), same signature as
    `grade_file`."""
    runner = InProcessRunner()

    def run(path: Path, problem: Problem, seed: int = 7, limits: Limits | None = None) -> Report:
        expected = references.get(problem, seed)
        return grade(
            path, problem=problem, seed=seed, expected=expected, runner=runner, limits=limits
        )

    return run
