"""Grade a submission: cases, reference run, submission run, comparison, report."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import re
import tempfile
import time
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from pydantic import TypeAdapter

from grader import __version__, ipynb
from grader.cache import cache_root, digest, library_versions
from grader.cases import make_cases
from grader.compare import judge_case
from grader.errors import GraderError, ReferenceFailed
from grader.feedback import GRADER_FAULT, diagnose
from grader.models import (
    HEADLINE,
    Case,
    CaseOutcome,
    CaseReason,
    CaseResult,
    CellSpan,
    ErrorInfo,
    Isolation,
    Limits,
    NotebookInfo,
    ProblemInfo,
    Report,
    RunRequest,
    Status,
    SubmissionInfo,
    Versions,
    headline_status,
)
from grader.problems import Problem
from grader.run import LoadFailure, Runner
from grader.run.runner import RunLimits
from grader.run.worker import describe_syntax_error
from grader.storage import read_regular, write_atomic

MAX_SOURCE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Expected:
    """The reference's outcome on every case of a case set."""

    cases: tuple[Case, ...]
    outcomes: dict[int, CaseOutcome]

    @classmethod
    def nothing_ran(cls, problem: Problem, seed: int) -> Expected:
        """The seed's cases with no outcome: for a report of a file that never ran."""
        return cls(cases=make_cases(problem.spec, seed), outcomes={})


