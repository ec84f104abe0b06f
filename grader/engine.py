"""The grading engine: every way in grades through it.

`grader check`, `batch`, `ci`, `pr grade`, the service and its queue workers, Gradescope's
autograder and the in-notebook check all do the same three things, here:

- `Catalog.target` answers "which problem, or which practice pack?" for a file, in one order
  (see `Catalog`);
- `Setup` holds the outside world, chosen once at the top by the door: which runner runs
  submissions, which runs the trusted reference, and whether on-disk caches can be trusted.
  `Setup.for_student`, `Setup.for_staff` and `Setup.for_gradescope` are the real ones, and the
  only place in grader/ where runners are built (a test guards it); tests pass their own;
- `Grader.grade` grades a file (or `grade_bytes` an upload) and never raises for a student's
  file: whatever goes wrong on the grader's side while grading it becomes that file's report,
  status crashed, saying so (`Graded.fault`). It raises only for faults of the course's
  set-up that would fail every file alike (a reference that fails, a sandbox that cannot be
  had, a problem that cannot be loaded) and for `Cancelled` (staff stopped the grading).

A `Graded` holds the staff report and the student's view of it (`feedback.student_view`, made
here and nowhere else).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from grader import pack as packs
from grader.cases import make_cases, random_seed
from grader.errors import (
    GraderError,
    ProblemError,
    ReferenceFailed,
    SandboxUnavailable,
    UnknownProblem,
    UsageError,
)
from grader.feedback import student_view
from grader.grading import (
    Expected,
    grade,
    grader_fault_report,
    is_grader_fault,
    parse_failure,
    prepare,
    run_reference,
)
from grader.ipynb import SUBMISSION_SUFFIXES
from grader.models import Isolation, Limits, Report
from grader.pack import Practice
from grader.problems import Problem, find_problem, load_problem
from grader.run import Cancelled, Runner, SandboxPolicy, SubprocessRunner, full_isolation_problem
from grader.run.policy import run_uid_problem

# Faults of the course's set-up, not of one file: they stop a grading (every file would fail).
# (A sandbox that cannot be had at all is one too: `Grader.grade` asks for it before the file
# is graded. Raised while one file runs, as when its processes cannot be killed, it is that
# file's fault report, so that a batch still finishes.)
COURSE_FAULTS: tuple[type[BaseException], ...] = (
    ProblemError,
    ReferenceFailed,
    UsageError,
    Cancelled,
)


# --------------------------------------------------------------------------------------------
# Which problem or pack


@dataclass(frozen=True)
class Target:
    """What a file is graded against: a problem with its reference, or a practice pack."""

    problem: Problem
    practice: Practice | None = None
    # The pack found where packs live for want of the reference (the student is told so).
    found_pack: Path | None = None


@dataclass(frozen=True)
class Catalog:
    """Where problems, references and packs are; answers which one a file is graded against.

    The order, for every door (`grader check`, the in-notebook check, the service):

    1. a pack named by the caller (`--pack`, `pack=`) is practised on;
    2. else, where the reference is here: the problem named (`--problem`), else the only one,
       else the one whose function the file defines;
    3. else a practice pack where packs live (`packs/<id>/`, `$GRADER_PACKS_DIR`): the one for
       the problem named (or the problem step 2 found without its reference), else the one
       whose function the file defines, else the only pack there, so a file that does not
       parse or misnames its function still gets its verdict from the pack;
    4. else UnknownProblem, saying where neither was found and what to do.
    """

    problems_dir: Path | None = None
    reference_dir: Path | None = None

    def problem(self, problem_id: str) -> Problem:
        """A problem with its reference (staff commands)."""
        return load_problem(
            problem_id, problems_dir=self.problems_dir, reference_dir=self.reference_dir
        )

    def find(self, source: str | None, problem_id: str | None = None) -> Problem:
        """The problem (with its reference) a file answers: named, the only one, or found."""
        return find_problem(
            source,
            problem_id=problem_id,
            problems_dir=self.problems_dir,
            reference_dir=self.reference_dir,
        )

    def target(
        self, source: str, *, problem_id: str | None = None, pack: Path | None = None
    ) -> Target:
        """What to grade a file's source against, in the order above."""
        if pack is not None:
            chosen = _practice(pack, problem_id)
            return Target(chosen.problem, chosen)
        try:
            return Target(self.find(source, problem_id))
        except UnknownProblem as missing:
            wanted = getattr(missing, "problem_id", None) or problem_id
            found = packs.find_pack(source, wanted)
            if found is None:
                where = f"packs/{wanted or '<problem id>'}/"
                raise UnknownProblem(
                    f"found neither the reference solution nor a practice pack for this file. "
                    f"To practise without the reference, put the problem's practice pack in "
                    f"{where} (or point --pack at it); see the README, 'For students'. Looking "
                    f"for the reference: {missing}"
                ) from missing
            practice = _practice(found, problem_id)
            return Target(practice.problem, practice, found)


