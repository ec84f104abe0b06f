"""Grade a folder of submissions: per-student reports, a gradebook, a summary, a page.

Every student of a batch is graded on the same cases, drawn from one batch seed:

- fairness: nobody gets easier or harder cases than a classmate;
- speed: the reference runs once, and the programs JAX compiles for those shapes are cached,
  so each submission after the first reuses them;
- hard-coding: a shared case set could be copied between students if it leaked, so hidden
  cases show no inputs or expected values in reports, and the seed is random per batch
  (recorded in `batch.json` and in every report) unless staff choose one.

Each student's report is written twice: `<student>.json`, the student's view (hidden cases
without inputs or values), and `staff/<student>.json`, everything. Nothing is lost when a batch
dies: every file is written atomically, and a rerun skips each student whose staff report
already matches the file's sha256, the spec version and the seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from grader.cases import make_cases, random_seed
from grader.errors import GraderError, UsageError
from grader.feedback import student_view
from grader.gradebook import BatchResult, Skipped, gradebook_csv, summarize, summary_json
from grader.grading import (
    grade,
    grader_fault_report,
    is_grader_fault,
    read_limit,
    run_reference,
)
from grader.models import Report
from grader.notebook import SUBMISSION_SUFFIXES as SUFFIXES
from grader.problems import Problem
from grader.run import Cancelled, Runner, SubprocessRunner
from grader.safe_text import json_for_log
from grader.storage import read_regular, write_atomic

RESERVED_IDS = {"summary", "batch", "grades", "index"}  # names of the batch's own outputs
MAX_ID_BYTES = 200  # a student id becomes a file name: <id>.json must fit in 255 bytes


@dataclass(frozen=True)
class Entry:
    """A submission found in the folder."""

    student: str
    path: Path


def discover(folder: Path) -> tuple[list[Entry], list[Skipped]]:
    """The gradable files of a folder, and a reason for everything else in it."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    root = folder.resolve()
    candidates: dict[str, list[Path]] = {}
    skipped: list[Skipped] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            # An unzip of a Windows archive gives such names; no id can be made safely from it.
            shown = os.fsencode(name).decode("utf-8", errors="backslashreplace")
            reason = "file name is not valid UTF-8: rename it (for example to ASCII)"
            skipped.append(Skipped(shown, reason, _would_be_id(shown)))
            continue
        if name.startswith("."):
            skipped.append(Skipped(name, "hidden file"))
            continue
        if len(path.stem.encode()) > MAX_ID_BYTES:
            reason = f"file name longer than {MAX_ID_BYTES} bytes: shorten it"
            skipped.append(Skipped(name, reason, _would_be_id(name)))
            continue
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                reason = "symlink pointing outside the folder: not followed"
                skipped.append(Skipped(name, reason, _would_be_id(name)))
                continue
        if path.is_dir():
            skipped.append(Skipped(name, "a folder: only files directly in the folder are graded"))
            continue
        if path.suffix.lower() not in SUFFIXES:
            skipped.append(Skipped(name, "not a submission (.py or .ipynb)"))
            continue
        if not path.is_file():
            skipped.append(Skipped(name, "not a regular file", _would_be_id(name)))
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            skipped.append(Skipped(name, f"unreadable: {exc.strerror}", _would_be_id(name)))
            continue
        candidates.setdefault(path.stem.lower(), []).append(path)
    entries = []
    for key, paths in sorted(candidates.items()):
        names = ", ".join(p.name for p in paths)
        if len(paths) > 1:
            both = len({p.suffix.lower() for p in paths}) > 1
            for path in paths:
                reason = f"duplicate student id {key!r} ({names}): " + (
                    "a .py and a notebook for one student: remove the one not to grade"
                    if both
                    else "rename all but one"
                )
                skipped.append(Skipped(path.name, reason, path.stem))
        elif key in RESERVED_IDS:
            reason = f"student id {key!r} clashes with the batch's own {key} file: rename it"
            skipped.append(Skipped(names, reason, paths[0].stem))
        else:
            entries.append(Entry(student=paths[0].stem, path=paths[0]))
    return entries, skipped


def _would_be_id(name: str) -> str | None:
    """The student id of a file name that looks like a submission, else None."""
    suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
    return name[: -len(suffix)] if suffix else None


def batch_seed(out: Path, seed: int | None) -> int:
    """The seed given, else the one a previous run of this batch recorded, else a new one."""
    record = out / "batch.json"
    if seed is None:
        try:
            seed = int(json.loads(record.read_text())["seed"])
        except (OSError, ValueError, KeyError, TypeError):
            seed = random_seed()
    return seed


def reusable(report_path: Path, entry: Entry, problem: Problem, seed: int) -> Report | None:
    """The existing report, if it is for exactly this file, spec version and seed."""
    try:
        report = Report.model_validate_json(report_path.read_bytes())
    except (OSError, ValidationError):
        return None
    try:
        digest = hashlib.sha256(read_regular(entry.path, read_limit(entry.path.name))).hexdigest()
    except GraderError:
        return None
    same = (
        report.submission.sha256 == digest
        and report.problem.id == problem.spec.id
        and report.problem.version == problem.spec.version
        and report.seed == seed
    )
    return report if same else None


