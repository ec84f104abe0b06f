"""`grader batch` and `grader check` on files whose names and output are an attacker's.

The toy problem (no JAX) at a fixed seed: grades.csv, summary.json, index.html and the
progress lines on stderr are compared with golden files; the page is opened in Chromium and
its `javascript:` link clicked; `grader check --json -` prints the report and the verdict
inert; a grader error quoting student text is printed inert. The commands run in process on
InProcessRunners (what they write is the subject, not the sandbox).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from conftest import TOY, TOY_DIRS
from fakes import fake_setup
from helpers import FORMULA_CMD, FORMULA_LINK, JAVASCRIPT, MARKUP_HIDE, assert_golden

import grader.cli.grading
from grader import cli
from grader.engine import World
from grader.errors import SandboxUnavailable
from grader.models import Report

SEED = 3
MARKUP_LINK_NAME = "[link=mailto:appeal@evil.example]appeal"  # a file name cannot hold '/'
ESCAPES_NAME = "\x1b]0;pwned\x07\x1b[1A\x1b[2Keve"
COMMAND_NAME = "::error file=README.md::forged"
HOSTILE_SOURCE = r"""# Prints escapes and workflow commands, raises a message full of Markdown.
print("\x1b[1;32m11/11 points\x1b[0m\x1b[1A\x1b[2K\x1b]8;;https://evil.example\x1b\\link"
      "\x1b]8;;\x1b\\\x1b]52;c;eA==\x07\x1b]0;pwned\x07")
print("::error file=README.md,line=1::forged")


def vector_stats(x, k):
    raise RuntimeError(
        "![](https://evil.example/pixel) [See your full grade](https://evil.example/login)"
        "\x00\x01\x0b\x0c\x1b[2K\n::warning::forged\n##[add-mask]x"
    )
"""


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The class folder graded once for the module, in process (the toy's files, the suite's
    own, on InProcessRunners: what is checked is what the batch writes): the out folder and
    stderr."""
    root = tmp_path_factory.mktemp("hostile")
    folder, out = root / "class", root / "out"
    folder.mkdir()
    correct = (TOY / "submissions" / "correct.py").read_text()
    wrong = (TOY / "submissions" / "wrong_peak.py").read_text()
    files = {
        FORMULA_CMD: correct,
        FORMULA_LINK: wrong,
        JAVASCRIPT: HOSTILE_SOURCE,
        MARKUP_HIDE: correct,
        "alice": wrong,
        MARKUP_LINK_NAME: correct,
        ESCAPES_NAME: correct,
        COMMAND_NAME: wrong,
    }
    for student, source in files.items():
        (folder / f"{student}.py").write_text(source)
    (folder / "\x1b[32m11 points.txt").write_text("not a submission\n")
    for duplicate in ("##[add-mask]Dup.py", "##[add-mask]dup.py"):  # skipped, named in the reason
        (folder / duplicate).write_text(correct)
    home = root / "home"
    env = {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "GRADER_CACHE_DIR": str(tmp_path_factory.getbasetemp().parent / "grader-cache"),
        "COLUMNS": "100",
    }
    toy = [*TOY_DIRS, "--workers", "1"]  # one at a time: the progress lines come in a fixed order
    args = ["batch", str(folder), "--out", str(out), "--seed", str(SEED), *toy]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(cli.cli, args, obj=World.of(fake_setup()), env=env)
    assert result.exit_code == 0, result.output
    return out, result.stderr.replace(str(out), "<out>")


@pytest.mark.slow
def test_hostile_batch_outputs_match_their_goldens(
    request: pytest.FixtureRequest, hostile_batch: tuple[Path, str]
) -> None:
    out, stderr = hostile_batch
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", stderr)
    assert not any(re.match(r"\s*::[^\W\d_]", line) for line in stderr.splitlines())
    assert "##[" not in stderr and "duplicate student id" in stderr
    assert re.search(r"^\[\d/8\] \[x\]alice: 8/8 graded$", stderr, re.M)  # as named, not "alice"
    for line in (out / "grades.csv").read_text().splitlines()[1:]:
        assert line.lstrip('"')[0] not in "=+-@\t\r", line
    assert_golden(request, "batch/stderr.txt", stderr)
    assert_golden(request, "batch/grades.csv", (out / "grades.csv").read_text())
    assert_golden(request, "batch/summary.json", (out / "summary.json").read_text())
    assert_golden(request, "batch/index.html", (out / "index.html").read_text())


# --------------------------------------------------------------------------------------------
# The page in a real browser, driven over Chromium's DevTools pipe (no extra package)
# --------------------------------------------------------------------------------------------