def _practice(location: Path, problem_id: str | None) -> Practice:
    pack = packs.load_pack(location)
    if problem_id is not None and problem_id != pack.problem.id:
        raise UsageError(f"the pack at {location} is for {pack.problem.id!r}, not {problem_id!r}")
    return packs.practice_problem(pack, location)


# --------------------------------------------------------------------------------------------
# The outside world


@dataclass(frozen=True)
class Setup:
    """Which runners grade, and whether caches a submission could have written are trusted."""

    submissions: Runner
    reference: Runner
    trust_caches: bool = True
    # For staff, when submissions get less than full isolation: what that leaves open.
    warning: str | None = None

    @classmethod
    def for_student(cls, *, require_sandbox: bool = False) -> Setup:
        """Checking one's own file: whatever isolation this machine gives."""
        policy = SandboxPolicy(require_full=require_sandbox)
        return cls(SubprocessRunner(policy=policy), SubprocessRunner(trusted=True))

    @classmethod
    def for_staff(
        cls,
        *,
        require_sandbox: bool = False,
        allow_basic: bool = False,
        protect: tuple[Path, ...] = (),
    ) -> Setup:
        """Grading other people's files: full isolation, or basic isolation only when staff
        allow it (and then no on-disk cache a submission could have written is trusted)."""
        policy = SandboxPolicy(require_full=require_sandbox, protect=protect)
        runner = SubprocessRunner(policy=policy)
        if runner.isolation() == "full":
            return cls(runner, SubprocessRunner(trusted=True))
        why = full_isolation_problem() or "it is not available"
        if not allow_basic:
            raise UsageError(
                f"grading other people's submissions needs full isolation, which is not "
                f"available here: {why}. Run the grader as root on Linux (as CI runners and "
                f"course servers do), or pass --allow-basic-isolation to grade with resource "
                f"limits only (a submission could then read this account's files and "
                f"environment; see docs/sandbox.md)."
            )
        uid_problem = run_uid_problem()
        who = (
            "each submission runs as an unprivileged uid of its own, whose every process is "
            "killed when its run ends"
            if uid_problem is None
            else f"submissions run as your own user ({uid_problem})"
        )
        warning = f"grading with basic isolation ({why}): {who}; caches are not trusted."
        reference = SubprocessRunner(trusted=True, compilation_cache=False)
        return cls(runner, reference, trust_caches=False, warning=warning)

    @classmethod
    def for_gradescope(cls) -> Setup:
        """Gradescope's container: whatever isolation it gives (run_autograder says which);
        caches are trusted only with full isolation."""
        runner = SubprocessRunner()
        full = runner.isolation() == "full"
        return cls(runner, SubprocessRunner(trusted=True, compilation_cache=full), full)

    @classmethod
    def for_queue_sender(cls) -> Setup:
        """A door that grades nothing here (`grader batch --queue`: the workers grade)."""
        return cls(SubprocessRunner(), SubprocessRunner(trusted=True))

    def cancel(self) -> None:
        """Stop every run in progress (Ctrl-C, a service stopping)."""
        self.submissions.cancel()
        self.reference.cancel()


@dataclass
class World:
    """How the commands build their Setups; tests give one that returns their own."""

    student: Callable[..., Setup] = Setup.for_student
    staff: Callable[..., Setup] = Setup.for_staff
    gradescope: Callable[[], Setup] = Setup.for_gradescope
    queue_sender: Callable[[], Setup] = Setup.for_queue_sender
    # `grader check` may hand its grading to the warm daemon (grader/daemon.py), which grades
    # with `Setup.for_student` too; a World of a test's own Setup never does.
    daemon: bool = True

    @classmethod
    def of(cls, setup: Setup) -> World:
        """Every door gets this one Setup (tests)."""
        return cls(
            student=lambda **_: setup,
            staff=lambda **_: setup,
            gradescope=lambda: setup,
            queue_sender=lambda: setup,
            daemon=False,
        )


# --------------------------------------------------------------------------------------------
# Grading


