"""Throughput and latency of `grader serve`, embedded and through Redis, in one run.

    .venv/bin/python benchmarks/serve_bench.py [--submissions 100] [--workers 2] [--real]

Uploads N submissions (a mix: 2 correct for 1 wrong) over HTTP as fast as 8 clients can, to:

- embedded: `grader serve --workers W` (the local pool, SQLite);
- redis: `grader serve --queue redis://...` and W `grader worker --workers 1` processes (as W
  machines would), against a throwaway `redis-server`;

and prints submissions per minute (N / time from the first upload to the last verdict) and
the p50/p95 time from each upload's 202 to its verdict (read from the staff listing, polled
every 0.1 s). The toy problem by default (no JAX: it measures the service and the sandbox);
`--real` uses graphdef_vs_state, where each submission's own seed means its own reference run
and compilations (slow: minutes per mode). Timings drift on a shared machine: compare within
one run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serving import GRADER, STAFF_TOKEN, TOY, Redis, Server, make_roster  # noqa: E402

TOY_WRONG = b"def vector_stats(x, k):\n    return [len(x) + 1, 0.0, 0.0]\n"


def submissions(real: bool, count: int) -> list[bytes]:
    if real:
        correct = sorted((ROOT / "tests" / "submissions" / "correct").glob("*.py"))
        wrong = sorted((ROOT / "tests" / "submissions" / "wrong").glob("*.py"))
        pool = [[p.read_bytes() for p in correct], [p.read_bytes() for p in wrong]]
    else:
        pool = [[(TOY / "submissions" / "correct.py").read_bytes()], [TOY_WRONG]]
    files = []
    for number in range(count):
        kind = pool[1] if number % 3 == 2 else pool[0]
        files.append(kind[number % len(kind)] + f"\n# submission {number}\n".encode())
    return files


def measure(server: Server, files: list[bytes], students: list[str]) -> dict[str, float]:
    uploaded: dict[str, float] = {}

    def upload(number: int) -> None:
        student = students[number % len(students)]
        answer = server.submit(student, f"s{number}.py", files[number])
        assert answer.status == 202, answer.body
        uploaded[answer.json()["id"]] = time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(8) as clients:
        list(clients.map(upload, range(len(files))))
    done: dict[str, float] = {}
    deadline = time.monotonic() + 3600
    while len(done) < len(files) and time.monotonic() < deadline:
        listing = server.request("GET", "/api/submissions", token=STAFF_TOKEN).json()
        now = time.monotonic()
        for item in listing["submissions"]:
            if item["state"] == "done" and item["id"] not in done:
                done[item["id"]] = now
        time.sleep(0.1)
    latencies = sorted(done[i] - uploaded[i] for i in uploaded)
    wall = max(done.values()) - started
    return {
        "per_minute": len(files) / wall * 60,
        "wall": wall,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real", action="store_true", help="graphdef_vs_state, not the toy")
    args = parser.parse_args()
    files = submissions(args.real, args.submissions)
    dirs: dict[str, Path] = {}
    if args.real:
        dirs = {"problems_dir": ROOT / "problems", "reference_dir": ROOT / "reference"}
    problem_args = [
        "--problems-dir",
        str(dirs.get("problems_dir", TOY / "problems")),
        "--reference-dir",
        str(dirs.get("reference_dir", TOY / "reference")),
    ]
    # A deadline: every student submits once (a student may have only 3 waiting at once).
    students = [f"student{n:03d}" for n in range(len(files))]
    results = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as base:
        folder = Path(base) / "embedded"
        tokens = make_roster(folder, tuple(students))
        server = Server(folder, tokens, workers=args.workers, **dirs).start()
        try:
            results["embedded"] = measure(server, files, students)
        finally:
            server.kill()

        folder = Path(base) / "redis"
        # The server and its workers share the queue's secret (the Server inherits os.environ).
        os.environ.setdefault("GRADER_QUEUE_SECRET", secrets.token_hex(32))
        redis = Redis(folder / "redis")
        workers = []
        try:
            tokens = make_roster(folder, tuple(students))
            server = Server(folder, tokens, extra=("--queue", redis.url), **dirs).start()
            env = {**os.environ, "HOME": str(folder), "GRADER_CACHE_DIR": str(folder / "cache")}
            for number in range(args.workers):
                log = (folder / f"worker-{number}.log").open("wb")
                workers.append(
                    subprocess.Popen(
                        [*GRADER, "worker", "--queue", redis.url, "--workers", "1", *problem_args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
            results["redis"] = measure(server, files, students)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)
            server.kill()
            redis.stop()

    problem = "graphdef_vs_state" if args.real else "vector_stats (toy)"
    print(f"{args.submissions} submissions of {problem}, {args.workers} workers each mode")
    print(f"{'mode':<10} {'subm/min':>9} {'wall s':>8} {'p50 s':>7} {'p95 s':>7}")
    for mode, r in results.items():
        print(
            f"{mode:<10} {r['per_minute']:>9.1f} {r['wall']:>8.1f} {r['p50']:>7.1f} "
            f"{r['p95']:>7.1f}"
        )


if __name__ == "__main__":
    main()