def versions() -> Versions:
    """Versions of the software that grades, read without importing jax or flax."""

    def installed(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return Versions(
        python=platform.python_version(),
        jax=installed("jax"),
        flax=installed("flax"),
        grader=__version__,
    )


def request_for(
    problem: Problem, path: Path, display_name: str, cases: Sequence[Case], *, reference: bool
) -> RunRequest:
    """What to ask a worker for: the function of a file, called on the cases.

    The visible cases go first: a worker is given each case only after the last one's
    outcome (`runner._CaseFeed`), so what a submission says about a visible case (which a
    student sees) was said before it held any hidden case's inputs."""
    spec = problem.spec
    shown = spec.cases.visible
    if shown is not None:
        cases = sorted(cases, key=lambda case: case.name not in shown)  # stable
    return RunRequest(
        path=str(path.resolve()),
        display_name=display_name,
        function=spec.function,
        scale_function=spec.reference.scale_function if reference else None,
        variant_functions=tuple(m.function for m in spec.mistakes) if reference else (),
        parameter_names=tuple(p.name for p in spec.parameters),
        output_count=len(spec.outputs),
        cases=tuple(cases),
        private_paths=(str(problem.spec_path.parent), str(problem.reference_path.parent)),
    )


def run_reference(
    problem: Problem,
    cases: Sequence[Case],
    *,
    runner: Runner,
    use_cache: bool = True,
) -> Expected:
    """Expected outcomes from the reference solution, run in a process of its own.

    Kept on disk, keyed by the spec, the cases, the reference's source and the library
    versions, so a batch or a rerun with the same seed does not run the reference again.
    """
    if use_cache:
        cached = cached_reference(problem, cases)
        if cached is not None:
            return cached
    expected = _run_reference(problem, cases, runner)
    if use_cache:
        store_reference(problem, cases, list(expected.outcomes.values()))
    return expected


def _reference_cache_path(problem: Problem, cases: Sequence[Case]) -> Path:
    key = digest(
        problem.spec.model_dump_json(),
        json.dumps([case.model_dump(mode="json") for case in cases]),
        problem.reference_path.read_bytes(),
        library_versions(),
        __version__,
    )
    return cache_root() / "reference" / f"{problem.spec.id}-{key}.json"


def cached_reference(problem: Problem, cases: Sequence[Case]) -> Expected | None:
    """The reference's outcomes on these cases from the on-disk cache, if there."""
    try:
        outcomes = _OUTCOMES.validate_json(_reference_cache_path(problem, cases).read_bytes())
    except (OSError, ValueError):
        return None  # missing or unreadable: compute it again
    return Expected(cases=tuple(cases), outcomes={o.index: o for o in outcomes})


def store_reference(
    problem: Problem, cases: Sequence[Case], outcomes: Sequence[CaseOutcome]
) -> None:
    """Keep the reference's outcomes on these cases for the next grading or audit (a cache
    that cannot be written only costs time)."""
    with contextlib.suppress(OSError):
        write_atomic(
            _reference_cache_path(problem, cases), _OUTCOMES.dump_json(list(outcomes)).decode()
        )


_OUTCOMES: TypeAdapter[list[CaseOutcome]] = TypeAdapter(list[CaseOutcome])


def _run_reference(problem: Problem, cases: Sequence[Case], runner: Runner) -> Expected:
    request = request_for(
        problem, problem.reference_path, problem.reference_path.name, cases, reference=True
    )
    # The reference gets generous limits: it is trusted, and a slow machine must not make the
    # grader blame students for the reference's compile time.
    limits = problem.spec.limits.model_copy(
        update={"total_seconds": 10 * problem.spec.limits.total_seconds, "max_restarts": 0}
    )
    run = runner.run(request, limits)
    if run.load_failure is not None:
        raise ReferenceFailed(
            f"the reference solution {problem.reference_path} failed to load "
            f"({run.load_failure.status}): {run.load_failure.message}\n{run.stderr[-2000:]}"
        )
    outcomes: dict[int, CaseOutcome] = {}
    for case in cases:
        outcome = run.outcomes.get(case.index)
        if not isinstance(outcome, CaseOutcome) or outcome.kind != "returned":
            detail = getattr(outcome, "message", None) or getattr(outcome, "error", None)
            raise ReferenceFailed(
                f"the reference solution {problem.reference_path} gave no valid output for "
                f"case {case.index} ({case.name}): {detail}\n{run.stderr[-2000:]}"
            )
        outcomes[case.index] = outcome
    return Expected(cases=tuple(cases), outcomes=outcomes)


def grade(
    path: Path,
    *,
    problem: Problem,
    seed: int,
    expected: Expected,
    runner: Runner,
    limits: Limits | None = None,
    display_name: str | None = None,
    prepared: Prepared | None = None,
) -> Report:
    """Grade one file against expected outcomes already computed for the seed's cases
    (`prepared`: the file as `check` already read it, not to be read and converted again)."""
    started = time.monotonic()
    limits = limits or problem.spec.limits
    # The file is read once, here: what is hashed is what runs (the worker loads a private
    # copy, so a file changed or swapped for a FIFO while grading changes nothing).
    name = display_name or str(path)
    prepared = prepared or prepare(path, name)
    report = _Builder(problem, expected, prepared.info, seed, started, runner.isolation())
    report.notebook = prepared.notebook
    report.source = _SourceLines(name, prepared.code, prepared.cells)

    if prepared.failure is not None:
        return report.failed(prepared.failure)
    with tempfile.TemporaryDirectory(prefix="grader-submission-") as private:
        copy = Path(private) / "submission.py"
        copy.write_bytes(prepared.code)
        request = request_for(problem, copy, name, expected.cases, reference=False)
        # Classmates' files beside the original stay out of the submission's view.
        hide = (*request.private_paths, str(path.resolve().parent))
        request = request.model_copy(update={"private_paths": hide, "cells": prepared.cells})
        run = runner.run(request, limits)
    report.run_limits = run.run_limits
    report.own_uid = run.own_uid
    report.x64_enabled = run.x64_enabled
    if run.load_failure is not None:
        return report.failed(run.load_failure, run.stdout, run.stderr)
    results = [
        judge_case(
            case,
            problem.spec.outputs,
            expected.outcomes[case.index],
            run.outcomes.get(case.index),
            points=problem.spec.points_per_case,
            inputs=case.summary(request.parameter_names),
        )
        for case in expected.cases
    ]
    if run.total_timeout:
        passed = sum(result.passed for result in results)
        message = (
            f"Grading stopped after {limits.total_seconds:g} s of CPU time (or "
            f"{limits.wall_factor * limits.total_seconds:g} s of waiting), the limit for loading "
            f"your file and running every case ({passed} of {len(results)} cases had passed by "
            f"then). A timeout scores no points: make your function faster."
        )
        return report.failed(LoadFailure(Status.TIMEOUT, message), run.stdout, run.stderr, results)
    status = headline_status(result.reason for result in results)
    if status is not Status.GRADED:
        # The message of the first case that decided the status, so that the two agree.
        message = next((r.message for r in results if HEADLINE[r.reason] is status), "No case ran.")
        return report.failed(LoadFailure(status, message), run.stdout, run.stderr, results)
    graded = report.graded(results, run.stdout, run.stderr)
    if run.peak_rss_kib is None:
        return graded
    return graded.model_copy(update={"peak_memory_mib": round(run.peak_rss_kib / 1024, 1)})


def is_grader_fault(report: Report) -> bool:
    """Whether the report is `grader_fault_report`'s (to grade the file again later)."""
    return report.status is Status.CRASHED and report.message.startswith(GRADER_FAULT)


def grader_fault_report(
    path: Path,
    *,
    problem: Problem,
    seed: int,
    isolation: Isolation,
    error: Exception,
    expected: Expected | None = None,
) -> Report:
    """The report of a file the grader failed on (not the student's fault): status crashed,
    saying so, so that a batch still has a row and a report for every student."""
    if expected is None:
        expected = Expected.nothing_ran(problem, seed)
    try:
        raw = read_regular(path, read_limit(path.name))
    except GraderError:
        raw = b""
    submission = SubmissionInfo(
        path=path.name, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw)
    )
    builder = _Builder(problem, expected, submission, seed, time.monotonic(), isolation)
    message = (
        f"{GRADER_FAULT} ({type(error).__name__}: {error}). This is a "
        f"fault of the grading set-up, not of the submission; staff: rerun the same command "
        f"to grade it again."
    )
    return builder.failed(LoadFailure(Status.CRASHED, message))


