"""The naive grader the benchmark compares against: one fresh interpreter per submission.

It imports jax and flax, then runs the reference and the submission in this same process on
the spec's cases drawn without shape groups (every case a new shape), with no cache of any
kind. Running both in one process is the cheapest naive design (the student reuses programs
the reference compiled), so ratios against it are conservative. Unsafe by design: never use
it to grade untrusted code.

    python benchmarks/naive.py SUBMISSION SEED
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from grader.cases import make_cases
from grader.compare import check_outputs
from grader.problems import load_problem
from grader.run.worker import build_args, to_numbers


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    submission, seed = Path(sys.argv[1]), int(sys.argv[2])
    problem = load_problem("graphdef_vs_state")
    spec = problem.spec.model_copy(
        update={"cases": problem.spec.cases.model_copy(update={"shape_groups": None})}
    )
    reference = load(problem.reference_path, "reference")
    student = load(submission, "student")
    passed = 0
    cases = make_cases(spec, seed)
    for case in cases:
        expected, _ = to_numbers(getattr(reference, spec.function)(*build_args(case)), 3)
        scales, _ = to_numbers(reference.magnitudes(*build_args(case)), 3)
        got, _ = to_numbers(getattr(student, spec.function)(*build_args(case)), 3)
        assert expected is not None and got is not None
        passed += all(c.passed for c in check_outputs(spec.outputs, got, expected, scales))
    print(f"{passed}/{len(cases)}")
    return 0 if passed == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
