"""Practice packs: no code and no hidden case in them, refused when changed, and a practice
verdict equal, case by case, to a real grading's on the same cases.

Most tests use the toy problem (no JAX) in this process (`InProcessRunner`, `helpers.invoke`);
the real problem's pack is made once per session and used by the slow test, which runs the
corpus's faults (exits, endless loops) in the sandbox. Basic isolation is compared with full
for real.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import SUBMISSIONS, TOY
from helpers import OSC8, assert_golden, invoke
from rich.console import Console

from grader.cases import MAX_SEED, PRACTICE_SEEDS, make_cases
from grader.cli import cli
from grader.engine import Setup
from grader.errors import InvalidPack
from grader.grading import grade, run_reference
from grader.models import ArrayArg, Case, Isolation, Limits, Report, RunRequest
from grader.pack import (
    PACK_FILE,
    Practice,
    PracticePack,
    check_practice,
    load_pack,
    make_pack,
    practice_cases,
    practice_problem,
    seal,
    write_pack,
)
from grader.problems import Problem
from grader.render import verdict
from grader.run import FakeRunner, Runner, RunResult, full_isolation_problem
from grader.run.fake import InProcessRunner

PACK_SEED = PRACTICE_SEEDS.start + 20261126
TOY_SUBMISSIONS = sorted((TOY / "submissions").glob("*.py"))


@pytest.fixture(scope="module")
def toy_pack_dir(toy: Problem, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("packs") / "vector_stats"
    write_pack(make_pack(toy, seed=PACK_SEED, runner=InProcessRunner()), folder)
    return folder


@pytest.fixture
def runner() -> InProcessRunner:
    """Runs the toy's submissions (files of this suite) in this process."""
    return InProcessRunner()


@pytest.fixture
def toy_pack(toy_pack_dir: Path) -> PracticePack:
    return load_pack(toy_pack_dir)


def _hidden_cases(problem: Problem, seed: int) -> list[Case]:
    visible = problem.spec.cases.visible
    cases = make_cases(problem.spec, seed)
    return [case for case in cases if visible is not None and case.name not in visible]


def _arrays(case: Case) -> set[tuple[float, ...]]:
    return {arg.values for arg in case.args if isinstance(arg, ArrayArg)}


# --------------------------------------------------------------------------------------------
# What a pack holds
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["problem", "toy"])
def test_no_grading_seed_draws_a_practice_case(which: str, request: pytest.FixtureRequest) -> None:
    problem: Problem = request.getfixturevalue(which)
    spec = problem.spec
    practice = [c for seed in (PACK_SEED, PRACTICE_SEEDS.start) for c in practice_cases(spec, seed)]
    practice_args = {case.args for case in practice}
    practice_arrays = set().union(*(_arrays(case) for case in practice))
    # Ordinary seeds, and those whose 32-bit words sit at the edges of the practice range's.
    seeds = [*range(1000), 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**62, MAX_SEED - 1, MAX_SEED]
    for seed in seeds:
        for case in make_cases(spec, seed):
            assert case.args not in practice_args, f"grading seed {seed} draws a practice case"
            # Not even one input array is shared (x arrays with their own signs and scales).
            assert not _arrays(case) & practice_arrays, (seed, case.name)


def test_pack_has_no_hidden_edge_case_and_no_grading_seed(problem: Problem) -> None:
    spec = problem.spec
    assert spec.cases.visible is not None
    hidden = {edge.name for edge in spec.cases.edge} - set(spec.cases.visible)
    assert hidden  # the real problem hides some edge cases: the test means something
    names = [case.name for case in practice_cases(spec, PACK_SEED)]
    assert not hidden & set(names)
    assert names == [*spec.cases.visible, "practice 1", "practice 2", "practice 3"]
    # A grading cannot be asked for a pack seed, nor a pack for a grading seed.
    with pytest.raises(ValueError, match="grading seed"):
        make_cases(spec, PACK_SEED)
    with pytest.raises(ValueError, match="practice seed"):
        make_cases(spec, MAX_SEED, practice=True)


def test_pack_holds_no_code(toy: Problem, toy_pack_dir: Path) -> None:
    text = (toy_pack_dir / PACK_FILE).read_text()
    reference = toy.reference_path.read_text()
    for line in reference.splitlines():
        if len(line.strip()) > 12:
            assert line.strip() not in text, line
    for word in ("def ", "import ", "lambda", "magnitudes", str(toy.reference_path.parent)):
        assert word not in text


def test_pack_round_trips_through_its_model(toy_pack_dir: Path, toy_pack: PracticePack) -> None:
    raw = (toy_pack_dir / PACK_FILE).read_text()
    assert PracticePack.model_validate_json(raw) == toy_pack
    assert PracticePack.model_validate_json(toy_pack.model_dump_json()) == toy_pack
    assert toy_pack.digest == toy_pack.content_digest()
    assert toy_pack.seed == PACK_SEED
    assert [c.case.index for c in toy_pack.cases] == list(range(len(toy_pack.cases)))