# Runs a command with fd 3 and fd 4 duplicated from the two fds given (a shell such as dash
# cannot redirect from fds numbered 10 and up).
_ON_FDS_3_AND_4 = """import os, sys
os.dup2(int(sys.argv[1]), 3)
os.dup2(int(sys.argv[2]), 4)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def _high_fds(*fds: int) -> list[int]:
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for fd in fds:
        os.close(fd)
    return moved


class DevTools:
    """A minimal client of the Chrome DevTools protocol over --remote-debugging-pipe."""

    def __init__(self, chromium: str, profile: Path) -> None:
        # Chromium reads commands from fd 3 and writes replies to fd 4; the pipes are moved to
        # fds numbered 10 and up first, so that the dup2 calls cannot clobber each other.
        to_browser_read, self._to_browser = _high_fds(*os.pipe())
        self._from_browser, from_browser_write = _high_fds(*os.pipe())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ON_FDS_3_AND_4,
                str(to_browser_read),
                str(from_browser_write),
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
            ],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(deadline=time.monotonic() + 30)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, *methods: str, after: int = 0, seconds: float = 15) -> dict[str, Any] | None:
        """The first event of these kinds among events[after:] and those to come, or None."""
        deadline = time.monotonic() + seconds
        seen = after
        while True:
            for event in self.events[seen:]:
                if event.get("method") in methods:
                    return event
            seen = len(self.events)
            try:
                self.events.append(self._read(deadline))
            except TimeoutError:
                return None

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.mark.slow
def test_javascript_id_link_is_relative_and_runs_no_script(
    hostile_batch: tuple[Path, str], tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (Debian package 'chromium')")
        pytest.skip("chromium is not installed")
    out, _ = hostile_batch
    browser = DevTools(chromium, tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        browser.call("Page.enable")
        browser.call("Runtime.enable")
        browser.call("Page.navigate", url=(out / "index.html").as_uri())
        assert browser.wait_for("Page.loadEventFired") is not None
        found = browser.call(
            "Runtime.evaluate",
            expression="JSON.stringify({scripts: document.scripts.length, links: "
            "[...document.querySelectorAll('a')].map(a => [a.textContent, "
            "a.getAttribute('href'), a.href])})",
            returnByValue=True,
        )
        page = json.loads(found["result"]["value"])
        assert page["scripts"] == 0
        links = {text: (href, resolved) for text, href, resolved in page["links"]}
        href, resolved = links[JAVASCRIPT]
        assert href == "./javascript%3Aalert%28document.domain%29.html"
        assert resolved == (out / f"{JAVASCRIPT}.html").as_uri().replace(":alert", "%3Aalert")
        assert all(h.startswith("./") and r.startswith("file://") for h, r in links.values())

        # Click it, as staff would: the student's page opens, and no script runs.
        clicked = len(browser.events)
        browser.call(
            "Runtime.evaluate",
            expression=f"document.querySelector('a[href=\"{href}\"]').click()",
        )
        event = browser.wait_for(
            "Page.javascriptDialogOpening", "Page.frameNavigated", after=clicked
        )
        assert event is not None, "clicking the link did nothing"
        assert event["method"] == "Page.frameNavigated", f"a script ran: {event}"
        url = event["params"]["frame"]["url"]
        assert url.startswith("file://") and unquote(url).endswith(f"/{JAVASCRIPT}.html")
        assert browser.wait_for("Page.javascriptDialogOpening", after=clicked, seconds=2) is None
        found = browser.call(
            "Runtime.evaluate",
            expression="JSON.stringify({scripts: document.scripts.length, id: "
            "document.getElementById('student').textContent, links: "
            "[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))})",
            returnByValue=True,
        )
        student = json.loads(found["result"]["value"])
        assert student["scripts"] == 0
        assert student["id"] == JAVASCRIPT  # shown as text
        assert all(link.startswith("./") for link in student["links"])
    finally:
        browser.close()


def test_grader_error_quoting_student_text_is_inert_on_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    forged = "the sandbox could not be set up: \x1b]0;pwned\x07\n::error file=README.md::forged"

    def refuse(folder: Path) -> None:
        raise SandboxUnavailable(forged)

    monkeypatch.setattr(grader.cli.grading, "discover", refuse)
    result = CliRunner().invoke(cli.cli, ["batch", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == cli.EXIT_USAGE
    lines = result.stderr.splitlines()
    assert lines[0] == "grader: error: the sandbox could not be set up: \\x1b]0;pwned\\x07"
    assert lines[1] == "  :\\x3aerror file=README.md:\\x3aforged"


def test_check_prints_a_hostile_report_inert(tmp_path: Path) -> None:
    """`grader check --json -`: the JSON on stdout and the verdict on stderr, as CI shows them."""
    source = tmp_path / f"{JAVASCRIPT}.py"
    source.write_text(HOSTILE_SOURCE)
    args = ["check", str(source), "--seed", str(SEED), "--json", "-", *TOY_DIRS]
    world = World.of(fake_setup())
    result = CliRunner().invoke(cli.cli, args, obj=world, env={"COLUMNS": "80"})
    assert result.exit_code == 1, result.output
    report = Report.model_validate_json(result.stdout)
    assert "##[add-mask]x" in report.cases[0].message  # the data is whole
    assert "\x1b]0;pwned" in report.stdout
    for output in (result.stdout, result.stderr):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", output)
        assert "##[" not in output
        assert not any(re.match(r"\s*::[^\W\d_]", line) for line in output.splitlines())
    assert "![](https://evil.example/pixel)" in result.stderr  # shown, as text
