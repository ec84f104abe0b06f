"""Gradescope: the autograder zip is built by the real command, and its real run_autograder is
run against a folder laid out as Gradescope lays out /autograder: once end to end, and in
Gradescope's container (basic isolation) where the sandbox is the subject. What results.json
says of other submissions is checked with `gradescope.run_autograder` in process, on
InProcessRunners.

The zip's wheel is not installed into a fresh venv here: that would download jax and flax
(minutes). run_autograder runs with this venv's grader instead (GRADER_VENV points at it); what
setup.sh does is checked from its text, and the wheel from its contents.
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
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TOY
from fakes import fake_setup
from helpers import FAKE_GREEN, notebook_from_source
from rich.console import Console

from grader.gradescope import run_autograder
from grader.run.policy import uid_pids

# The toy problem with an exception hint, so that a hint can reach results.json.
HINT = "k arrives as a float: call int(k) before using it as an index."
SPEC_EXTRA = f'''
[[exception_hints]]
id = "float_index"
type = "TypeError"
match = "indices must be integers"
hint = "{HINT}"
'''
RAISES = (
    "def vector_stats(x, k):\n"
    "    return [len(x), [1.0, 2.0][float(k)], 0.0]\n"  # TypeError: list indices must be ...
)
CORRECT = (TOY / "submissions" / "correct.py").read_text()
VENV = Path(sys.executable).parent.parent


def _problem_folders(tmp_path: Path) -> tuple[Path, Path]:
    problems = tmp_path / "course" / "problems"
    problems.mkdir(parents=True)
    spec = (TOY / "problems" / "vector_stats.toml").read_text()
    (problems / "vector_stats.toml").write_text(spec + SPEC_EXTRA)
    return problems, TOY / "reference"


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("zip")
    problems, reference = _problem_folders(tmp)
    out = tmp / "autograder.zip"
    done = subprocess.run(
        [
            sys.executable, "-m", "grader", "gradescope-autograder", "vector_stats",
            "--out", str(out), "--seed", "11",
            "--problems-dir", str(problems), "--reference-dir", str(reference),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "seed 11" in done.stdout
    return out


def _gradescope_layout(tmp_path: Path, archive: Path, files: dict[str, str]) -> Path:
    """/autograder as Gradescope builds it: source/ (the unzipped zip), submission/, results/,
    submission_metadata.json."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root / "source")
        for info in opened.infolist():  # zipfile does not restore modes
            (root / "source" / info.filename).chmod((info.external_attr >> 16) & 0o777)
    (root / "submission").mkdir()
    for name, text in files.items():
        path = root / "submission" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "results").mkdir()
    metadata = {"id": 1, "created_at": "2026-11-26T10:00:00Z", "users": [{"name": "A. Student"}]}
    (root / "submission_metadata.json").write_text(json.dumps(metadata))
    return root


