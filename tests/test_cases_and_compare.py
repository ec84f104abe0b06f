"""Case drawing and comparison, as pure functions."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from conftest import TOY
from pydantic import ValidationError

from grader.cases import make_cases
from grader.compare import COMPARATORS, check_outputs, tolerance
from grader.errors import InvalidSpec
from grader.models import ArrayArg, Output, OutputKind, Report, ScalarArg
from grader.problems import Problem, load_spec


def test_same_seed_same_cases_other_seed_other_cases(problem: Problem) -> None:
    assert make_cases(problem.spec, 42) == make_cases(problem.spec, 42)
    assert make_cases(problem.spec, 42) != make_cases(problem.spec, 43)


def test_cases_cover_the_ranges_and_edges(problem: Problem) -> None:
    seeds, lengths, hiddens = [], [], []
    for grading_seed in range(40):
        for case in make_cases(problem.spec, grading_seed):
            seed, x, features, hidden = case.args
            assert isinstance(seed, ScalarArg) and isinstance(x, ArrayArg)
            assert isinstance(features, ScalarArg) and isinstance(hidden, ScalarArg)
            assert seed.kind == features.kind == hidden.kind == "float"
            assert x.kind == "jax" and x.dtype == "float32"
            assert features.value == len(x.values)
            assert np.array_equal(np.asarray(x.values, np.float32), x.values)  # exact in f32
            seeds.append(seed.value)
            lengths.append(len(x.values))
            hiddens.append(hidden.value)
    assert min(seeds) < -1e9 and max(seeds) > 1e9  # the whole int32 range, both signs
    assert 0 in seeds and 2**31 - 1 in seeds
    assert min(lengths) == 1 and max(lengths) >= 30
    assert min(hiddens) == 1 and max(hiddens) >= 60
    names = [case.name for case in make_cases(problem.spec, 0)]
    assert names[:8] == [
        "hidden is 1",
        "x has one element",
        "x is all zeros",
        "|x| around 1e3",
        "largest sizes",
        "smallest int32 seed",
        "seed 0",
        "largest int32 seed",
    ]
    zeros = make_cases(problem.spec, 0)[2].args[1]
    assert isinstance(zeros, ArrayArg) and set(zeros.values) == {0.0}
    big = make_cases(problem.spec, 0)[3].args[1]
    assert isinstance(big, ArrayArg) and all(500 <= abs(v) <= 2000 for v in big.values)


def test_x_mixes_signs_and_scales(problem: Problem) -> None:
    values = [
        v for s in range(20) for c in make_cases(problem.spec, s)[8:] for v in c.args[1].values
    ]  # type: ignore[union-attr]
    magnitudes = np.abs(values)
    assert min(values) < 0 < max(values)
    assert magnitudes.min() < 1e-2 and magnitudes.max() > 10


CLOSE = Output(name="param_sum", compare="close", rtol=1e-5, atol=1e-6)
EXACT = Output(name="num_leaves", compare="exact")


def test_tolerance_scales_with_what_was_summed() -> None:
    # A sum near zero of large terms: the tolerance follows the terms, not the result.
    assert tolerance(CLOSE, expected=0.001, scale=500.0) == pytest.approx(1e-6 + 5e-3)
    assert tolerance(CLOSE, expected=-20.0, scale=None) == pytest.approx(1e-6 + 2e-4)
    assert tolerance(EXACT, expected=4.0, scale=None) == 0.0


def test_one_percent_error_fails_float_noise_passes() -> None:
    expected, scale = 10.0, 400.0  # a typical param_sum: |sum| about 2.5% of sum |params|
    noise = expected + 1e-7 * scale  # the largest rounding difference measured
    (ok,) = check_outputs([CLOSE], [noise], [expected], [scale])
    (off,) = check_outputs([CLOSE], [expected * 1.01], [expected], [scale])
    assert ok.passed and ok.error_ratio < 0.02
    assert not off.passed and off.error_ratio > 20


def test_exact_output_must_match_exactly() -> None:
    (same,) = check_outputs([EXACT], [4.0], [4.0], None)
    (other,) = check_outputs([EXACT], [2.0], [4.0], None)
    assert same.passed and not other.passed


def test_every_kind_a_spec_may_name_has_one_comparison() -> None:
    assert sorted(COMPARATORS) == sorted(get_args(OutputKind))


def test_an_output_kind_without_a_comparison_is_a_spec_error_naming_the_output() -> None:
    # Only an Output built without validation can name one; a spec file cannot (see below).
    odd = Output.model_construct(name="num_leaves", compare="integer", rtol=0.0, atol=0.0)
    with pytest.raises(InvalidSpec, match=r"'num_leaves'.*'integer'.*known: exact, close"):
        check_outputs([odd], [4.0], [4.0], None)


def test_a_spec_file_asking_for_an_unknown_comparison_is_refused_with_its_path(
    tmp_path: Path,
) -> None:
    text = (TOY / "problems" / "vector_stats.toml").read_text()
    assert 'compare = "exact"' in text
    path = tmp_path / "vector_stats.toml"
    path.write_text(text.replace('compare = "exact"', 'compare = "integer"', 1))
    with pytest.raises(InvalidSpec, match=r"(?s)vector_stats\.toml is invalid.*compare"):
        load_spec(path)


def test_report_is_frozen_and_rejects_unknown_fields() -> None:
    schema_fields = set(Report.model_fields)
    assert {"status", "score", "max_score", "cases", "seed", "versions"} <= schema_fields
    with pytest.raises(ValidationError, match="extra"):
        Report.model_validate({"bogus": 1})