def run_batch(
    folder: Path,
    out: Path,
    *,
    problem: Problem,
    seed: int | None = None,
    workers: int | None = None,
    force: bool = False,
    runner: Runner,
    on_progress: Callable[[str, Report | None, bool], None] | None = None,
    trust_caches: bool = True,
    remote: RemoteGrader | None = None,
) -> BatchResult:
    """Grade every submission in folder into out; reuse what an earlier run already did.

    Whatever happens while grading one file becomes that student's report: a batch always
    writes its gradebook, summary and page. `trust_caches=False` (basic isolation, where a
    submission runs as the grader's own user and could have written them) recomputes the
    reference's outcomes without the on-disk caches. With `remote` (`grader batch --queue`),
    the queue's workers grade the files, with the batch's seed; the outputs are the same.
    """
    entries, skipped = discover(folder)
    out.mkdir(parents=True, exist_ok=True)
    seed = batch_seed(out, seed)
    write_atomic(
        out / "batch.json",
        json.dumps(
            {"seed": seed, "problem": problem.spec.id, "version": problem.spec.version}, indent=2
        )
        + "\n",
    )
    result = BatchResult(seed=seed, skipped=skipped)
    todo = []
    for entry in entries:
        staff_report = out / "staff" / f"{entry.student}.json"
        previous = None if force else reusable(staff_report, entry, problem, seed)
        if previous is not None:
            student_copy = out / f"{entry.student}.json"
            if not student_copy.exists():  # killed between the two writes
                write_atomic(student_copy, _report_json(student_view(previous)))
            result.reports[entry.student] = previous
            result.reused.add(entry.student)
            if on_progress:
                on_progress(entry.student, previous, True)
        else:
            todo.append(entry)
    if todo and remote is not None:
        by_student = {entry.student: entry for entry in todo}
        files = [(entry.student, entry.path) for entry in todo]
        for student, report in remote.grade_all(files, problem=problem, seed=seed):
            entry = by_student[student]
            fault = is_grader_fault(report)
            _save(out, entry, report, keep_staff_copy=not fault)
            result.reports[student] = report
            if fault:
                result.grader_faults.add(student)
            if on_progress:
                on_progress(student, report, False)
    elif todo:
        # Without trusted caches, the reference also compiles without JAX's cache.
        reference = SubprocessRunner(trusted=True, compilation_cache=trust_caches)
        expected = run_reference(
            problem, make_cases(problem.spec, seed), runner=reference, use_cache=trust_caches
        )
        lock = threading.Lock()
        isolation = runner.isolation()

        def one(entry: Entry) -> tuple[Entry, Report, bool]:
            """Grade and save one file; True when the grader failed on it (not the student)."""
            staff_copy = out / "staff" / f"{entry.student}.json"
            try:
                report = grade(
                    entry.path,
                    problem=problem,
                    seed=seed,
                    expected=expected,
                    runner=runner,
                    display_name=entry.path.name,
                )
                # The full report for staff (also what a rerun reuses); the student's copy
                # hides what hidden cases hold.
                write_atomic(staff_copy, _report_json(report))
                write_atomic(out / f"{entry.student}.json", _report_json(student_view(report)))
            except Cancelled:
                raise  # staff stopped the batch: no verdict for this file, nothing saved
            except Exception as exc:  # a batch never dies of one student
                report = grader_fault_report(
                    entry.path,
                    problem=problem,
                    seed=seed,
                    expected=expected,
                    isolation=isolation,
                    error=exc,
                )
                # No staff copy: a rerun grades this file again.
                with contextlib.suppress(OSError):
                    staff_copy.unlink(missing_ok=True)
                    write_atomic(out / f"{entry.student}.json", _report_json(student_view(report)))
                return entry, report, True
            return entry, report, False

        pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
        futures = [pool.submit(one, entry) for entry in todo]
        try:
            for future in as_completed(futures):
                entry, report, fault = future.result()
                with lock:
                    result.reports[entry.student] = report
                    if fault:
                        result.grader_faults.add(entry.student)
                if on_progress:
                    on_progress(entry.student, report, False)
        except BaseException:
            # Ctrl-C (or anything else): kill the runs in progress, start no new one, keep
            # every report already saved; the same command resumes from them.
            runner.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    write_outputs(out, result, problem)
    return result


class RemoteGrader(Protocol):
    """Grades files elsewhere (`grader.service.queue.QueueGrader`, the Redis queue)."""

    def grade_all(
        self, files: Sequence[tuple[str, Path]], *, problem: Problem, seed: int
    ) -> Iterator[tuple[str, Report]]:
        """(student, staff report) for each (student, path), as they finish."""
        ...


def _save(out: Path, entry: Entry, report: Report, *, keep_staff_copy: bool) -> None:
    """A finished report, as the local path writes it: the staff copy (what a rerun reuses;
    none for a grader fault, so that a rerun grades the file again), then the student's."""
    staff_copy = out / "staff" / f"{entry.student}.json"
    if keep_staff_copy:
        write_atomic(staff_copy, _report_json(report))
    else:
        staff_copy.unlink(missing_ok=True)
    write_atomic(out / f"{entry.student}.json", _report_json(student_view(report)))


def write_outputs(out: Path, result: BatchResult, problem: Problem) -> None:
    """grades.csv, summary.json, index.html and a page per student, from the reports."""
    summary = summarize(result, problem)
    write_atomic(out / "grades.csv", gradebook_csv(result))
    write_atomic(out / "summary.json", summary_json(summary))
    from grader.render import batch_page, student_page

    write_atomic(out / "index.html", batch_page(summary))
    for student, report in result.reports.items():
        write_atomic(out / f"{student}.html", student_page(student, report))


def _report_json(report: Report) -> str:
    """A report as JSON that is safe to print (staff `cat` reports, CI logs show them)."""
    return json_for_log(report.model_dump_json(indent=2) + "\n")