def test_pack_schema_documents_every_field() -> None:
    result = CliRunner().invoke(cli, ["schema", "--pack"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "PracticePack"
    for name, model in schema["$defs"].items():
        for field, body in model.get("properties", {}).items():
            assert body.get("description"), f"{name}.{field} has no description"


# What a tamperer changes, and the message a student must get.
TAMPERING = [
    ("an expected value", lambda d: d["cases"][0]["expected"].__setitem__(1, 1.5), "changed"),
    ("a tolerance", lambda d: d["problem"]["outputs"][1].__setitem__("rtol", 1.0), "changed"),
    ("the digest", lambda d: d.__setitem__("digest", "0" * 64), "changed"),
    ("a removed field", lambda d: d.pop("reference_sha256"), "not a valid practice pack"),
    ("a case index", lambda d: d["cases"][1]["case"].__setitem__("index", 0), "has index 0"),
    ("a grading seed", lambda d: d.__setitem__("seed", 7), "not a valid practice pack"),
]


@pytest.mark.parametrize(("what", "change", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampered_pack_is_refused(
    what: str, change: object, message: str, toy_pack_dir: Path, tmp_path: Path
) -> None:
    data = json.loads((toy_pack_dir / PACK_FILE).read_text())
    change(data)  # type: ignore[operator]
    (tmp_path / PACK_FILE).write_text(json.dumps(data))
    with pytest.raises(InvalidPack, match=message):
        load_pack(tmp_path)
    submissions, reference = InProcessRunner(), InProcessRunner()
    correct = str(TOY / "submissions" / "correct.py")
    result = invoke(Setup(submissions, reference), "check", correct, "--pack", str(tmp_path))
    assert result.exit_code == 2
    assert submissions.requests == reference.requests == []  # refused before anything ran
    assert message in result.output and "Download the pack again" in result.output


def test_unreadable_pack_is_refused(tmp_path: Path) -> None:
    (tmp_path / PACK_FILE).write_text("{not json")
    with pytest.raises(InvalidPack, match="not a valid practice pack"):
        load_pack(tmp_path)
    with pytest.raises(InvalidPack, match="cannot read the practice pack"):
        load_pack(tmp_path / "missing.json")


# --------------------------------------------------------------------------------------------
# Practice on the toy problem
# --------------------------------------------------------------------------------------------


def test_practice_on_the_toy_grades_through_the_same_code(
    toy_pack: PracticePack, toy_pack_dir: Path, runner: InProcessRunner
) -> None:
    practice = practice_problem(toy_pack, toy_pack_dir)
    correct = check_practice(TOY / "submissions" / "correct.py", practice, runner=runner)
    assert correct.full_marks and correct.practice is not None
    assert correct.max_score == 2.0 * len(toy_pack.cases)
    assert correct.practice.pack_digest == toy_pack.digest
    wrong = check_practice(TOY / "submissions" / "wrong_peak.py", practice, runner=runner)
    assert not wrong.full_marks
    assert {o.name for c in wrong.cases for o in c.outputs if not o.passed} == {"peak"}


def _cli_check(*args: str, env: dict[str, str] | None = None) -> Result:
    """`grader check` in this process on in-process runners."""
    return invoke(Setup(InProcessRunner(), InProcessRunner()), "check", *args, env=dict(env or {}))


def test_check_with_a_pack_says_practice_first(toy_pack_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _cli_check(
        str(TOY / "submissions" / "correct.py"), "--pack", str(toy_pack_dir), "--json", str(out)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("PRACTICE RUN on the 7 public cases")
    report = Report.model_validate_json(out.read_text())
    assert report.practice is not None and report.full_marks
    assert all(case.visible for case in report.cases)  # public cases: nothing to hide


def test_check_finds_the_pack_when_the_reference_is_missing(
    toy_pack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(toy_pack_dir, tmp_path / "packs" / "vector_stats")
    (tmp_path / "empty").mkdir()
    env = {"GRADER_PROBLEMS_DIR": str(TOY / "problems"), "GRADER_REFERENCE_DIR": "empty"}
    result = _cli_check(str(TOY / "submissions" / "wrong_peak.py"), env=env)
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("No reference solution here: practising on the public pack")
    assert "packs/vector_stats" in " ".join(lines[:2])
    assert next(line for line in lines if "PRACTICE RUN" in line or "points" in line).startswith(
        "PRACTICE RUN"
    )
    # No spec either (a student's installed grader): the pack is found by the function.
    env["GRADER_PROBLEMS_DIR"] = "empty"
    result = _cli_check(str(TOY / "submissions" / "correct.py"), env=env)
    assert result.exit_code == 0, result.stderr
    assert "PRACTICE RUN" in result.stdout
    # An edited pack found there is refused as such, not taken for a missing one.
    found = tmp_path / "packs" / "vector_stats" / PACK_FILE
    found.write_text(found.read_text().replace('"title": "Vector', '"title": "Edited'))
    result = _cli_check(str(TOY / "submissions" / "correct.py"), env=env)
    assert result.exit_code == 2
    assert "has been changed since course staff made it" in " ".join(result.stderr.split())
    # Without a pack it says where one would be looked for.
    shutil.rmtree(tmp_path / "packs")
    result = _cli_check(str(TOY / "submissions" / "correct.py"), env=env)
    assert result.exit_code == 2
    assert "put the problem's practice pack in packs/" in result.stderr


def test_seed_is_refused_with_a_pack(toy_pack_dir: Path) -> None:
    correct = str(TOY / "submissions" / "correct.py")
    result = _cli_check(correct, "--pack", str(toy_pack_dir), "--seed", "3")
    assert result.exit_code == 2
    assert "a practice run always uses the pack's cases" in result.output


def test_other_library_versions_are_reported(
    toy_pack: PracticePack, tmp_path: Path, runner: InProcessRunner
) -> None:
    versions = toy_pack.versions.model_copy(update={"jax": "0.0.1"})
    older = seal(toy_pack.model_copy(update={"versions": versions}))
    write_pack(older, tmp_path)
    practice = practice_problem(older, tmp_path)
    report = check_practice(TOY / "submissions" / "correct.py", practice, runner=runner)
    assert report.practice is not None and report.practice.version_note is not None
    assert "jax 0.0.1 (here " in report.practice.version_note
    assert report.full_marks  # the toy needs no jax: same verdict
    result = _cli_check(str(TOY / "submissions" / "correct.py"), "--pack", str(tmp_path))
    assert "note: This pack was made with jax 0.0.1" in " ".join(result.output.split())


@pytest.mark.skipif(full_isolation_problem() is not None, reason="needs root to drop it")
def test_basic_isolation_gives_the_same_practice_verdicts(
    toy_pack: PracticePack, toy_pack_dir: Path, tmp_path: Path
) -> None:
    # A student's machine: no root, no namespaces (a root without capabilities has neither).
    practice = practice_problem(toy_pack, toy_pack_dir)
    runner = Setup.for_student().submissions  # the real sandbox, with full isolation
    for path in TOY_SUBMISSIONS:
        out = tmp_path / f"{path.stem}.json"
        subprocess.run(
            [
                shutil.which("setpriv") or "setpriv",
                "--bounding-set=-all",
                "--inh-caps=-all",
                sys.executable,
                "-m",
                "grader",
                "check",
                str(path),
                "--pack",
                str(toy_pack_dir),
                "--json",
                str(out),
            ],
            capture_output=True,
            check=False,
            timeout=180,
        )
        basic = Report.model_validate_json(out.read_text())
        full = check_practice(path, practice, runner=runner)
        assert (basic.isolation, full.isolation) == ("basic", "full")
        assert _verdicts(basic) == _verdicts(full), path.name


# --------------------------------------------------------------------------------------------
# Practice verdict == real verdict, case by case
# --------------------------------------------------------------------------------------------


def _verdicts(report: Report) -> tuple[object, ...]:
    """What must agree: status, score, every case's verdict and message, the hints."""
    cases = tuple(
        (
            c.index,
            c.name,
            c.passed,
            c.reason,
            c.message,
            tuple((o.name, o.passed) for o in c.outputs),
        )
        for c in report.cases
    )
    hints = tuple((h.id, h.cases) for h in report.hints)
    return (report.status, report.score, report.max_score, cases, hints)


class Replay:
    """Runs each submission once for real and replays that run for its second grading, so both
    gradings judge the very same outputs and the JAX corpus costs one run per file."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.runs: dict[str, tuple[RunRequest, RunResult]] = {}

    def isolation(self):
        return self.runner.isolation()

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        seen = self.runs.get(request.display_name)
        if seen is None:
            result = self.runner.run(request, limits)
            self.runs[request.display_name] = (request, result)
            return result
        first, result = seen
        assert (first.cases, first.function) == (request.cases, request.function)
        return result


def _both_ways(
    real: Problem, pack: Practice, paths: list[Path], runner: Runner, limits: Limits | None = None
) -> Iterator[tuple[Path, Report, Report]]:
    expected = run_reference(real, pack.expected.cases, runner=InProcessRunner())
    for path in paths:
        graded = grade(
            path, problem=real, seed=pack.pack.seed, expected=expected, runner=runner, limits=limits
        )
        practised = check_practice(path, pack, runner=runner, limits=limits)
        yield path, graded, practised


def test_toy_practice_verdicts_equal_real_ones(
    toy: Problem,
    toy_pack: PracticePack,
    toy_pack_dir: Path,
    tmp_path: Path,
    runner: InProcessRunner,
) -> None:
    invalid = tmp_path / "invalid.py"
    invalid.write_text("def vector_stats(x, k):\n    return [len(x), float('nan'), 1.0]\n")
    raises = tmp_path / "raises.py"
    raises.write_text("def vector_stats(x, k):\n    return [len(x), 1 / k, max(abs(x))]\n")
    paths = [*TOY_SUBMISSIONS, invalid, raises]
    practice = practice_problem(toy_pack, toy_pack_dir)
    seen = set()
    for path, graded, practised in _both_ways(toy, practice, paths, runner):
        assert _verdicts(practised) == _verdicts(graded), path.name
        seen |= {case.reason for case in graded.cases}
    assert {"passed", "wrong_output", "invalid_output", "exception"} <= set(seen)


CORPUS = sorted(
    path
    for folder in ("correct", "wrong", "faults")
    for path in (SUBMISSIONS / folder).glob("*.py")
)


@pytest.fixture(scope="session")
def real_pack(problem: Problem, tmp_path_factory: pytest.TempPathFactory) -> Practice:
    folder = tmp_path_factory.mktemp("real-pack")
    write_pack(make_pack(problem, seed=PACK_SEED, runner=InProcessRunner()), folder)
    return practice_problem(load_pack(folder), folder)


# Run in the sandbox even among the wrong files: it turns jax_enable_x64 on for its whole
# process, which in this one would change every later JAX computation of the test run.
CHANGES_THE_PROCESS = {SUBMISSIONS / "wrong" / "x64_enabled.py"}


class FaultsInTheSandbox:
    """The corpus's faults (they exit the process, loop forever) run in the sandbox, as does a
    file that changes its process's JAX; the other correct and wrong files, which only
    compute, in this process."""

    def __init__(self) -> None:
        self.sandbox = Setup.for_student().submissions
        self.in_process = InProcessRunner()

    def isolation(self) -> Isolation:
        return self.sandbox.isolation()

    def cancel(self) -> None:
        self.sandbox.cancel()

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        path = Path(request.display_name)
        sandboxed = path.parent.name == "faults" or path in CHANGES_THE_PROCESS
        return (self.sandbox if sandboxed else self.in_process).run(request, limits)


@pytest.mark.slow
def test_real_problem_practice_verdicts_equal_real_ones(
    problem: Problem, real_pack: Practice
) -> None:
    assert len(CORPUS) >= 30
    # Short limits so that the endless loop costs seconds; every other file is far inside them.
    limits = problem.spec.limits.model_copy(update={"case_seconds": 2, "total_seconds": 8})
    runner = Replay(FaultsInTheSandbox())
    reasons, hints = set(), set()
    for path, graded, practised in _both_ways(problem, real_pack, CORPUS, runner, limits):
        assert _verdicts(practised) == _verdicts(graded), path.name
        assert practised.practice is not None and graded.practice is None
        reasons |= {case.reason for case in graded.cases}
        hints |= {hint.id for hint in graded.hints}
    # The corpus reaches every kind of verdict and hint the comparison could get wrong.
    assert {"passed", "wrong_output", "invalid_output", "exception", "timeout"} <= reasons
    assert {"state_keys", "no_bias", "swapped", "float_seed"} <= hints


def test_practice_verdict_golden(
    request: pytest.FixtureRequest, toy_pack: PracticePack, toy_pack_dir: Path
) -> None:
    """The practice banner comes first; a forged pack's strings are shown inert."""
    practice = practice_problem(toy_pack, toy_pack_dir)
    fake = FakeRunner(lambda x, k: [len(x), float(sum(x) * k), 0.0])
    report = check_practice(TOY / "submissions" / "wrong_peak.py", practice, runner=fake)
    info = report.practice
    assert info is not None
    info = info.model_copy(
        update={"version_note": f"made with jax {OSC8}", "pack_digest": "ab" * 32}
    )
    fixed = report.model_copy(
        update={
            "practice": info,
            "seconds": 1.25,
            "created": "2026-01-01T00:00:00+00:00",
            "submission": report.submission.model_copy(update={"path": "wrong_peak.py"}),
        }
    )
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None, force_terminal=False).print(verdict(fixed))
    text = buffer.getvalue()
    assert text.startswith("PRACTICE RUN on the 7 public cases of a pack, not a grade.")
    assert "\x1b" not in text
    assert_golden(request, "practice-verdict.txt", text)