def _run_autograder(root: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {
        **os.environ,
        "GRADER_AUTOGRADER_ROOT": str(root),
        "GRADER_VENV": str(VENV),
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [str(root / "source" / "run_autograder")],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=False,
        timeout=120,
    )
    results = json.loads((root / "results" / "results.json").read_text())
    return done, results


def _run_autograder_in_process(root: Path) -> tuple[int, str, dict[str, object]]:
    """`run_autograder` on InProcessRunners: its exit code, what it printed for staff, and the
    results it wrote."""
    out = io.StringIO()
    code = run_autograder(root, Console(file=out, width=200), setup=fake_setup())
    results = json.loads((root / "results" / "results.json").read_text())
    return code, out.getvalue(), results


def _assert_gradescope_shape(results: dict[str, object]) -> None:
    """The fields and types of Gradescope's autograder specification."""
    assert isinstance(results["score"], float)
    assert results["visibility"] == "visible"
    assert results["stdout_visibility"] == "hidden"
    assert isinstance(results["output"], str)
    tests = results["tests"]
    assert isinstance(tests, list)
    for test in tests:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility", "status"}
        assert test["status"] in {"passed", "failed"}
        assert 0 <= test["score"] <= test["max_score"]


def test_the_zip_holds_what_gradescope_needs(autograder_zip: Path) -> None:
    with zipfile.ZipFile(autograder_zip) as opened:
        names = opened.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in opened.infolist()}
        setup = opened.read("setup.sh").decode()
        config = json.loads(opened.read("autograder.json"))
        wheel = next(name for name in names if name.startswith("dist/grader-"))
        with opened.open(wheel) as handle, zipfile.ZipFile(handle) as inner:
            packaged = set(inner.namelist())
    # Gradescope looks for both scripts at the root of the archive.
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert {"problems/vector_stats.toml", "reference/vector_stats.py"} <= set(names)
    assert config == {"problem": "vector_stats", "seed": 11}
    assert wheel.endswith("-py3-none-any.whl")
    assert {"grader/gradescope.py", "grader/templates/batch.html"} <= packaged
    # setup.sh installs that wheel (PyPI only for dependencies) into a venv of Python 3.11+.
    assert '"$SOURCE"/dist/*.whl' in setup
    assert "sys.version_info < (3, 11)" in setup
    assert "python3.11-venv" in setup
    assert "github" not in setup.lower()
    checked = subprocess.run(["bash", "-n", "-c", setup], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_run_autograder_writes_results_with_hints(autograder_zip: Path, tmp_path: Path) -> None:
    """The end-to-end one: the zip's run_autograder script, run as Gradescope runs it."""
    root = _gradescope_layout(tmp_path, autograder_zip, {"solution.py": RAISES})
    done, results = _run_autograder(root)
    assert done.returncode == 0, done.stderr
    _assert_gradescope_shape(results)
    assert results["score"] == 0.0
    tests = results["tests"]
    assert isinstance(tests, list)
    assert len(tests) == 4  # one per case of the toy
    assert all(test["status"] == "failed" for test in tests)
    assert HINT in str(results["output"])
    # The seed is for staff (run_autograder's stdout, which Gradescope shows staff only).
    assert "seed" not in json.dumps(results)
    assert "seed 11" in done.stdout


def test_run_autograder_full_marks_beside_other_files(autograder_zip: Path, tmp_path: Path) -> None:
    # A notebook (as downloaded from Colab), beside a text file and a .py with no function.
    notebook = json.dumps(notebook_from_source(CORRECT, demo_call="print(vector_stats(x, 2.0))"))
    files = {"notes/README.txt": FAKE_GREEN, "solution.ipynb": notebook, "util.py": "X = 1\n"}
    root = _gradescope_layout(tmp_path, autograder_zip, files)
    code, printed, results = _run_autograder_in_process(root)
    assert code == 0, printed
    _assert_gradescope_shape(results)
    tests = results["tests"]
    assert isinstance(tests, list)
    assert results["score"] == sum(test["max_score"] for test in tests) > 0
    assert "\x1b" not in (root / "results" / "results.json").read_text()


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"notes.txt": "hello"}, "No .py or .ipynb file was submitted"),
        ({"a.py": "x = 1\n", "b.py": "y = 2\n"}, "none of them defines vector_stats()"),
    ],
    ids=["nothing", "ambiguous"],
)
def test_run_autograder_without_a_file_to_grade_says_what_to_submit(
    autograder_zip: Path, tmp_path: Path, files: dict[str, str], says: str
) -> None:
    root = _gradescope_layout(tmp_path, autograder_zip, files)
    code, printed, results = _run_autograder_in_process(root)
    assert code == 0, printed
    _assert_gradescope_shape(results)
    assert results["score"] == 0.0
    assert says in str(results["output"])


def test_a_broken_autograder_still_writes_results_and_tells_staff(
    autograder_zip: Path, tmp_path: Path
) -> None:
    root = _gradescope_layout(tmp_path, autograder_zip, {"solution.py": CORRECT})
    (root / "source" / "problems" / "vector_stats.toml").write_text("id = 'vector_stats'\n")
    code, printed, results = _run_autograder_in_process(root)
    assert code == 1
    _assert_gradescope_shape(results)
    assert results["score"] == 0.0
    assert "fault in the course's set-up, not in your code" in str(results["output"])
    assert "is invalid" in printed  # what staff read in the autograder's stdout


# --------------------------------------------------------------------------------------------
# Gradescope's container: root, but no namespaces and no writable cgroup (basic isolation)
# --------------------------------------------------------------------------------------------

# Leaves its process group and session (setsid and a double fork) while the file loads, and
# waits for results.json to rewrite it with full marks; says where it got to in `marks`.
WATCHER = """\
import json, os, time
MARKS = {marks!r}
RESULTS = {results!r}
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(os.path.join(MARKS, "watcher"), "w") as out:
            out.write(f"{{os.getpid()}} {{os.getuid()}}")
        for _ in range(1200):
            try:
                if os.path.exists(RESULTS):
                    with open(RESULTS, "w") as out:
                        json.dump({{"score": 8.0, "output": "all good", "tests": []}}, out)
                    open(os.path.join(MARKS, "rewrote"), "w").close()
                    break
            except OSError:
                pass
            try:
                with open({spec!r}) as spec:
                    open(os.path.join(MARKS, "read_spec"), "w").write(spec.read())
            except OSError:
                pass
            time.sleep(0.05)
        time.sleep(600)
    os._exit(0)
os.wait()


def vector_stats(x, k):
    return [0, 0.0, 0.0]
"""