@dataclass(frozen=True)
class Prepared:
    """A submission file as read once: its bytes (hashed in the report), the Python code that
    runs (the file itself, or the code kept from a notebook), and why it cannot run, if so."""

    info: SubmissionInfo
    code: bytes
    failure: LoadFailure | None = None
    cells: tuple[CellSpan, ...] = ()
    notebook: NotebookInfo | None = None

    def failing(self, failure: LoadFailure) -> Prepared:
        """The same file, found unable to run (a syntax error the trusted side parsed)."""
        return dataclasses.replace(self, failure=failure)


def read_limit(name: str) -> int:
    """How many bytes to read of a submission of this name (one more than it may have)."""
    return (ipynb.MAX_NOTEBOOK_BYTES if ipynb.is_notebook(name) else MAX_SOURCE_BYTES) + 1


def prepare(path: Path, name: str) -> Prepared:
    """Read a submission once (what is hashed is what runs) and screen it; a notebook (a file
    or display name ending in .ipynb) is turned into the code that runs (grader/ipynb.py)."""
    is_notebook = ipynb.is_notebook(path.name) or ipynb.is_notebook(name)
    raw = read_regular(path, read_limit(".ipynb" if is_notebook else name))
    info = SubmissionInfo(path=name, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))
    if not is_notebook:
        return Prepared(info, raw, screen_source(raw, name))
    converted = ipynb.convert(raw, name)
    if isinstance(converted, LoadFailure):
        return Prepared(info, b"", converted)
    code = converted.source.encode()
    failure = None
    if len(code) > MAX_SOURCE_BYTES:
        failure = LoadFailure(
            Status.FILE_TOO_LARGE,
            f"The code cells of {name} hold more than {MAX_SOURCE_BYTES} bytes of Python, the "
            f"most a submission may be.",
        )
    return Prepared(info, code, failure, converted.cells, converted.info)


def parse_failure(raw: bytes, name: str) -> LoadFailure | None:
    """A syntax error found by parsing the source here (only parsing: nothing runs)."""
    try:
        ast.parse(importlib.util.decode_source(raw), filename=name)
    except SyntaxError as exc:
        message, error = describe_syntax_error(exc, name)
        return LoadFailure(Status.SYNTAX_ERROR, message, error)
    except (ValueError, RecursionError, MemoryError, UnicodeDecodeError):
        return None  # the worker says what is wrong, in its own process
    return None


def screen_source(raw: bytes, name: str) -> LoadFailure | None:
    """Reject files that cannot be Python source before starting any process."""
    if len(raw) > MAX_SOURCE_BYTES:
        return LoadFailure(
            Status.FILE_TOO_LARGE,
            f"{name} is larger than {MAX_SOURCE_BYTES} bytes, the most a submission may be.",
        )
    if not raw.strip():
        return LoadFailure(
            Status.EMPTY_FILE,
            f"{name} is empty. Write your function in it and save the file before checking.",
        )
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(raw).readline)
    except SyntaxError as exc:
        # Raised for undecodable bytes in the first two lines, and for unknown declarations.
        declared_problem = str(exc)
        encoding = "utf-8"
    else:
        declared_problem = ""
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return LoadFailure(
            Status.ENCODING_ERROR,
            f"{name} is not a {encoding} text file: byte 0x{raw[exc.start]:02x} on line {line} "
            f"cannot be decoded. Save the file as UTF-8 text (is it really a .py file?).",
            ErrorInfo(type="UnicodeDecodeError", message=str(exc), line=line),
        )
    if declared_problem:
        return LoadFailure(
            Status.ENCODING_ERROR,
            f"{name} declares a source encoding Python cannot use ({declared_problem}). "
            f"Remove the '# -*- coding: ... -*-' line and save the file as UTF-8.",
        )
    return None


_LIBRARY_FOLDER = re.compile(r"(?:/[^\s'\"/]+)*/(?:site|dist)-packages/")


GRADER_CACHE = "<the grader's cache>"


def without_library_paths(text: str) -> str:
    """The text with the grading machine's library folders cut to `.../` (JAX's warnings in
    stderr name them): `.../jax/_src/compiler.py`, as in tracebacks; and the grader's cache
    folder, which a fully isolated run sees (JAX's compilation cache), named, not spelled."""
    cache = str(cache_root()).rstrip("/")
    if len(cache) > 1:
        text = text.replace(cache, GRADER_CACHE)
    return _LIBRARY_FOLDER.sub(".../", text)


