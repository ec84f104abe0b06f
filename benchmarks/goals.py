"""Every speed goal of issue 26, as a ratio to the naive grader, measured in one run.

    .venv/bin/python benchmarks/goals.py [--read-seconds 10] [--students 20] [--workers 2]

On graphdef_vs_state, with correct submissions in the styles of tests/submissions/correct/
(each with a comment of its own, as students' files differ), one after the other:

- naive: benchmarks/naive.py, a fresh interpreter per submission (reference and submission in
  it, no cache), one at a time: seconds per submission (median of 3);
- check, repeated: `grader check` of an edited file with a new seed each time, after the
  first check started the warm daemon; each check comes `--read-seconds` after the last
  verdict (the time a student reads it and edits; 0 measures checks back to back too);
- check, --no-daemon: the same check in a fresh process, for comparison;
- practice, warm: `grader check --pack` on a pack, after a first practice check;
- batch, warm: `grader batch --force` of the students' files again, per submission;
- service, burst: `grader serve --workers W --ready-seeds N`, once it has readied its seeds,
  receives one upload from each student at once (8 clients); the time from the first upload to
  the last verdict, against `grader batch` (warm) of the same files;
- service, lone upload: one more upload when the queue is empty, upload to verdict.

Everything runs with a cache folder of its own (cold at the start). Timings drift on a shared
machine: the ratios are what to compare, within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
CORRECT = sorted((ROOT / "tests" / "submissions" / "correct").glob("*.py"))
GRADER = [sys.executable, "-m", "grader"]
SEED = 20261125


def files(folder: Path, count: int, prefix: str = "student") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        style = CORRECT[number % len(CORRECT)]
        path = folder / f"{prefix}{number:03d}.py"
        path.write_text(style.read_text() + f"\n# {prefix} {number}\n")
        paths.append(path)
    return paths


def timed(command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr}")
    return elapsed


def naive(paths: list[Path], env: dict[str, str]) -> float:
    clean = {k: v for k, v in env.items() if not k.startswith(("JAX_", "GRADER_"))}
    clean["JAX_PLATFORMS"] = "cpu"
    script = str(ROOT / "benchmarks" / "naive.py")
    return statistics.median(
        timed([sys.executable, script, str(path), str(SEED)], clean) for path in paths
    )


def repeated_checks(paths: list[Path], env: dict[str, str], pause: float) -> list[float]:
    timed([*GRADER, "check", str(paths[0])], env)  # starts the daemon (cold)
    times = []
    for path in paths[1:]:
        time.sleep(pause)
        times.append(timed([*GRADER, "check", str(path)], env))
    return times


def service(
    base: Path, paths: list[Path], env: dict[str, str], workers: int, ready: int
) -> tuple[float, float, float]:
    """(seconds to ready the seeds, burst: first upload to last verdict, lone upload)."""
    from serving import Server, make_roster

    students = [f"student{n:03d}" for n in range(len(paths) + 1)]
    folder = base / "serve"
    folder.mkdir()
    tokens = make_roster(folder, tuple(students))
    server = Server(
        folder,
        tokens,
        workers=workers,
        extra=("--ready-seeds", str(ready)),
        problems_dir=ROOT / "problems",
        reference_dir=ROOT / "reference",
    )
    os.environ.update({k: v for k, v in env.items() if k.startswith("GRADER_")})
    started = time.monotonic()
    server.start()
    try:
        deadline = time.monotonic() + 1800
        while f"{ready} seeds of graphdef_vs_state ready" not in server.logs[-1].read_text():
            if time.monotonic() > deadline:
                raise SystemExit("the service did not ready its seeds in 30 minutes")
            time.sleep(0.5)
        readied = time.monotonic() - started
        burst = _uploads(server, paths, students)
        lone = _uploads(server, paths[:1], students[-1:])
    finally:
        server.kill()
    return readied, burst, lone


def _uploads(server, paths: list[Path], students: list[str]) -> float:
    from serving import STAFF_TOKEN

    ids: set[str] = set()

    def upload(number: int) -> None:
        answer = server.submit(students[number], paths[number].name, paths[number].read_bytes())
        assert answer.status == 202, answer.body
        ids.add(answer.json()["id"])

    started = time.monotonic()
    with ThreadPoolExecutor(8) as clients:
        list(clients.map(upload, range(len(paths))))
    while True:
        listing = server.request("GET", "/api/submissions", token=STAFF_TOKEN).json()
        done = {s["id"] for s in listing["submissions"] if s["state"] == "done"}
        if ids <= done:
            elapsed = time.monotonic() - started
            mine = [s for s in listing["submissions"] if s["id"] in ids]
            bad = [s for s in mine if s["score"] != s["max_score"]]
            if bad:
                raise SystemExit(f"a correct upload lost points: {bad}")
            return elapsed
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read-seconds", type=float, default=10.0)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # A daemon or a killed server's last worker may still be writing a cache file as the
    # folder goes: that is no reason to lose the figures.
    with tempfile.TemporaryDirectory(prefix="grader-goals-", ignore_cleanup_errors=True) as scratch:
        base = Path(scratch)
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        env = {
            **os.environ,
            "GRADER_CACHE_DIR": str(base / "cache"),
            "XDG_RUNTIME_DIR": str(runtime),
        }
        env.pop("GRADER_NO_DAEMON", None)
        figures: dict[str, float] = {}
        figures["naive"] = naive(files(base / "naive", 3, "naive"), env)
        edits = files(base / "check", 4, "edit")
        figures["check"] = statistics.median(repeated_checks(edits, env, args.read_seconds))
        figures["check, back to back"] = statistics.median(
            repeated_checks(files(base / "check2", 4, "again"), env, 0.0)
        )
        figures["check --no-daemon"] = timed([*GRADER, "check", str(edits[0]), "--no-daemon"], env)
        pack = base / "pack"
        timed([*GRADER, "pack", "graphdef_vs_state", "--out", str(pack)], env)
        practice = files(base / "practice", 4, "practice")
        timed([*GRADER, "check", str(practice[0]), "--pack", str(pack)], env)
        figures["practice"] = statistics.median(
            timed([*GRADER, "check", str(path), "--pack", str(pack)], env) for path in practice[1:]
        )
        subprocess.run([*GRADER, "daemon", "stop"], env=env, capture_output=True, check=False)
        students = files(base / "class", args.students)
        batch = [*GRADER, "batch", str(base / "class"), "--out", str(base / "out")]
        batch += ["--workers", str(args.workers), "--seed", str(SEED)]
        timed(batch, env)
        figures["batch, warm, whole"] = timed([*batch, "--force"], env)
        figures["batch, warm"] = figures["batch, warm, whole"] / args.students
        readied, burst, lone = service(base, students, env, args.workers, args.students + 4)
        figures["service, readying seeds"] = readied
        figures["service, burst"] = burst
        figures["service, lone upload"] = lone
        subprocess.run([*GRADER, "daemon", "stop"], env=env, capture_output=True, check=False)

    n = figures["naive"]

    def below(key: str) -> str:
        return f"naive/{n / figures[key]:.1f}"

    burst = figures["service, burst"] / figures["batch, warm, whole"]
    rows = [
        ("naive, per submission", n, "", ""),
        ("check, repeated (daemon)", figures["check"], below("check"), "<= naive/4"),
        ("check, back to back", figures["check, back to back"], below("check, back to back"), ""),
        ("check --no-daemon", figures["check --no-daemon"], below("check --no-daemon"), ""),
        ("practice check, warm", figures["practice"], below("practice"), "<= naive/4"),
        ("batch warm, per submission", figures["batch, warm"],
         f"{n / figures['batch, warm']:.1f}x naive", ">= 20x naive"),
        (f"service burst of {args.students}", figures["service, burst"],
         f"{burst:.2f}x batch", "<= 1.5x batch"),
        ("service lone upload", figures["service, lone upload"],
         below("service, lone upload"), "<= naive/2"),
    ]  # fmt: skip
    print(
        f"graphdef_vs_state, {os.cpu_count()} cores, {args.workers} workers, "
        f"pause before a repeated check {args.read_seconds:g} s, "
        f"service readied its seeds in {figures['service, readying seeds']:.0f} s"
    )
    print(f"{'what':34} {'seconds':>8}   {'ratio':>16}   goal")
    for what, seconds, ratio, goal in rows:
        print(f"{what:34} {seconds:8.2f}   {ratio:>16}   {goal}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