def _python_readable_mounts() -> str:
    """Shell lines that, inside a private mount namespace, let other users reach this Python
    installation (here under /root, 0700; Gradescope's is in /usr or /opt) and this checkout
    with its venv (a clone in a private folder, `mktemp -d` or a 0700 home): the folder that
    blocks the way is covered by a tmpfs and only what is needed is bound back, at its path."""
    import grader

    needed = {
        Path(sys.base_prefix).resolve(),
        VENV.resolve(),
        Path(grader.__file__).resolve().parent.parent,
    }
    children: dict[Path, set[str]] = {}
    for path in needed:
        blocked = [p for p in reversed(path.parents) if not p.stat().st_mode & 0o001]
        if blocked:
            top = blocked[0]
            children.setdefault(top, set()).add(path.relative_to(top).parts[0])
    lines = []
    for number, (top, names) in enumerate(sorted(children.items())):
        keep = f'"$KEEP/{number}"'
        lines.append(
            f"mkdir -p {keep} && mount --bind {top} {keep} && "
            f"mount -t tmpfs -o mode=0755 tmpfs {top} && "
        )
        lines += [
            f"mkdir -p {top / name} && mount --bind {keep}/{name} {top / name} && "
            for name in sorted(names)
        ]
    return "".join(lines)


def _run_autograder_basic(
    root: Path, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """run_autograder as Gradescope runs it: root, `unshare` not on its PATH, no cgroups."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and util-linux's unshare to build Gradescope's container")
    fake_bin = tmp_path / "bin"  # bash and env only: no unshare
    fake_bin.mkdir()
    for tool in ("bash", "env"):
        found = shutil.which(tool)
        assert found is not None
        (fake_bin / tool).symlink_to(found)
    script = (
        "set -e; mount --make-rprivate / && "
        "mount -t tmpfs -o mode=0555 tmpfs /sys/fs/cgroup && "
        f"{_python_readable_mounts()}"
        'PATH="$RUN_PATH" exec "$@"'
    )
    env = {
        **os.environ,
        "GRADER_AUTOGRADER_ROOT": str(root),
        "GRADER_VENV": str(VENV),
        "RUN_PATH": f"{fake_bin}{os.pathsep}{VENV / 'bin'}",
        "KEEP": str(tmp_path / "keep"),
    }
    done = subprocess.run(
        [unshare, "--mount", "sh", "-c", script, "sh", str(root / "source" / "run_autograder")],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=False,
        timeout=180,
    )
    written = root / "results" / "results.json"
    assert written.exists(), done.stdout + done.stderr
    return done, json.loads(written.read_text())


@pytest.fixture
def marks() -> Iterator[Path]:
    """A folder the submission's uid can write to, outside pytest's private folders."""
    folder = Path(tempfile.mkdtemp(prefix="grader-marks-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_watcher_that_left_its_session_cannot_rewrite_results_in_basic_isolation(
    autograder_zip: Path, tmp_path: Path, marks: Path
) -> None:
    root = tmp_path / "autograder"
    results = root / "results" / "results.json"
    spec = root / "source" / "problems" / "vector_stats.toml"
    hostile = WATCHER.format(marks=str(marks), results=str(results), spec=str(spec))
    root = _gradescope_layout(tmp_path, autograder_zip, {"solution.py": hostile})
    done, graded = _run_autograder_basic(root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "isolation basic, own uid" in done.stdout, done.stdout
    # The watcher ran, under a uid of its own, and is gone; it never reached results or spec.
    pid, uid = (int(word) for word in (marks / "watcher").read_text().split())
    assert uid not in (0, os.getuid())
    assert not Path(f"/proc/{pid}").exists()
    assert uid_pids(uid) == []
    time.sleep(0.3)  # what it would have done by now
    assert not (marks / "rewrote").exists()
    assert not (marks / "read_spec").exists()
    graded = json.loads(results.read_text())
    assert graded["score"] == 0.0
    assert len(graded["tests"]) == 4
    assert all(test["status"] == "failed" for test in graded["tests"])


def test_a_correct_file_gets_full_marks_under_its_own_uid_in_basic_isolation(
    autograder_zip: Path, tmp_path: Path
) -> None:
    root = _gradescope_layout(tmp_path, autograder_zip, {"solution.py": CORRECT})
    done, results = _run_autograder_basic(root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "isolation basic, own uid" in done.stdout
    assert "isolation: basic, own uid" in done.stdout  # the staff report says so too
    tests = results["tests"]
    assert isinstance(tests, list)
    assert results["score"] == sum(test["max_score"] for test in tests) > 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "results").stat().st_mode) == 0o700
