"""The in-notebook check: grade what a Jupyter or Colab kernel has run, without leaving it.

Runs in the student's kernel, on the student's machine: `check("graphdef_vs_state")` in a
cell turns the cells the kernel has run into a notebook (notebook.py converts it, as for a
submitted .ipynb) and grades it as `grader check` does, the student's code in the sandbox.
This is a frontend, like the CLI: it imports grading, packs and renderers, and nothing below
it imports it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.engine import Catalog, Graded, Grader, Setup
from grader.ipynb import Converted, convert_cells, parses_as_ipython
from grader.models import Report
from grader.render import print_report


def check(
    problem_id: str | None = None,
    *,
    pack: str | Path | None = None,
    seed: int | None = None,
    show: bool = True,
    shell: Any = None,
    setup: Setup | None = None,
) -> Report:
    """Check the function this notebook's kernel has defined, without leaving the notebook.

    In Jupyter or Colab, after `%pip install grader` (or the course's wheel):

        import grader.notebook
        grader.notebook.check("graphdef_vs_state")

    The cells the kernel has run, in the order they ran (its `In` history: a cell run twice
    counts twice, as in the kernel), become a notebook that is graded exactly like a submitted
    .ipynb, against what `grader check` would choose (`engine.Catalog`): the pack named by
    `pack=` (a folder or its pack.json), else the reference where this machine has it, else
    the course's public practice pack in packs/<problem id>/. A run cell that is not Python (a
    typo fixed in a later run) is left out. Prints the verdict as `grader check` does; returns
    the report (student's view). `setup`: the runners (default: `Setup.for_student()`).
    """
    if shell is None:
        from IPython import get_ipython  # present wherever a notebook runs

        shell = get_ipython()
        if shell is None:
            raise RuntimeError(
                "grader.notebook.check() grades the cells a notebook's kernel has run: "
                "call it in a Jupyter or Colab notebook. For a file, run `grader check FILE` "
                "instead."
            )
    # The cells as typed (`In` holds them after IPython's rewriting: `!ls` is a call there).
    raw_history = shell.history_manager.input_hist_raw[1:]
    history = [cell for cell in raw_history if isinstance(cell, str)]
    view = _grade_history(history, problem_id, pack, seed, setup).student
    if show:
        from rich.console import Console

        print_report(view, Console(file=sys.stdout, force_jupyter=False, soft_wrap=True))
    return view


_NOT_PYTHON = "# (a run of this cell was not Python, a typo fixed later, say: left out)\n"


def _grade_history(
    history: Sequence[str],
    problem_id: str | None,
    pack: str | Path | None,
    seed: int | None,
    setup: Setup | None = None,
) -> Graded:
    sources = [cell if parses_as_ipython(cell) else _NOT_PYTHON for cell in history]
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": f"run-{number}",
                "metadata": {},
                "execution_count": number,
                "outputs": [],
                "source": source,
            }
            for number, source in enumerate(sources, start=1)
        ],
    }
    with tempfile.TemporaryDirectory(prefix="grader-notebook-") as folder:
        path = Path(folder) / "notebook.ipynb"
        path.write_text(json.dumps(notebook))
        name = "this notebook"
        # The functions the cells define pick the pack or problem when none is named.
        code = ""
        if problem_id is None:
            python = convert_cells(sources, name)
            code = python.source if isinstance(python, Converted) else ""
        # Where packs and problems are found, in the order every door uses (engine.Catalog).
        chosen = Path(pack) if pack is not None else None
        target = Catalog().target(code, problem_id=problem_id, pack=chosen)
        grader = Grader(setup or Setup.for_student())
        return grader.grade(path, target, seed=seed, display_name=name)
