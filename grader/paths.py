"""Where the grader's checkout is: a constant both the problem catalogue and the sandbox
policy need, kept apart from either so that neither imports the other."""

from __future__ import annotations

from pathlib import Path

# The repository layout is fixed: grader/, problems/ and reference/ sit side by side. (After
# `pip install .` this is site-packages, which holds no problems/ or pyproject.toml.)
REPO_ROOT = Path(__file__).resolve().parent.parent
