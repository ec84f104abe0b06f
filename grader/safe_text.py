"""Untrusted text made safe for each place it is shown: the one door student text leaves by.

A submission controls its file name (which becomes the student id in a batch), what it prints,
its exception types, messages and tracebacks, and through them much of a report's message.
Staff and students open what the grader makes of that text in a terminal, a spreadsheet, a
browser, GitHub's job summary and log, and CI tools reading JUnit. Each function below is the
rule for one of those sinks; renderers call them and never escape anything by themselves.

- `visible_controls`: the base of every rule. Characters that steer a terminal or a text
  layout (C0 controls other than newline and tab, DEL, C1 controls, the bidirectional
  overrides, line and paragraph separators) and those that cannot be encoded or stored (lone
  surrogates, U+FFFE, U+FFFF) are shown as Python escapes, `\\x1b`, `\\u202e`.
- `terminal`: also the terminal is a CI log, where GitHub's runner reads workflow commands:
  `::` before a letter (`::error::`) becomes `:\\x3a`, and `##[` (the legacy prefix, honoured
  anywhere in a line) becomes `##\\x5b`, wherever they are, since wrapping can start a line
  anywhere.
- `markup`: `terminal`, then Rich markup escaped, for text placed in a markup string;
  `error_lines`: a grader error for stderr, which may quote a submission.
- `csv_cell`: a cell that a spreadsheet would read as a formula (first character after any
  spaces `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, as OWASP recommends.
- `render_html` and `relative_link`: pages come from Jinja2 templates with autoescape on, and
  every value printed goes through `visible_controls` (the service's pages too, with
  `SERVICE_CONTENT_SECURITY_POLICY` as a header); links to a student's file are `./` plus
  the percent-encoded id, so no id can become a `javascript:` or an absolute URL.
- `markdown_code`, `markdown_cell` and `markdown_block`: student text in Markdown is a code
  span or a fenced block whose fence is longer than any run of backticks in the text.
- `xml_text`: `terminal`, which also removes every character XML 1.0 forbids.
- Gradescope's results: `visible_controls`, each text declared `"output_format": "text"`.
- `workflow_data` and `workflow_property`: a workflow command's message and property values,
  `terminal` then GitHub's percent escapes; `json_for_log`: JSON the grader writes (reports,
  summary, Gradescope results), the same data with controls and `##[` as JSON escapes.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from rich.markup import escape as _rich_escape

# Shown escaped everywhere: C0 but tab and newline, DEL and C1, lone surrogates, the two
# non-characters, bidirectional marks and overrides (they reorder what a reader sees), and
# the Unicode line and paragraph separators (some viewers break lines there).
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: str) -> str:
    """Text with every control, layout-steering or unencodable character shown as an escape."""
    return _CONTROLS.sub(_shown, text)


# --------------------------------------------------------------------------------------------
# Terminal and CI log
# --------------------------------------------------------------------------------------------


_COMMAND = re.compile(r"::(?=[^\W\d_])")  # `::` then a letter: how every command name starts


def _defuse_commands(text: str) -> str:
    """No part of text can be read as a GitHub workflow command, new or legacy syntax.

    The runner honours `::name` at the start of a line and `##[name` anywhere in one. Any
    character of the text may start a line once a terminal or Rich wraps it, so both are
    defused wherever they are; `x[::2]` stays as it is, since no command name starts with a
    digit or a sign.
    """
    return _COMMAND.sub(lambda _: ":\\x3a", text).replace("##[", "##\\x5b")


def terminal(text: str) -> str:
    """Untrusted text for a terminal or a CI log, as plain text (a rich Text, a print)."""
    return _defuse_commands(visible_controls(text))


def markup(text: str) -> str:
    """Untrusted text for a Rich markup string: `terminal`, then markup tags escaped."""
    return _rich_escape(terminal(text))


def error_lines(message: str, prefix: str) -> str:
    """A grader error for stderr: the first line after prefix, the rest indented under it.

    Grader errors can quote student text (a forged sandbox message, a file name); stderr is
    read for workflow commands too, so the message goes through `terminal`.
    """
    first, *rest = terminal(message).split("\n")
    return "\n".join([prefix + first, *("  " + line for line in rest)])


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def csv_cell(text: str) -> str:
    """A text cell no spreadsheet evaluates: a would-be formula gets a leading quote (OWASP).

    Leading spaces are looked through, since some importers trim them.
    """
    shown = visible_controls(text)
    if text.lstrip(" ").startswith(_FORMULA_START):
        return "'" + shown
    return shown


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _finalize(value: object) -> object:
    return visible_controls(value) if isinstance(value, str) else value


_HTML = Environment(
    loader=PackageLoader("grader", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    finalize=_finalize,
    keep_trailing_newline=True,
)

# The page needs no script and loads nothing: inline styles only. Navigation to the reports
# is not a fetch, so the links still work.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)


# The service's pages (`grader serve`), sent as a header: no script at all (a queued
# submission's page refreshes itself with a meta refresh), forms only to the service itself,
# never framed.
SERVICE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def render_html(template: str, **context: Any) -> str:
    """A page from a template in grader/templates; every value printed is escaped."""
    return _HTML.get_template(template).render(csp=CONTENT_SECURITY_POLICY, **context)


def relative_link(name: str, suffix: str = "") -> str:
    """A link to a file next to the page, for any name: `./` + the percent-encoded name."""
    return "./" + quote(name + suffix, safe="")


# --------------------------------------------------------------------------------------------
# Markdown (GitHub's job summary)
# --------------------------------------------------------------------------------------------


def _fence_length(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0) + 1


def markdown_code(text: str, limit: int = 300) -> str:
    """Untrusted text as one inline code span: nothing in it renders (no link, image, HTML).

    Whitespace runs become one space (a newline would end a table row); long text is cut.
    """
    shown = " ".join(visible_controls(text).split())
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    if not shown:
        return ""
    fence = "`" * _fence_length(shown)
    return f"{fence} {shown} {fence}"


def markdown_cell(text: str, limit: int = 300) -> str:
    """`markdown_code` for a table cell: GitHub splits cells at `|` even inside code spans."""
    return markdown_code(text, limit).replace("|", "\\|")


def markdown_block(text: str, limit: int = 2000) -> str:
    """Untrusted text as a fenced code block, its lines kept; long text is cut."""
    shown = visible_controls(text).rstrip()
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    fence = "`" * max(3, _fence_length(shown))
    return f"{fence}text\n{shown}\n{fence}"


# --------------------------------------------------------------------------------------------
# XML (JUnit) and workflow commands
# --------------------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold (it forbids most C0 controls, surrogates, U+FFFE and U+FFFF).

    It goes through `terminal`: CI tools that read JUnit often print its messages to the log.
    """
    return terminal(text)


def json_for_log(text: str) -> str:
    """JSON text safe to print (to a log, or from a file staff `cat`), decoding to the same data.

    Every character `visible_controls` escapes is written as a JSON escape (`\\u001b`,
    `\\u009b`), and so is the `[` of `##[`, a legacy workflow command honoured anywhere in a line.

    Indented JSON never starts a line with `::`, so nothing else needs changing.
    """
    escaped = _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return escaped.replace("##[", "##\\u005b")


def workflow_data(text: str) -> str:
    """A workflow command's message: `terminal`, then GitHub's toolkit escapes."""
    return terminal(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A workflow command's property value (file, title)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")