@dataclass(frozen=True)
class Graded:
    """One file's grading: the staff report and what its student may see of it."""

    staff: Report
    fault: bool = False  # the grader failed on it, not the student: grade it again later

    @cached_property
    def student(self) -> Report:
        """The student's view: hidden cases' inputs and values and the seed withheld."""
        return student_view(self.staff)

    @cached_property
    def student_with_seed(self) -> Report:
        """The student's view on a machine that has the reference (hence every hidden case)
        already: `grader check` keeps the seed, so the student can repeat the grading."""
        return student_view(self.staff, keep_seed=True)


@dataclass
class Grader:
    """Grades files against problems or packs with one Setup; shares reference runs."""

    setup: Setup
    # Reference outcomes kept in memory, newest last (a service draws a seed per upload).
    keep: int = 256
    _expected: OrderedDict[tuple[str, int], Expected] = field(
        default_factory=OrderedDict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expected(self, problem: Problem, seed: int) -> Expected:
        """The reference's outcomes on the seed's cases: run once per grader (and kept on
        disk when caches are trusted), shared by every file graded on that seed."""
        key = (problem.key, seed)
        with self._lock:
            known = self._expected.get(key)
            if known is not None:
                self._expected.move_to_end(key)
                return known
        try:
            expected = run_reference(
                problem,
                make_cases(problem.spec, seed),
                runner=self.setup.reference,
                use_cache=self.setup.trust_caches,
            )
        except SandboxUnavailable as exc:  # the trusted side's: every file would fail alike
            raise ReferenceFailed(f"the reference could not be run: {exc}") from exc
        with self._lock:
            self._expected[key] = expected
            while len(self._expected) > self.keep:
                self._expected.popitem(last=False)
        return expected

    def grade(
        self,
        path: Path,
        target: Target | Problem,
        *,
        seed: int | None = None,
        display_name: str | None = None,
        limits: Limits | None = None,
    ) -> Graded:
        """Grade one file. Never raises for the file: only COURSE_FAULTS come out."""
        target = _as_target(target)
        if target.practice is not None:
            if seed is not None:
                raise UsageError(
                    "--seed chooses the cases of a real grading; a practice run always uses the "
                    "pack's cases. Leave out --seed."
                )
            seed = target.practice.pack.seed
        seed = random_seed() if seed is None else seed
        name = display_name or str(path)
        self.setup.submissions.isolation()  # SandboxUnavailable: no file can be graded here
        try:
            report = self._grade(path, target, seed, name, limits)
        except COURSE_FAULTS:
            raise
        except Exception as exc:  # a grading never dies of one student
            return self.fault(path, target, seed=seed, error=exc, display_name=name)
        return Graded(report)

    def _grade(
        self, path: Path, target: Target, seed: int, name: str, limits: Limits | None
    ) -> Report:
        runner = self.setup.submissions
        if target.practice is not None:
            return packs.check_practice(
                path, target.practice, runner=runner, limits=limits, display_name=name
            )
        problem = target.problem
        started = time.monotonic()
        # A file that is not Python at all is reported at once, before the reference runs.
        prepared = prepare(path, name)
        early = prepared.failure
        if early is None and prepared.notebook is None:
            early = parse_failure(prepared.code, name)
        if early is not None:
            prepared = prepared.failing(early)
            return grade(
                path,
                problem=problem,
                seed=seed,
                expected=Expected.nothing_ran(problem, seed),
                runner=runner,
                display_name=name,
                prepared=prepared,
            )
        expected = self.expected(problem, seed)
        report = grade(
            path,
            problem=problem,
            seed=seed,
            expected=expected,
            runner=runner,
            limits=limits,
            display_name=name,
            prepared=prepared,
        )
        # What the student waited for: the reference's run counts too.
        return report.model_copy(update={"seconds": time.monotonic() - started})

    def grade_bytes(
        self,
        content: bytes,
        target: Target | Problem,
        *,
        suffix: str,
        file_name: str,
        seed: int | None,
    ) -> Graded:
        """Grade an upload (the service, its queue workers), from `written_upload`'s private
        copy. An upload always ends in a report, even on a fault of the
        course's set-up (a failing reference): the service must go on; only Cancelled (the
        service is stopping) comes out."""
        if suffix not in SUBMISSION_SUFFIXES:
            raise ValueError(f"suffix {suffix!r} is not one of {SUBMISSION_SUFFIXES}")
        target = _as_target(target)
        if target.practice is None and seed is None:
            seed = random_seed()
        with written_upload(content, suffix) as path:
            try:
                return self.grade(path, target, seed=seed, display_name=file_name)
            except Cancelled:
                raise
            except Exception as exc:
                used = target.practice.pack.seed if target.practice is not None else seed
                assert used is not None
                return self.fault(path, target, seed=used, error=exc, display_name=file_name)

    def fault_bytes(
        self,
        content: bytes,
        target: Target | Problem,
        *,
        file_name: str,
        seed: int,
        error: Exception,
    ) -> Graded:
        """`fault` for an upload that is not graded (its hash and size still reported)."""
        with written_upload(content, "") as path:
            return self.fault(path, target, seed=seed, error=error, display_name=file_name)

    def fault(
        self,
        path: Path,
        target: Target | Problem,
        *,
        seed: int,
        error: Exception,
        display_name: str | None = None,
    ) -> Graded:
        """The report of a file the grader failed on: crashed, saying it is not the student's
        fault, named as the student named the file."""
        report = grader_fault_report(
            path,
            problem=_as_target(target).problem,
            seed=seed,
            isolation=_isolation_or_none(self.setup.submissions),
            error=error,
        )
        if display_name is not None:
            submission = report.submission.model_copy(update={"path": display_name})
            report = report.model_copy(update={"submission": submission})
        return Graded(report, fault=True)


class SeedPool:
    """Fresh grading seeds whose reference outcomes were computed ahead of time.

    Gradings that draw a seed per submission (the service, a student's `grader check`) take
    one here: a ready seed when there is one, so that only the submission runs when it is
    graded, else a fresh seed (the reference then runs with the grading). Each seed is handed
    out once: no two students share one. `fill` readies one more seed of a problem, up to
    `size`; call it when idle (the service's workers when the queue is empty, the daemon after
    answering). The outcomes are kept by the Grader (and on disk, when caches are trusted).
    """

    def __init__(self, grader: Grader, size: int = 4) -> None:
        self.grader = grader
        self.size = size
        self._ready: dict[str, list[int]] = {}
        self._filling: dict[str, int] = {}
        self._changed = threading.Condition()

    def take(self, problem: Problem, *, wait: float = 0.0) -> int:
        """A seed for one grading: ready if one is (waiting up to `wait` seconds for one being
        readied), else fresh."""
        key = problem.key
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                ready = self._ready.get(key)
                if ready:
                    return ready.pop(0)
                left = deadline - time.monotonic()
                if not self._filling.get(key) or left <= 0:
                    return random_seed()
                self._changed.wait(left)

    def give_back(self, problem: Problem, seed: int) -> None:
        """A seed taken for an upload that was then refused (a rate limit): nobody was graded
        on it, nobody saw it, so it is the next one handed out."""
        with self._changed:
            self._ready.setdefault(problem.key, []).insert(0, seed)
            self._changed.notify_all()

    def ready(self, problem: Problem) -> int:
        """How many seeds of this problem are ready."""
        with self._changed:
            return len(self._ready.get(problem.key, ()))

    def fill(self, problem: Problem) -> bool:
        """Ready one more seed if fewer than `size` are; True when it did (a reference ran)."""
        key = problem.key
        with self._changed:
            if len(self._ready.get(key, ())) + self._filling.get(key, 0) >= self.size:
                return False
            self._filling[key] = self._filling.get(key, 0) + 1
        seed, readied = random_seed(), False
        try:
            self.grader.expected(problem, seed)
            readied = True
        finally:
            with self._changed:  # ready in the step it stops filling: no waiter misses it
                self._filling[key] -= 1
                if readied:
                    self._ready.setdefault(key, []).append(seed)
                self._changed.notify_all()
        return True


def _as_target(target: Target | Problem) -> Target:
    return target if isinstance(target, Target) else Target(target)


@contextlib.contextmanager
def written_upload(content: bytes, suffix: str) -> Iterator[Path]:
    """An upload's bytes in a private temporary folder, under a fixed name with its suffix
    (`submission.py`, `submission.ipynb`): nothing of the student's file name reaches the file
    system. Gone when the block ends."""
    with tempfile.TemporaryDirectory(prefix="grader-upload-") as folder:
        path = Path(folder) / f"submission{suffix}"
        path.write_bytes(content)
        yield path


def _isolation_or_none(runner: Runner) -> Isolation:
    try:
        return runner.isolation()
    except GraderError:
        return "none"


__all__ = [
    "COURSE_FAULTS",
    "Catalog",
    "Graded",
    "Grader",
    "SeedPool",
    "Setup",
    "Target",
    "World",
    "is_grader_fault",
    "written_upload",
]
