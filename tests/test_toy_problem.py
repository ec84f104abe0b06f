"""A second problem needs only a spec and a reference: the toy is graded by the same path.

The toy uses no JAX, so it is also where the many shapes of invalid output are tried quickly,
in this process (`grade_in_process`: the worker's own load and conversion code, no sandbox).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TOY, Grade

from grader.models import CaseReason, Status
from grader.problems import Problem


def test_toy_correct_gets_full_marks(toy: Problem, grade_in_process: Grade) -> None:
    report = grade_in_process(TOY / "submissions" / "correct.py", toy)
    assert report.status is Status.GRADED
    assert report.problem.id == "vector_stats"
    assert report.score == report.max_score == 8.0  # 4 cases x 2 points
    assert [c.name for c in report.cases] == ["k is 0", "random 1", "random 2", "random 3"]


def test_toy_wrong_names_the_wrong_output(toy: Problem, grade_in_process: Grade) -> None:
    report = grade_in_process(TOY / "submissions" / "wrong_peak.py", toy, seed=3)
    wrong = {o.name for c in report.cases for o in c.outputs if not o.passed}
    assert wrong == {"peak"}
    assert report.score < report.max_score


# What the function returns, and a fragment of the message the student must see.
INVALID_OUTPUTS = [
    ("None", "returned None"),
    ("'4, 1.0, 2.0'", "returned a str"),
    ("{'count': 1}", "returned a dict"),
    ("[1.0, 2.0]", "list of 2 items; expected 3"),
    ("(1.0, 2.0, 3.0, 4.0)", "tuple of 4 items; expected 3"),
    ("[len(x), float('nan'), 1.0]", "scaled_sum = nan"),
    ("[len(x), 1.0, float('inf')]", "peak = inf"),
    ("[1.0, 2.0, 3.0j]", "complex numbers"),
    ("[1.0, Unfloatable(), 2.0]", "could not be read as numbers: no float for you"),
    ("np.broadcast_to(0.0, (10**8,))", "shape (100000000,); expected shape (3,)"),
    ("np.zeros((3, 1))", "shape (3, 1)"),
    ("{1.0, 2.0, 3.0}", "returned a set"),
    ("(v for v in [1.0, 2.0, 3.0])", "returned a generator"),
    ("[[1.0], [2.0], [3.0]]", "shape (3, 1), not (3,)"),
]


@pytest.mark.parametrize(
    ("returned", "fragment"), INVALID_OUTPUTS, ids=[row[0] for row in INVALID_OUTPUTS]
)
def test_invalid_output_is_a_clear_case_failure(
    returned: str, fragment: str, toy: Problem, grade_in_process: Grade, tmp_path: Path
) -> None:
    source = tmp_path / "invalid.py"
    source.write_text(
        "import numpy as np\n\n"
        "class Unfloatable:\n"
        "    def __float__(self):\n"
        "        raise ValueError('no float for you')\n\n"
        f"def vector_stats(x, k):\n    return {returned}\n"
    )
    report = grade_in_process(source, toy)
    assert report.status is Status.GRADED
    assert report.score == 0
    case = report.cases[0]
    assert case.reason is CaseReason.INVALID_OUTPUT
    assert fragment in case.message


def test_missing_function_lists_what_the_file_defines(
    toy: Problem, grade_in_process: Grade, tmp_path: Path
) -> None:
    source = tmp_path / "typo.py"
    source.write_text(
        "from math import sqrt\n\n"
        "def helper(v):\n    return abs(v)\n\n"
        "def vector_stat(x, k):\n    return [len(x), 0.0, 0.0]\n"
    )
    report = grade_in_process(source, toy)
    assert report.status is Status.MISSING_FUNCTION
    assert "Did you mean to call yours 'vector_stat'?" in report.message
    assert "It defines: helper, vector_stat." in report.message  # not the imported sqrt
