"""The gradebook of a set of reports: grades.csv, summary.json's data, a score histogram and
how many students each hint fired for.

Plain data in, text and dicts out: `grader batch` writes these next to a folder's reports, and
`grader serve` answers staff with the same, built from each student's latest submission. The
batch page (render.batch_page) is drawn from `summarize`'s dict. Trusted side; no grading here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from grader.cases import make_cases
from grader.models import Report, Status
from grader.problems import Problem
from grader.safe_text import csv_cell, json_for_log


@dataclass(frozen=True)
class Skipped:
    """Something in the folder that was not graded, and why."""

    name: str
    reason: str
    # The student id a submission-looking file (.py) would have had: the gradebook gives it a
    # row with status skipped, so that nobody silently gets nothing in an LMS upload.
    student: str | None = None


@dataclass
class BatchResult:
    """What a batch produced: the gradebook's input (the service builds one from each
    student's latest report)."""

    seed: int
    reports: dict[str, Report] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)
    # Students whose grading failed through no fault of theirs (their report says so); their
    # reports are not kept for reuse, so the next run grades them again.
    grader_faults: set[str] = field(default_factory=set)


def summary_json(summary: dict[str, object]) -> str:
    """summary.json's text: the summary's data, safe to print (`safe_text.json_for_log`: staff
    `cat` it, CI logs show it)."""
    return json_for_log(json.dumps(summary, indent=2) + "\n")


def gradebook_csv(result: BatchResult) -> str:
    """One row per student, ready for an LMS upload; no cell is a formula (safe_text.csv_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["student", "score", "max_score", "status", "sha256", "seed", "problem_version", "note"]
    )
    rows: list[tuple[str, list[object]]] = []
    for student, report in result.reports.items():
        row: list[object] = [
            csv_cell(student),
            f"{report.score:g}",
            f"{report.max_score:g}",
            report.status.value,
            report.submission.sha256,
            report.seed,
            csv_cell(report.problem.version),
            "",
        ]
        rows.append((student, row))
    # Every submission file found has a row: one not graded says why, with no score (an LMS
    # then shows it as missing, not as zero).
    for item in result.skipped:
        if item.student is not None:
            reason = csv_cell(item.reason)
            rows.append(
                (
                    item.student,
                    [csv_cell(item.student), "", "", "skipped", "", result.seed, "", reason],
                )
            )
    for _, row in sorted(rows, key=lambda pair: pair[0]):
        writer.writerow(row)
    return buffer.getvalue()


def summarize(result: BatchResult, problem: Problem) -> dict[str, object]:
    """Counts by status, score distribution, per-case pass rates over all students, how many
    students each hint fired for (the class's mistakes), common failures, each student's
    failed cases."""
    reports = [result.reports[s] for s in sorted(result.reports)]
    scores = [report.score for report in reports]
    max_score = reports[0].max_score if reports else 0.0
    statuses = Counter(report.status.value for report in reports)
    bins = histogram(scores, max_score, step=problem.spec.points_per_case)
    case_rates = []
    for index, case in enumerate(make_cases(problem.spec, result.seed)):
        graded = [r.cases[index] for r in reports if r.status is Status.GRADED]
        # Over every student: one whose file did not load failed every case too.
        passed = sum(index < len(r.cases) and r.cases[index].passed for r in reports)
        case_rates.append(
            {
                "index": index,
                "name": case.name,
                "passed": passed,
                "students": len(reports),
                "graded": len(graded),
                "rate": round(passed / len(reports), 4) if reports else None,
            }
        )
    failures: Counter[str] = Counter()
    for report in reports:
        if report.status is not Status.GRADED:
            failures[f"{report.status.value}"] += 1
            continue
        for reason in sorted({case.reason.value for case in report.cases if not case.passed}):
            failures[reason] += 1
    return {
        "problem": {"id": problem.spec.id, "version": problem.spec.version},
        "seed": result.seed,
        "students": len(reports),
        "max_score": max_score,
        "full_marks": sum(report.full_marks for report in reports),
        "by_status": dict(sorted(statuses.items())),
        "scores": {
            "mean": round(statistics.fmean(scores), 2) if scores else None,
            "median": statistics.median(scores) if scores else None,
            "min": min(scores) if scores else None,
            "max": max(scores) if scores else None,
            "histogram": bins,
        },
        "case_pass_rates": case_rates,
        "hints": hint_counts(reports),
        "common_failures": [
            {"reason": reason, "students": count} for reason, count in failures.most_common(10)
        ],
        "skipped": [{"name": s.name, "reason": s.reason} for s in result.skipped],
        "reports": {
            s: {
                "score": r.score,
                "status": r.status.value,
                "file": f"{s}.json",
                "page": f"{s}.html",
                "failed_cases": [case.index for case in r.cases if not case.passed],
                "hints": [hint.id for hint in r.hints],
            }
            for s, r in zip(sorted(result.reports), reports, strict=True)
        },
    }


def hint_counts(reports: Iterable[Report]) -> list[dict[str, object]]:
    """Each hint given, with how many students got it, most frequent first: the class's
    mistakes. A pattern hint's wording varies with the cases; the first one is kept."""
    counts: Counter[str] = Counter()
    first: dict[str, tuple[str, str]] = {}
    for report in reports:
        for hint in {h.id: h for h in report.hints}.values():
            counts[hint.id] += 1
            first.setdefault(hint.id, (hint.kind, " ".join(hint.text.split())))
    return [
        {"id": hint_id, "kind": first[hint_id][0], "text": first[hint_id][1], "students": count}
        for hint_id, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def histogram(
    scores: Iterable[float], max_score: float, bins: int = 10, step: float | None = None
) -> list[dict[str, object]]:
    """Scores counted into bins from 0 to max_score, each with a label.

    When every score and the maximum are whole numbers, the bins are whole numbers of `step`
    (the points per case; 1 if that is not whole) wide: one bin per possible score when there
    are at most `bins` of them, `low` and `high` then being the lowest and highest score a bin
    holds. Otherwise `bins` equal-width bins, `high` excluded but in the last.
    """
    values = list(scores)
    if max_score <= 0:
        return []
    if float(max_score).is_integer() and all(float(v).is_integer() for v in values):
        unit = int(step) if step is not None and step >= 1 and float(step).is_integer() else 1
        top = int(max_score)
        if top % unit:
            unit = 1
        per_bin = math.ceil((top // unit + 1) / bins)
        width = per_bin * unit
        counts = [0] * (top // width + 1)
        for score in values:
            counts[min(int(score) // width, len(counts) - 1)] += 1
        found = []
        for i, count in enumerate(counts):
            low, high = i * width, min(i * width + (per_bin - 1) * unit, top)
            label = f"{low}" if low == high else f"{low}-{high}"
            found.append({"low": low, "high": high, "label": label, "count": count})
        return found
    step_width = max_score / bins
    tallies = [0] * bins
    for score in values:
        tallies[min(int(score / step_width), bins - 1)] += 1
    return [
        {
            "low": round(i * step_width, 4),
            "high": round((i + 1) * step_width, 4),
            "label": f"{i * step_width:g}",
            "count": count,
        }
        for i, count in enumerate(tallies)
    ]
