"""Each sink's rule in grader/safe_text.py, checked on what a reader of that sink would get."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urljoin

import pytest
from helpers import HOSTILE_TEXTS
from rich.console import Console
from rich.text import Text

from grader import safe_text
from grader.render import batch_page

EVERY_CONTROL = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_terminal_text_has_no_control_character_but_newline_and_tab(text: str) -> None:
    shown = safe_text.terminal(text)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown)
    shown.encode("utf-8")  # no lone surrogate left to crash a print


def test_controls_are_shown_as_python_escapes() -> None:
    assert safe_text.terminal("\x1b[32m11/11 points") == "\\x1b[32m11/11 points"
    assert safe_text.terminal("a\x00b\x9bc\x7f") == "a\\x00b\\x9bc\\x7f"
    assert safe_text.terminal("tab\tand\nnewline") == "tab\tand\nnewline"
    assert safe_text.terminal("\u202egnp.exe") == "\\u202egnp.exe"
    assert safe_text.terminal("bad \udcff byte") == "bad \\udcff byte"
    shown = safe_text.visible_controls(EVERY_CONTROL)
    assert shown.count("\\x") == len(EVERY_CONTROL) - 2  # all but \t and \n


def test_rich_prints_terminal_text_without_an_escape_sequence() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system=None, width=200)
    for text in HOSTILE_TEXTS:
        console.print(Text(safe_text.terminal(text)))
    assert "\x1b" not in buffer.getvalue()
    assert "\x07" not in buffer.getvalue()


COMMAND = re.compile(r"\s*::[^\W\d_]")  # what GitHub's runner reads as a workflow command


@pytest.mark.parametrize(
    "text",
    ["::error::forged", "  ::add-mask::x", "ok\n::warning file=a.py::x", "\u3000::notice::x"],
)
def test_no_line_of_terminal_text_is_a_workflow_command_wherever_it_wraps(text: str) -> None:
    shown = safe_text.terminal(text)
    # A terminal or Rich may wrap the text before any of its characters.
    for start in range(len(shown)):
        assert not COMMAND.match(shown[start:]), shown[start:]


def test_terminal_keeps_python_slices() -> None:
    assert safe_text.terminal("x[::2] + y[::-1]") == "x[::2] + y[::-1]"


def test_legacy_workflow_commands_are_defused_anywhere_in_a_line() -> None:
    shown = safe_text.terminal("look: ##[add-mask]secret and ##[error]forged")
    assert "##[" not in shown
    assert shown == "look: ##\\x5badd-mask]secret and ##\\x5berror]forged"


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("[x]alice", "[x]alice"),
        ("[link=https://evil.example]appeal", "[link=https://evil.example]appeal"),
    ],
)
def test_markup_prints_what_the_student_wrote(text: str, printed: str) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=200)
    console.print(f"[bold]{safe_text.markup(text)}[/]", highlight=False)
    output = re.sub("\x1b\\[[0-9;]*m", "", buffer.getvalue())  # our own bold, nothing else
    assert output == printed + "\n"


def test_error_lines_keep_every_line_behind_the_grader() -> None:
    shown = safe_text.error_lines("sandbox: x\n::error::forged\n\x1b[2K", "grader: error: ")
    lines = shown.split("\n")
    assert lines[0] == "grader: error: sandbox: x"
    assert all(line.startswith("  ") for line in lines[1:])
    assert not any(COMMAND.match(line) for line in lines)
    assert "\x1b" not in shown


@pytest.mark.parametrize(
    "text",
    [
        "=cmd|' -C calc'!A0",
        '=HYPERLINK(CONCAT("http:",CHAR(47),CHAR(47),"evil.example"),"appeal")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1",
        "\r=1",
        "  =1+1",
    ],
)
def test_csv_cell_never_starts_a_formula(text: str) -> None:
    cell = safe_text.csv_cell(text)
    assert cell.startswith("'")
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell, "x"])
    (read, _), *_ = csv.reader(io.StringIO(buffer.getvalue()))
    assert read == cell and read[0] not in "=+-@\t\r"


def test_csv_cell_leaves_plain_ids_alone() -> None:
    assert safe_text.csv_cell("alice") == "alice"
    assert safe_text.csv_cell("o'brien=1") == "o'brien=1"


@pytest.mark.parametrize(
    "student", ["javascript:alert(document.domain)", "//evil.example/x", "a b?c#d", "..", "%2e"]
)
def test_relative_link_stays_next_to_the_page(student: str) -> None:
    link = safe_text.relative_link(student, ".json")
    assert link.startswith("./")
    assert urljoin("file:///out/index.html", link).startswith("file:///out/")
    assert unquote(link[2:]) == student + ".json"  # the file it names is the student's


def test_html_page_escapes_every_value() -> None:
    summary = _summary_with_ids(["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
    page = batch_page(summary)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    policy = re.search('http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None
    assert html.unescape(policy.group(1)).startswith("default-src 'none';")
    assert "script-src" not in policy.group(1)


def _summary_with_ids(ids: list[str]) -> dict[str, object]:
    return {
        "problem": {"id": "p", "version": "1"},
        "seed": 1,
        "students": len(ids),
        "max_score": 1.0,
        "full_marks": 0,
        "by_status": {"graded": len(ids)},
        "scores": {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0, "histogram": []},
        "case_pass_rates": [],
        "hints": [{"id": ids[0], "kind": "mistake", "text": ids[-1], "students": len(ids)}],
        "common_failures": [],
        "skipped": [],
        "reports": {
            i: {"score": 0.0, "status": "graded", "failed_cases": [0], "hints": [i]} for i in ids
        },
    }


@pytest.mark.parametrize(
    "text",
    [
        "![](https://evil.example/pixel)",
        "[See your full grade](https://evil.example/login)",
        "a ` b `` c ``` d",
        "`starts and ends`",
        "<img src=x onerror=alert(1)>",
        "| a | b |",
    ],
)
def test_markdown_code_span_holds_the_text_whole(text: str) -> None:
    span = safe_text.markdown_code(text)
    fence = re.match("`+", span)
    assert fence is not None
    run = fence.group()
    assert span.endswith(" " + run)
    assert span[len(run) + 1 : -len(run) - 1] == text  # the span's content, unchanged
    assert all(len(r) != len(run) for r in re.findall("`+", text))  # no run closes it early


def test_markdown_cell_escapes_the_pipe_and_keeps_one_line() -> None:
    cell = safe_text.markdown_cell("a | b\n| c")
    assert "\n" not in cell
    assert re.search(r"(?<!\\)\|", cell) is None


def test_markdown_block_fence_is_longer_than_any_backtick_run() -> None:
    block = safe_text.markdown_block("```\n![](https://evil.example/pixel)\n````")
    first, *_, last = block.split("\n")
    assert first == "`````text" and last == "`````"


def test_xml_text_is_accepted_by_an_xml_parser() -> None:
    hostile = EVERY_CONTROL + "\ud800\ufffe\uffff end"
    element = ET.Element("failure", message=safe_text.xml_text(hostile))
    element.text = safe_text.xml_text(hostile)
    # The XML parsed is the one this test just built, from escaped text.
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))  # noqa: S314
    assert parsed.text is not None and parsed.text.endswith(" end")


def test_workflow_data_keeps_a_message_on_one_line() -> None:
    data = safe_text.workflow_data("boom\r\n::error::x%0A\x1b[31m")
    assert "\n" not in data and "\r" not in data and "\x1b" not in data
    assert data == "boom\\x0d%0A:\\x3aerror:\\x3ax%250A\\x1b[31m"
    assert safe_text.workflow_property("a:b,c") == "a%3Ab%2Cc"


def test_json_for_log_carries_the_same_data_without_a_legacy_command() -> None:
    data = {"message": "##[add-mask]secret\n::error::x\x9b2J\u202e", "ok": "a[1]"}
    text = safe_text.json_for_log(json.dumps(data, indent=2, ensure_ascii=False))
    assert "##[" not in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text)
    assert not any(COMMAND.match(line) for line in text.splitlines())
    assert json.loads(text) == data
