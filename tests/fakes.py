"""Grading helpers for tests: the reference run once per seed in this process, and a file graded
either in this process (`in_process`, milliseconds once JAX is loaded: for everything above the
process boundary) or in a real sandbox (`sandboxed`: where the sandbox is the subject).

`InProcessRunner` runs only files the test suite wrote (tests/submissions/correct, wrong,
faults, tests/toy, files a test generates): never a hostile one, which go through `sandboxed`.
"""

from __future__ import annotations

from pathlib import Path

from grader.cases import make_cases
from grader.engine import Setup
from grader.grading import Expected, grade, run_reference
from grader.models import Limits, Report
from grader.problems import Problem
from grader.run import Runner
from grader.run.fake import InProcessRunner

_EXPECTED: dict[tuple[str, str, str, int], Expected] = {}
_SANDBOX: list[Runner] = []  # one real runner per test process: its zygote loads JAX once


def reference(problem: Problem, seed: int) -> Expected:
    """The reference's outcomes on the seed's cases, computed once per test process."""
    key = (problem.spec.id, problem.spec.version, str(problem.reference_path), seed)
    if key not in _EXPECTED:
        cases = make_cases(problem.spec, seed)
        _EXPECTED[key] = run_reference(problem, cases, runner=InProcessRunner())
    return _EXPECTED[key]


def in_process(path: Path, problem: Problem, seed: int = 7, limits: Limits | None = None) -> Report:
    """Grade a file the test suite wrote in this process, with the worker's own code."""
    return grade(
        path,
        problem=problem,
        seed=seed,
        expected=reference(problem, seed),
        runner=InProcessRunner(),
        limits=limits,
    )


def sandboxed(
    path: Path,
    problem: Problem,
    seed: int = 7,
    limits: Limits | None = None,
    runner: Runner | None = None,
) -> Report:
    """Grade a file in a real sandbox (the one `grader check` uses, unless `runner` is given);
    the reference's outcomes come from `reference`."""
    return grade(
        path,
        problem=problem,
        seed=seed,
        expected=reference(problem, seed),
        runner=runner or sandbox(),
        limits=limits,
    )


def sandbox() -> Runner:
    """The real runner `grader check` grades with, shared by the test process."""
    if not _SANDBOX:
        _SANDBOX.append(Setup.for_student().submissions)
    return _SANDBOX[0]


def fake_setup() -> Setup:
    """A Setup that runs submissions and the reference in this process (see the module)."""
    return Setup(InProcessRunner(), InProcessRunner())
