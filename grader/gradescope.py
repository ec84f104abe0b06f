"""Gradescope: the autograder zip that `grader gradescope-autograder` builds, and what its
`run_autograder` does on Gradescope's machine (trusted side: it runs the reference and grades).

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once as root while it
builds the image, then, for each submission, puts the student's files in
/autograder/submission and runs `run_autograder`, which must write
/autograder/results/results.json. Gradescope keeps the zip from students, so the reference
travels inside it. The zip holds:

- `setup.sh`: a Python 3.11+ (installed with apt when the image has none), a venv in
  /opt/grader-venv, and this grader installed into it from the wheel in `dist/` (its
  dependencies, jax and flax included, come from PyPI: no access to the course's repository).
- `run_autograder`: calls `python -m grader.gradescope`, i.e. `run_autograder()` below.
- `autograder.json` (the problem id and the grading seed), `problems/<id>.toml` and
  `reference/<file>`.

The root of the layout is `$GRADER_AUTOGRADER_ROOT` (default /autograder), so a test can run the
real script against a folder laid out as Gradescope lays out /autograder.

Every student gets the cases of the seed fixed when the zip was built, as in a batch: the same
difficulty for all. The seed is printed to run_autograder's stdout, which Gradescope shows to
staff only; results.json (the student's view) never holds it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from grader import safe_text
from grader.engine import Graded, Grader, Setup
from grader.errors import GraderError, UsageError
from grader.ipynb import SUBMISSION_SUFFIXES
from grader.paths import REPO_ROOT
from grader.problems import Problem, defined_functions, load_problem
from grader.render import gradescope_json, output_console, print_report
from grader.run.policy import full_isolation_problem, run_uid_problem
from grader.storage import write_atomic

ROOT_ENV = "GRADER_AUTOGRADER_ROOT"
DEFAULT_ROOT = Path("/autograder")
CONFIG = "autograder.json"

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image.
# It installs the grader from the wheel in dist/ (built by `grader gradescope-autograder`)
# into its own venv; jax, flax and the other dependencies come from PyPI.
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")" && pwd)"
VENV="${GRADER_VENV:-/opt/grader-venv}"

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
    PYTHON="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$PYTHON" ]; then
  # Older Ubuntu images (22.04) ship Python 3.10; the grader needs 3.11 or later.
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11 python3.11-venv
  PYTHON="$(command -v python3.11)"
elif ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$(basename "$PYTHON")-venv"
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$SOURCE"/dist/*.whl
"$VENV/bin/grader" --version
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the student's file in
# $GRADER_AUTOGRADER_ROOT/submission (default /autograder) with the reference in source/,
# and write results/results.json. A test may set GRADER_AUTOGRADER_ROOT, and GRADER_VENV to
# run it with another installation of the grader.
set -euo pipefail
ROOT="${GRADER_AUTOGRADER_ROOT:-/autograder}"
VENV="${GRADER_VENV:-/opt/grader-venv}"
PYTHON="$VENV/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
cd "$ROOT"
exec "$PYTHON" -m grader.gradescope "$ROOT"
"""


@dataclass(frozen=True)
class Built:
    """What `build_autograder` wrote: the zip's member names and the wheel's."""

    members: tuple[str, ...]
    wheel: str


