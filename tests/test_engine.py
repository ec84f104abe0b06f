"""The engine every door grades through: which problem or pack, runners built in one place,
a grading that never raises for a student's file, reference runs shared. On fakes: no test
here starts a process."""

from __future__ import annotations

import ast
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TOY

from grader.cli import cli
from grader.engine import Catalog, Grader, SeedPool, Setup, Target, World
from grader.errors import ReferenceFailed, SandboxUnavailable, UnknownProblem
from grader.feedback import GRADER_FAULT
from grader.models import Limits, RunRequest, Status
from grader.pack import PRACTICE_SEEDS, make_pack, write_pack
from grader.problems import Problem
from grader.run import FakeRunner, RunResult
from grader.run.fake import InProcessRunner

GRADER = Path(__file__).resolve().parent.parent / "grader"
CORRECT = TOY / "submissions" / "correct.py"
WRONG = TOY / "submissions" / "wrong_peak.py"


def in_process() -> Setup:
    return Setup(InProcessRunner(), InProcessRunner())


def test_runners_are_built_in_engine_py_only() -> None:
    """Every door gets its runners from a Setup: no module but engine.py builds one (so every
    runner can be replaced by a fake at the top)."""
    builders = []
    for path in sorted(GRADER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "SubprocessRunner":
                    builders.append(f"{path.relative_to(GRADER.parent)}:{node.lineno}")
    assert builders, "the scan found no SubprocessRunner at all: is it still in grader/?"
    assert all(b.startswith("grader/engine.py:") for b in builders), builders


# Which problem or pack -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_pack(tmp_path_factory: pytest.TempPathFactory, toy: Problem) -> Path:
    """packs/vector_stats/pack.json made by the toy reference (in process)."""
    root = tmp_path_factory.mktemp("packs-root")
    write_pack(
        make_pack(toy, seed=PRACTICE_SEEDS.start + 5, runner=InProcessRunner()),
        root / "packs" / "vector_stats",
    )
    return root


@pytest.fixture
def student_machine(tmp_path: Path, toy_pack: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """A student's machine: the toy spec, no reference, the pack under ./packs."""
    shutil.copytree(toy_pack / "packs", tmp_path / "packs")
    monkeypatch.chdir(tmp_path)
    return Catalog(TOY / "problems", tmp_path / "no-reference")


def test_the_reference_wins_where_it_is_here(toy_pack: Path, monkeypatch) -> None:
    monkeypatch.chdir(toy_pack)  # a pack is there too
    target = Catalog(TOY / "problems", TOY / "reference").target(CORRECT.read_text())
    assert target.practice is None and target.found_pack is None
    assert target.problem.reference_path.name == "vector_stats.py"


def test_without_the_reference_the_pack_is_found_and_named(student_machine: Catalog) -> None:
    target = student_machine.target(CORRECT.read_text())
    assert target.practice is not None
    assert target.found_pack == Path("packs/vector_stats")


@pytest.mark.parametrize(
    "source",
    ["def vector_stats(x, k)\n    return x\n", "def solve(x, k):\n    return [0.0, 0.0, 0.0]\n"],
    ids=["syntax-error", "misnamed-function"],
)
def test_a_file_that_does_not_load_gets_the_only_pack(student_machine: Catalog, source) -> None:
    """Issue 28.1: a syntax error or a misnamed function is that file's verdict on the pack,
    not 'no pack found'."""
    target = student_machine.target(source)
    assert target.practice is not None and target.problem.spec.id == "vector_stats"


def test_with_neither_the_student_is_told_where_to_put_the_pack(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownProblem, match=r"packs/vector_stats/"):
        Catalog(TOY / "problems", tmp_path).target(CORRECT.read_text())


# Grading -----------------------------------------------------------------------------------


def test_grades_a_file_in_process(toy: Problem) -> None:
    graded = Grader(in_process()).grade(CORRECT, toy, seed=3)
    assert graded.staff.status is Status.GRADED and graded.staff.full_marks
    assert not graded.fault
    wrong = Grader(in_process()).grade(WRONG, toy, seed=3)
    assert not wrong.staff.full_marks and wrong.staff.status is Status.GRADED


def test_the_student_view_withholds_hidden_cases_and_the_seed(problem: Problem) -> None:
    """A wrong answer on the real exercise (its reference run in process): the staff report
    has every case's inputs and the seed, the student's view neither for hidden cases."""
    setup = Setup(FakeRunner(lambda *args: [0.0, 0.0, 0.0]), InProcessRunner())
    graded = Grader(setup).grade(CORRECT, problem, seed=7, display_name="alice.py")
    hidden = [case for case in graded.student.cases if not case.visible]
    assert hidden and all(not case.passed for case in hidden)
    staff = {case.index: case for case in graded.staff.cases}
    for case in hidden:
        assert staff[case.index].inputs and case.inputs != staff[case.index].inputs
        assert all(check.expected is None for check in case.outputs)
    assert graded.student.seed is None
    assert graded.student_with_seed.seed == graded.staff.seed == 7


class Exploding(FakeRunner):
    """A runner that fails as a bug of the grader's own would."""

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        raise RuntimeError("disk full")


def test_a_fault_while_grading_a_file_is_that_files_report(toy: Problem) -> None:
    graded = Grader(Setup(Exploding(), InProcessRunner())).grade(
        CORRECT, toy, seed=3, display_name="alice.py"
    )
    assert graded.fault
    assert graded.staff.status is Status.CRASHED and graded.staff.score == 0
    assert graded.staff.message.startswith(GRADER_FAULT) and "disk full" in graded.staff.message
    assert graded.staff.submission.path == "alice.py"


class FailingReference(FakeRunner):
    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        raise ReferenceFailed("the reference raised")


def test_a_fault_of_the_course_stops_the_grading(toy: Problem) -> None:
    """A failing reference would fail every file alike: it is raised, not reported per file."""
    with pytest.raises(ReferenceFailed):
        Grader(Setup(InProcessRunner(), FailingReference(), trust_caches=False)).grade(
            CORRECT, toy, seed=3
        )


def test_an_upload_always_ends_in_a_report(toy: Problem) -> None:
    """The service goes on even when the course's set-up fails: the upload gets a report."""
    graded = Grader(Setup(InProcessRunner(), FailingReference(), trust_caches=False)).grade_bytes(
        CORRECT.read_bytes(), toy, suffix=".py", file_name="bob.py", seed=3
    )
    assert graded.fault and graded.staff.submission.path == "bob.py"


def test_a_syntax_error_is_reported_without_running_the_reference(toy: Problem) -> None:
    reference = InProcessRunner()
    graded = Grader(Setup(InProcessRunner(), reference)).grade_bytes(
        b"def vector_stats(x, k)\n", toy, suffix=".py", file_name="c.py", seed=3
    )
    assert graded.staff.status is Status.SYNTAX_ERROR
    assert reference.requests == []


def test_the_reference_runs_once_per_seed_and_is_forgotten_in_time(toy: Problem) -> None:
    reference = InProcessRunner()
    grader = Grader(Setup(InProcessRunner(), reference, trust_caches=False), keep=2)
    for path in (CORRECT, WRONG, CORRECT):
        grader.grade(path, toy, seed=11)
    assert len(reference.requests) == 1
    for seed in (12, 13, 11):  # 11 was pushed out by 12 and 13
        grader.expected(toy, seed)
    assert len(reference.requests) == 4


def test_a_practice_target_grades_on_the_packs_cases(student_machine: Catalog) -> None:
    target = student_machine.target(WRONG.read_text())
    graded = Grader(in_process()).grade(WRONG, target, seed=None)
    assert graded.staff.practice is not None
    assert graded.staff.seed == target.practice.pack.seed
    assert not graded.staff.full_marks


def test_practice_and_the_reference_agree_on_a_target(toy: Problem, student_machine) -> None:
    practice = student_machine.target(CORRECT.read_text())
    assert isinstance(practice, Target)
    assert Grader(in_process()).grade(CORRECT, practice).staff.full_marks


# The command line, in process -------------------------------------------------------------


def test_grader_check_runs_in_process_on_an_injected_setup(student_machine: Catalog) -> None:
    """Every command takes its Setup from the World it is given: here `grader check` on a
    student's machine (the pack, no reference), graded in this process, in milliseconds."""
    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        ["check", str(WRONG), "--problems-dir", str(TOY / "problems")],
        obj=World.of(in_process()),
    )
    assert result.exit_code == 1, result.output
    assert "practising on the public pack in packs/vector_stats" in result.output
    assert "cases passed" in result.output
    assert time.monotonic() - started < 20


# Seeds readied ahead ----------------------------------------------------------------------


def test_ready_seeds_are_handed_out_once_and_need_no_reference_run(toy: Problem) -> None:
    reference = InProcessRunner()
    grader = Grader(Setup(InProcessRunner(), reference, trust_caches=False))
    pool = SeedPool(grader, size=2)
    assert pool.fill(toy) and pool.fill(toy) and not pool.fill(toy)  # up to size
    assert len(reference.requests) == 2
    first, second = pool.take(toy), pool.take(toy)
    assert first != second and pool.ready(toy) == 0
    for seed in (first, second):
        assert grader.grade(CORRECT, toy, seed=seed).staff.full_marks
    assert len(reference.requests) == 2  # graded on outcomes computed ahead
    fresh = pool.take(toy)  # none ready: a fresh seed, its reference runs with its grading
    grader.grade(CORRECT, toy, seed=fresh)
    assert len(reference.requests) == 3


def test_a_seed_given_back_is_the_next_one_handed_out(toy: Problem) -> None:
    """An upload refused by a rate limit gives its seed back: refused uploads cannot drain
    the ready seeds (nobody was graded on it or saw it)."""
    pool = SeedPool(Grader(Setup(InProcessRunner(), InProcessRunner(), trust_caches=False)), 2)
    pool.fill(toy)
    seed = pool.take(toy)
    assert pool.ready(toy) == 0
    pool.give_back(toy, seed)
    assert pool.ready(toy) == 1 and pool.take(toy) == seed


def test_an_edited_reference_is_not_answered_from_memory(toy: Problem, tmp_path: Path) -> None:
    """The memory of reference outcomes is keyed by the spec and the reference's source."""
    import dataclasses

    copy = tmp_path / "vector_stats.py"
    copy.write_text(toy.reference_path.read_text())
    problem = dataclasses.replace(toy, reference_path=copy)
    reference = InProcessRunner()
    grader = Grader(Setup(InProcessRunner(), reference, trust_caches=False))
    grader.expected(problem, 5)
    grader.expected(problem, 5)
    assert len(reference.requests) == 1
    copy.write_text(copy.read_text() + "\n# edited\n")
    grader.expected(dataclasses.replace(problem), 5)  # loaded again, as each request does
    assert len(reference.requests) == 2
    grader.expected(problem, 5)  # the Problem read before the edit keeps its key
    assert len(reference.requests) == 2


# What the review of the engine found ----------------------------------------------------


def test_gradescope_with_basic_isolation_grades_after_removing_the_reference(
    tmp_path: Path,
) -> None:
    """Basic isolation (Gradescope's usual container): the reference is removed after its run
    and before the submission's; the grading still uses the outcomes computed first."""
    import json

    from grader.gradescope import CONFIG, run_autograder

    root = tmp_path / "autograder"
    for folder in ("source/problems", "source/reference", "submission", "results"):
        (root / folder).mkdir(parents=True)
    shutil.copy(TOY / "problems" / "vector_stats.toml", root / "source" / "problems")
    shutil.copy(TOY / "reference" / "vector_stats.py", root / "source" / "reference")
    (root / "source" / CONFIG).write_text(json.dumps({"problem": "vector_stats", "seed": 3}))
    shutil.copy(CORRECT, root / "submission" / "answer.py")
    setup = Setup(InProcessRunner(isolation="basic"), InProcessRunner(), trust_caches=False)
    assert run_autograder(root, setup=setup) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 8.0
    assert not (root / "source" / "reference").exists()


class KillFailsFor(InProcessRunner):
    """A sandbox that cannot end one file's processes (SubprocessRunner raises then)."""

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        if request.display_name.startswith("mallory"):
            raise SandboxUnavailable("processes of uid 61001 could not be killed within 10 s")
        return super().run(request, limits)


def test_a_batch_finishes_when_the_sandbox_fails_on_one_file(toy: Problem, tmp_path) -> None:
    from grader.batch import run_batch

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("alice", "mallory", "zoe"):
        shutil.copy(CORRECT, folder / f"{name}.py")
    grader = Grader(Setup(KillFailsFor(), InProcessRunner(), trust_caches=False))
    result = run_batch(folder, tmp_path / "out", problem=toy, grader=grader, seed=3, workers=1)
    assert result.grader_faults == {"mallory"}
    assert result.reports["zoe"].full_marks and result.reports["alice"].full_marks
    assert (tmp_path / "out" / "grades.csv").is_file()


def test_a_student_never_sees_what_failed_on_the_graders_side(toy: Problem) -> None:
    """The fault's details (here a failing reference's, with its path and source) are in the
    staff report only."""
    graded = Grader(Setup(InProcessRunner(), FailingReference(), trust_caches=False)).grade_bytes(
        CORRECT.read_bytes(), toy, suffix=".py", file_name="bob.py", seed=3
    )
    assert "the reference raised" in graded.staff.message
    assert "the reference raised" not in graded.student.model_dump_json()
    assert graded.student.message.startswith(GRADER_FAULT)
    assert "Course staff can see what went wrong" in graded.student.message
