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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from grader import safe_text
from grader.cases import random_seed
from grader.engine import Graded, Grader, is_grader_fault
from grader.errors import GraderError, UsageError
from grader.gradebook import BatchResult, Skipped, gradebook_csv, summarize, summary_json
from grader.grading import read_limit
from grader.ipynb import SUBMISSION_SUFFIXES as SUFFIXES
from grader.models import Report
from grader.problems import Problem
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
    grader: Grader,
    seed: int | None = None,
    workers: int | None = None,
    force: bool = False,
    on_progress: Callable[[str, Report | None, bool], None] | None = None,
    remote: RemoteGrader | None = None,
) -> BatchResult:
    """Grade every submission in folder into out; reuse what an earlier run already did.

    Whatever happens while grading one file becomes that student's report (`Grader.grade`): a
    batch always writes its gradebook, summary and page. With `remote` (`grader batch
    --queue`), the queue's workers grade the files, with the batch's seed; the outputs are
    the same.
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
                write_atomic(student_copy, _report_json(Graded(previous).student))
            result.reports[entry.student] = previous
            result.reused.add(entry.student)
            if on_progress:
                on_progress(entry.student, previous, True)
        else:
            todo.append(entry)

    def done(entry: Entry, graded: Graded) -> None:
        _save(out, entry, graded)
        result.reports[entry.student] = graded.staff
        if graded.fault:
            result.grader_faults.add(entry.student)
        if on_progress:
            on_progress(entry.student, graded.staff, False)

    if todo and remote is not None:
        by_student = {entry.student: entry for entry in todo}
        files = [(entry.student, entry.path) for entry in todo]
        for student, report in remote.grade_all(files, problem=problem, seed=seed):
            done(by_student[student], Graded(report, fault=is_grader_fault(report)))
    elif todo:
        grader.expected(problem, seed)  # once, before the files share it
        pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
        futures = {
            pool.submit(grader.grade, e.path, problem, seed=seed, display_name=e.path.name): e
            for e in todo
        }
        try:
            for future in as_completed(futures):
                done(futures[future], future.result())
        except BaseException:
            # Ctrl-C (or anything else): kill the runs in progress, start no new one, keep
            # every report already saved; the same command resumes from them.
            grader.setup.cancel()
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


def _save(out: Path, entry: Entry, graded: Graded) -> None:
    """A finished report: the staff copy (what a rerun reuses; none for a grader fault, so
    that a rerun grades the file again), then the student's (hidden cases withheld)."""
    staff_copy = out / "staff" / f"{entry.student}.json"
    if graded.fault:
        with contextlib.suppress(OSError):
            staff_copy.unlink(missing_ok=True)
    else:
        write_atomic(staff_copy, _report_json(graded.staff))
    write_atomic(out / f"{entry.student}.json", _report_json(graded.student))


def batch_outcome(result: BatchResult, out: Path) -> str:
    """What a finished batch says on the terminal (names escaped: they come from students)."""
    graded = len(result.reports) - len(result.reused)
    lines = [
        f"{len(result.reports)} students ({graded} graded now, {len(result.reused)} unchanged "
        f"since the last run), {len(result.skipped)} entries skipped; seed {result.seed}."
    ]
    for item in result.skipped:
        # Both may hold file names (a duplicate id names its files).
        name, reason = safe_text.terminal(item.name), safe_text.terminal(item.reason)
        lines.append(f"  skipped {name}: {reason}")
    lines.append(
        f"Wrote {safe_text.terminal(str(out))}/grades.csv, summary.json, index.html and one "
        f"report per student."
    )
    return "\n".join(lines)


def batch_interrupted(out: Path) -> str:
    """What a batch stopped with Ctrl-C says: what is kept, and how to finish."""
    kept = len(list((out / "staff").glob("*.json"))) if (out / "staff").is_dir() else 0
    return (
        f"Interrupted: running gradings were stopped; {kept} reports are kept in "
        f"{safe_text.terminal(str(out))}. Run the same command again to finish the "
        f"batch (kept reports are reused)."
    )


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