class _SourceLines:
    """The lines of the file that ran, as the trusted side read it: a traceback's source
    lines are taken from here, not from the worker, where the submission can rewrite
    `linecache` (and so have a traceback quote anything, a hidden case's inputs included)."""

    def __init__(self, name: str, code: bytes, cells: Sequence[CellSpan]) -> None:
        self.name = name
        try:
            text = importlib.util.decode_source(code)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            text = ""
        self.lines = text.split("\n")
        self.cells = {f"{name}, cell {span.cell}": span for span in cells}

    def line(self, file: str, line: int) -> str:
        """The stripped source line, or '' for a frame outside the file."""
        span = self.cells.get(file)
        if span is not None:
            if not 1 <= line <= span.lines:
                return ""
            line += span.first_line - 1
        elif file != self.name or self.cells:
            return ""
        return self.lines[line - 1].strip()[:1000] if 1 <= line <= len(self.lines) else ""

    def error(self, error: ErrorInfo | None) -> ErrorInfo | None:
        """The exception with its own frames' source lines read from the file."""
        if error is None or not error.frames:
            return error
        frames = tuple(
            frame.model_copy(update={"source": self.line(frame.file, frame.line)})
            if frame.file == self.name or frame.file in self.cells
            else frame
            for frame in error.frames
        )
        return error.model_copy(update={"frames": frames})


class _Builder:
    """Assembles a Report; every path out of grading goes through it."""

    def __init__(
        self,
        problem: Problem,
        expected: Expected,
        submission: SubmissionInfo,
        seed: int,
        started: float,
        isolation: Isolation,
    ) -> None:
        self.isolation = isolation
        self.run_limits: RunLimits | None = None  # known once a process ran
        self.own_uid: bool | None = None  # known once a process ran
        self.x64_enabled: bool | None = None  # the submission's claim, for a hint only
        self.notebook: NotebookInfo | None = None
        self.source: _SourceLines | None = None  # known once the file was read
        self.problem = problem
        self.expected = expected
        self.submission = submission
        self.seed = seed
        self.started = started
        spec = problem.spec
        self.max_score = spec.points_per_case * len(expected.cases)

    def _report(
        self,
        status: Status,
        message: str,
        score: float,
        cases: Sequence[CaseResult],
        stdout: str,
        stderr: str,
        error: ErrorInfo | None,
    ) -> Report:
        spec = self.problem.spec
        shown = spec.cases.visible
        cases = [c.model_copy(update={"visible": shown is None or c.name in shown}) for c in cases]
        if self.source is not None:
            source = self.source
            cases = [c.model_copy(update={"error": source.error(c.error)}) for c in cases]
            error = source.error(error)
        return Report(
            status=status,
            message=message,
            score=score,
            max_score=self.max_score,
            cases=tuple(cases),
            hints=diagnose(
                spec,
                cases,
                self.expected.outcomes,
                error,
                cases=self.expected.cases,
                x64_enabled=self.x64_enabled,
            ),
            problem=ProblemInfo(id=spec.id, version=spec.version, title=spec.title),
            submission=self.submission,
            seed=self.seed,
            isolation=self.isolation,
            run_limits=self.run_limits,
            own_uid=self.own_uid,
            error=error,
            stdout=without_library_paths(stdout),
            stderr=without_library_paths(stderr),
            seconds=time.monotonic() - self.started,
            versions=versions(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            notebook=self.notebook,
        )

    def failed(
        self,
        failure: LoadFailure,
        stdout: str = "",
        stderr: str = "",
        cases: Sequence[CaseResult] | None = None,
    ) -> Report:
        """A report with no points: the file could not be loaded or run to the end."""
        if cases is None:
            cases = [self._unrun(case, failure) for case in self.expected.cases]
        cases = [case.model_copy(update={"points": 0.0}) for case in cases]
        return self._report(
            failure.status, failure.message, 0.0, cases, stdout, stderr, failure.error
        )

    def _unrun(self, case: Case, failure: LoadFailure) -> CaseResult:
        names = tuple(p.name for p in self.problem.spec.parameters)
        return CaseResult(
            index=case.index,
            name=case.name,
            inputs=case.summary(names),
            passed=False,
            reason=CaseReason.NOT_RUN,
            message=f"Not run: {failure.status.value.replace('_', ' ')}.",
            points=0.0,
            max_points=self.problem.spec.points_per_case,
        )

    def graded(self, cases: Sequence[CaseResult], stdout: str, stderr: str) -> Report:
        """A report for a function that was called: points for every passed case."""
        score = sum(case.points for case in cases)
        passed = sum(case.passed for case in cases)
        if passed == len(cases):
            message = f"All {len(cases)} cases passed."
        else:
            message = f"{passed} of {len(cases)} cases passed."
        return self._report(Status.GRADED, message, score, cases, stdout, stderr, None)
