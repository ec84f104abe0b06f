"""Throughput of `grader batch` against a naive grader, on the same submissions, in one run.

    .venv/bin/python benchmarks/bench.py [--submissions 8] [--workers 2]

Makes N distinct correct submissions (the styles of tests/submissions/correct/, each with a
comment of its own), then times, one after the other:

- naive: a fresh interpreter per submission (benchmarks/naive.py), reference and submission in
  it, every case a new shape, no cache, `--workers` at a time;
- batch, cold: `grader batch` with an empty cache folder (no compiled programs, no reference
  outputs);
- batch, warm: the same command again with `--force`, its caches now filled.

It prints seconds per submission (wall time / N), each submission's own grading time (median,
min-max, from the reports), the peak memory of one process (ru_maxrss of the children), and
the ratios. Timings drift over a day on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORRECT = sorted((ROOT / "tests" / "submissions" / "correct").glob("*.py"))
SEED = 20261125


def make_submissions(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for number in range(count):
        style = CORRECT[number % len(CORRECT)]
        path = folder / f"student{number:03d}.py"
        path.write_text(style.read_text() + f"\n# submission {number}\n")
        paths.append(path)
    return paths


def peak_child_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_naive(paths: list[Path], workers: int) -> tuple[float, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "GRADER_"))}
    env["JAX_PLATFORMS"] = "cpu"

    def one(path: Path) -> float:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "naive.py"), str(path), str(SEED)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"naive grading of {path.name} failed:\n{result.stderr[-2000:]}")
        return time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        latencies = list(pool.map(one, paths))
    return time.monotonic() - started, latencies


def run_batch(
    folder: Path, out: Path, cache: Path, workers: int, *extra: str
) -> tuple[float, list[float], float]:
    env = {**os.environ, "GRADER_CACHE_DIR": str(cache)}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "batch",
            str(folder),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--seed",
            str(SEED),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"grader batch failed:\n{result.stderr[-2000:]}")
    reports = [json.loads(p.read_text()) for p in sorted((out / "staff").glob("*.json"))]
    bad = [r["submission"]["path"] for r in reports if r["score"] != r["max_score"]]
    if bad:
        raise SystemExit(f"correct submissions lost points: {bad}")
    # Workers are reaped inside their PID namespace, so their usage never reaches this
    # process's RUSAGE_CHILDREN: take the peak each worker reported.
    peak = max((r["peak_memory_mib"] or 0.0) for r in reports)
    return elapsed, [r["seconds"] for r in reports], peak


def describe(latencies: list[float]) -> str:
    return f"{statistics.median(latencies):6.2f}  ({min(latencies):.2f}-{max(latencies):.2f})"


def run_mode(mode: str, base: Path, workers: int) -> dict[str, object]:
    """One mode, in a process of its own so that its peak memory is its own."""
    paths = sorted((base / "class").glob("*.py"))
    if mode == "naive":
        wall, latencies = run_naive(paths, workers)
        return {"wall": wall, "latencies": latencies, "rss": peak_child_rss_mib()}
    extra = ("--force",) if mode == "warm" else ()
    wall, latencies, worker_peak = run_batch(
        base / "class", base / "out", base / "cache", workers, *extra
    )
    # The trusted reference (cold only) runs as a direct child: it counts too.
    return {"wall": wall, "latencies": latencies, "rss": max(worker_peak, peak_child_rss_mib())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.base, args.workers)))
        return
    count, workers = args.submissions, args.workers
    modes = {
        "naive": "naive (fresh interpreter, no cache)",
        "cold": "grader batch, cold caches",
        "warm": "grader batch, warm caches",
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as scratch:
        base = Path(scratch)
        make_submissions(base / "class", count)
        for mode in modes:
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--mode",
                    mode,
                    "--base",
                    str(base),
                    "--workers",
                    str(workers),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if output.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{output.stdout}{output.stderr}")
            results[mode] = json.loads(output.stdout)
    sys.path.insert(0, str(ROOT))
    from grader.cases import make_cases
    from grader.problems import find_problem

    cases = len(make_cases(find_problem("graphdef_vs_state").spec, SEED))
    print(
        f"{count} correct submissions, {cases} cases each, {workers} workers, "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'mode':38} {'s/submission':>12}   {'per-submission s: median (min-max)':>36}"
        f"   {'peak RSS/process':>16}"
    )
    for mode, name in modes.items():
        r = results[mode]
        print(
            f"{name:38} {r['wall'] / count:12.2f}   {describe(r['latencies']):>36}   "
            f"{r['rss']:13.0f} MiB"
        )
    naive = results["naive"]["wall"]
    print(f"speed-up, warm batch vs naive: {naive / results['warm']['wall']:.1f}x")
    print(f"speed-up, cold batch vs naive: {naive / results['cold']['wall']:.1f}x")


if __name__ == "__main__":
    main()
