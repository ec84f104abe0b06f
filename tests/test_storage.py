"""Files the grader writes: atomic, and readable by whoever the umask says."""

from __future__ import annotations

import os
from pathlib import Path

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