def build_wheel(into: Path) -> Path:
    """A wheel of this grader, built from its source tree with pip."""
    if not (REPO_ROOT / "pyproject.toml").is_file():
        raise UsageError(
            f"the Gradescope zip carries a wheel of the grader, built from its source tree, but "
            f"{REPO_ROOT} has no pyproject.toml (this grader was installed from a wheel). Run "
            f"`grader gradescope-autograder` from a checkout of the grader's repository."
        )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(into),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(into.glob("grader-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise GraderError(
            f"building the grader's wheel with pip failed (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    return wheels[0]


def _add(archive: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_autograder(problem: Problem, out: Path, *, seed: int) -> Built:
    """Write the autograder zip for `problem`, whose students are all graded on `seed`."""
    config = {"problem": problem.spec.id, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="grader-wheel-") as folder:
        wheel = build_wheel(Path(folder))
        files = [
            ("setup.sh", SETUP_SH.encode(), True),
            ("run_autograder", RUN_AUTOGRADER.encode(), True),
            (CONFIG, (json.dumps(config, indent=2) + "\n").encode(), False),
            (f"problems/{problem.spec.id}.toml", problem.spec_path.read_bytes(), False),
            (
                f"reference/{problem.spec.reference.file}",
                problem.reference_path.read_bytes(),
                False,
            ),
            (f"dist/{wheel.name}", wheel.read_bytes(), False),
        ]
    buffer = io.BytesIO()  # a few hundred KiB: the wheel is most of it
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, executable in files:
            _add(archive, name, data, executable=executable)
    write_atomic(out, buffer.getvalue())
    return Built(members=tuple(name for name, _, _ in files), wheel=wheel.name)


# --------------------------------------------------------------------------------------------
# On Gradescope: run_autograder
# --------------------------------------------------------------------------------------------


def find_submission(folder: Path, function: str) -> Path | str:
    """The student's file in Gradescope's submission folder, or why there is none to grade.

    The only .py/.ipynb file; among several, the only one that defines the function.
    """
    found = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUBMISSION_SUFFIXES
        and path.is_file()
        and not path.is_symlink()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not found:
        return (
            f"No .py or .ipynb file was submitted. Upload your solution, the file that "
            f"defines {function}()."
        )
    if len(found) == 1:
        return found[0]
    defining = [
        path
        for path in found
        if function in defined_functions(path.read_text(encoding="utf-8", errors="replace"))
    ]
    if len(defining) == 1:
        return defining[0]
    names = ", ".join(str(path.relative_to(folder)) for path in found)
    return (
        f"Several files were submitted ({names}) and "
        f"{'more than one' if defining else 'none'} of them defines {function}(). Submit one "
        f"file, the one that defines {function}()."
    )


def _not_graded(message: str) -> str:
    results = {
        "score": 0.0,
        "output": safe_text.visible_controls(message),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }
    return json.dumps(results, indent=2) + "\n"


def run_autograder(
    root: Path, console: Console | None = None, *, setup: Setup | None = None
) -> int:
    """Grade the submission under root/submission and write root/results/results.json.

    Returns 0 when results.json holds a grading (whatever the score), 1 when the course's
    set-up failed (the results then say so, and staff see why in the stdout). `setup`: the
    runners (default: Gradescope's container's, `Setup.for_gradescope`).
    """
    console = console or output_console(soft_wrap=True)
    results = root / "results" / "results.json"
    source = root / "source"
    for unprotected in _make_private(root):
        console.print(f"warning: {safe_text.terminal(unprotected)}", markup=False)
    try:
        config = json.loads((source / CONFIG).read_text(encoding="utf-8"))
        problem = load_problem(
            str(config["problem"]),
            problems_dir=source / "problems",
            reference_dir=source / "reference",
        )
        seed = int(config["seed"])
        found = find_submission(root / "submission", problem.spec.function)
        if isinstance(found, str):
            write_atomic(results, _not_graded(found))
            console.print(safe_text.terminal(found), markup=False)
            return 0
        graded = _grade(found, problem, seed, root, console, setup or Setup.for_gradescope())
    except Exception as exc:  # every path ends in a results.json Gradescope can show
        write_atomic(
            results,
            _not_graded(
                "The autograder could not grade this submission because of a fault in the "
                "course's set-up, not in your code. Course staff have been told what went "
                "wrong; you may be asked to submit again."
            ),
        )
        console.print(safe_text.error_lines(str(exc), "grader error: "), markup=False)
        return 1
    # Last: the run's processes are all gone by now (the runner killed every process of the
    # submission's uid before it returned), so nothing of the submission can rewrite it.
    write_atomic(results, gradescope_json(graded.student))
    return 0


def _make_private(root: Path) -> list[str]:
    """Only the grader may enter the autograder's folders: the spec, the seed, the reference
    and the results are out of reach of a submission running under a uid of its own.
    Returns what could not be made private, for staff."""
    problems = []
    for folder in (root, root / "source", root / "results"):
        if folder.is_dir() and not folder.is_symlink():
            try:
                folder.chmod(0o700)
            except OSError as exc:
                problems.append(f"{folder} could not be made private (mode 0700): {exc}")
    return problems


def _isolation_line(setup: Setup) -> str:
    """Staff's line on how submissions are isolated here, and what that leaves open."""
    isolation = setup.submissions.isolation()
    if isolation == "full":
        return "isolation full"
    why = full_isolation_problem()
    uid_problem = run_uid_problem()
    if uid_problem is None:
        return (
            f"isolation basic, own uid (no namespaces: {why}): the submission runs as an "
            f"unprivileged uid of its own, every process of which is killed before "
            f"results.json is written"
        )
    return (
        f"isolation basic, same uid as the grader ({uid_problem}): the submission could read "
        f"the spec and change results.json; run the autograder as root"
    )


def _grade(
    path: Path, problem: Problem, seed: int, root: Path, console: Console, setup: Setup
) -> Graded:
    console.print(
        f"grading {safe_text.markup(str(path.relative_to(root)))} for {problem.spec.id} "
        f"v{problem.spec.version}, seed {seed}"
    )
    console.print(safe_text.markup(_isolation_line(setup)))
    grader = Grader(setup)
    grader.expected(problem, seed)  # the reference runs now, kept for the grading below
    if setup.submissions.isolation() != "full":
        # Without full isolation the submission runs as this user (root in Gradescope's
        # container) and could read the reference: its outcomes are in memory now, so the
        # file goes before the submission runs. The container is thrown away after this run.
        shutil.rmtree(root / "source" / "reference", ignore_errors=True)
    graded = grader.grade(path, problem, seed=seed, display_name=path.name)
    if graded.fault:
        raise RuntimeError(graded.staff.message)
    # Gradescope shows this stdout to staff only: the staff view, hidden cases included.
    print_report(graded.staff, console)
    return graded


def main() -> None:
    """`python -m grader.gradescope [ROOT]`: what run_autograder calls."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
    sys.exit(run_autograder(root))


if __name__ == "__main__":
    main()
