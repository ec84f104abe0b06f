"""Files the grader writes: atomic, readable by whoever the umask says, and a clear error
when it cannot write them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import TOY

from grader.storage import write_atomic


def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    # A batch run as root (which full isolation needs) must write a gradebook the TA's own
    # account can read: 0644 under the usual umask, not mkstemp's 0600.
    target = tmp_path / "grades.csv"
    write_atomic(target, "student,score\n")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert target.read_text() == "student,score\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]  # no temporary left behind


def test_an_unwritable_home_is_a_clear_usage_error(tmp_path: Path) -> None:
    # A locked-down lab account: HOME cannot be created and nothing else is set. The grader
    # runs as this checkout's own user, so that it can read its code wherever the checkout is
    # (a clone in a folder only its owner may enter): a root's capabilities are dropped, and
    # without CAP_DAC_OVERRIDE root cannot write into a folder of mode 0555 either. (It ran as
    # uid 65534, which cannot import the grader from such a clone: "No module named grader".)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)  # whatever the umask
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "XDG_"))}
    env["HOME"] = str(locked / "home")
    env["GRADER_NO_DAEMON"] = "1"  # no daemon left behind by the test
    no_capabilities = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    result = subprocess.run(
        [
            *(no_capabilities if os.geteuid() == 0 else []),
            sys.executable,
            "-m",
            "grader",
            "check",
            str(TOY / "submissions" / "correct.py"),
            "--problems-dir",
            str(TOY / "problems"),
            "--reference-dir",
            str(TOY / "reference"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "GRADER_CACHE_DIR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (locked / "home").exists()
