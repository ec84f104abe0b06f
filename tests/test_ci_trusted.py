"""Pull-request CI in two workflows: the artifact, the trusted grading, the check run, the policy.

The collect side (`grader pr collect`) runs in the pull request's own workflow; everything the
trusted side receives from it is written here the way a hostile author could write it, and the
trusted side (`grader pr grade`, `grader pr post`) must refuse it with a failing check, never a
pass. GitHub's API is replaced by a local HTTP server that records what is sent. The toy
problem keeps it free of JAX and fast.

`test_the_trusted_workflow_steps_grade_and_post_as_written` is the end-to-end test of the
`pr` doors (the workflows' own command lines, real processes, the sandbox); every other
command runs in this process on in-process runners (`helpers.invoke`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from conftest import TOY, TOY_DIRS, ReferenceCache, in_process_setup
from helpers import invoke
from pydantic import ValidationError

from grader.ci import Change, FileVerdict, markdown_summary
from grader.ci_artifact import Artifact
from grader.ci_checks import (
    MAX_SUMMARY,
    Annotation,
    CheckRun,
    Output,
    fit_summary,
    graded_check_run,
    post_check_run,
)
from grader.engine import Setup
from grader.feedback import student_view
from grader.grading import grade as grade_file
from grader.problems import Problem
from grader.run import FakeRunner
from grader.run.fake import InProcessRunner

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
REFERENCE_SECRET = (TOY / "reference" / "vector_stats.py").read_text()
OTHER_SHA = "f" * 40


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def grader(*args: str, env: dict[str, str] | None = None, setup: Setup | None = None) -> Result:
    """A `grader` command, run in this process on in-process runners (or `setup`'s)."""
    return invoke(setup or in_process_setup(), *args, env=dict(env or {}))


def make_course(repo: Path) -> Path:
    """A course repository: a base commit, then a pull-request branch `pr`."""
    (repo / "submissions").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("course\n")
    (repo / "submissions" / "old.py").write_text("def vector_stats(x, k):\n    return [0, 0, 0]\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    shutil.copyfile(TOY / "submissions" / "correct.py", repo / "submissions" / "alice.py")
    shutil.copyfile(TOY / "submissions" / "wrong_peak.py", repo / "submissions" / "bob.py")
    (repo / "submissions" / "notes.txt").write_text("not a submission\n")
    (repo / "grader.py").write_text("print('a pull request may change anything outside')\n")
    git(repo, "rm", "-q", "submissions/old.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pull request")
    return repo


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return make_course(tmp_path / "course")


@dataclass
class Collected:
    artifact: Path
    head_sha: str

    @property
    def manifest_path(self) -> Path:
        return self.artifact / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text())  # type: ignore[no-any-return]

    def rewrite_manifest(self, change: Callable[[dict[str, Any]], None]) -> None:
        data = self.manifest()
        change(data)
        self.manifest_path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """The artifact `grader pr collect` writes for pull request #7, as the collect job does."""
    course = make_course(tmp_path_factory.mktemp("pristine") / "course")
    artifact = course.parent / "artifact"
    result = grader(
        "pr", "collect", "--repo", str(course), "--base", "main", "--head", "pr",
        "--pr", "7", "--out", str(artifact),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return Collected(artifact, git(course, "rev-parse", "pr"))


@pytest.fixture
def collected(pristine: Collected, tmp_path: Path) -> Collected:
    """A copy of the pristine artifact, for one test to spoil."""
    artifact = tmp_path / "artifact"
    shutil.copytree(pristine.artifact, artifact, symlinks=True)
    return Collected(artifact, pristine.head_sha)


def grade(
    collected: Collected,
    tmp_path: Path,
    *args: str,
    sha: str | None = None,
    pr: str = "7",
    setup: Setup | None = None,
) -> tuple[Result, dict[str, Any] | None]:
    payload = tmp_path / "check-run.json"
    payload.unlink(missing_ok=True)
    result = grader(
        "pr", "grade", str(collected.artifact), "--sha", sha or collected.head_sha, "--pr", pr,
        "--payload", str(payload), "--seed", "3", *TOY_DIRS, *args, setup=setup,
    )  # fmt: skip
    return result, json.loads(payload.read_text()) if payload.exists() else None


# --------------------------------------------------------------------------------------------
# Collect
# --------------------------------------------------------------------------------------------


def test_collect_writes_the_changed_submissions_and_a_manifest(collected: Collected) -> None:
    files = sorted(
        p.relative_to(collected.artifact).as_posix() for p in collected.artifact.rglob("*")
    )
    assert files == [
        "manifest.json",
        "submissions",
        "submissions/alice.py",
        "submissions/bob.py",
    ]
    manifest = collected.manifest()
    assert manifest["pr_number"] == 7
    assert manifest["head_sha"] == collected.head_sha
    assert [(f["path"], f["status"]) for f in manifest["files"]] == [
        ("submissions/alice.py", "added"),
        ("submissions/bob.py", "added"),
    ]
    assert manifest["deleted"] == ["submissions/old.py"]
    alice = (TOY / "submissions" / "correct.py").read_bytes()
    assert manifest["files"][0]["sha256"] == hashlib.sha256(alice).hexdigest()


def test_collect_includes_notebooks(course: Path, tmp_path: Path) -> None:
    (course / "submissions" / "carol.ipynb").write_text('{"cells": []}\n')
    git(course, "add", "-A")
    git(course, "commit", "-q", "-m", "notebook")
    out = tmp_path / "artifact"
    result = grader("pr", "collect", "--repo", str(course), "--base", "main", "--head", "pr",
                    "--pr", "7", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (out / "submissions" / "carol.ipynb").read_text() == '{"cells": []}\n'


def test_collect_refuses_a_submission_the_trusted_side_would_refuse(
    course: Path, tmp_path: Path
) -> None:
    (course / "submissions" / "alice").mkdir()
    (course / "submissions" / "alice" / "solution.py").write_text("x = 1\n")
    git(course, "add", "-A")
    git(course, "commit", "-q", "-m", "nested")
    out = tmp_path / "artifact"
    result = grader("pr", "collect", "--repo", str(course), "--base", "main", "--head", "pr",
                    "--pr", "7", "--out", str(out))  # fmt: skip
    assert result.exit_code == 2
    assert "submissions/alice/solution.py" in result.stderr
    assert "directly under `submissions/`" in result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Grade (trusted side), end to end
# --------------------------------------------------------------------------------------------


def test_trusted_side_grades_the_collected_artifact(collected: Collected, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result, payload = grade(collected, tmp_path, "--junit", str(junit))
    assert result.exit_code == 1, result.stderr  # bob is below full marks
    assert payload is not None
    assert payload["name"] == "grader"
    assert payload["head_sha"] == collected.head_sha
    assert payload["status"] == "completed"
    assert payload["conclusion"] == "failure"
    assert payload["output"]["title"] == "1 of 2 submissions below 100% (8/8, 6/8)"
    summary = payload["output"]["summary"]
    assert "| ` submissions/alice.py ` | 8/8 |" in summary
    assert "| ` submissions/bob.py ` | 6/8 |" in summary
    assert "` submissions/old.py `" in summary and "deleted (not graded)" in summary
    assert "peak" in summary and "off by" in summary  # bob sees which output is wrong
    assert "notes.txt" not in summary and "grader.py" not in summary
    # bob's wrong outputs are annotated at his `def vector_stats`, found by parsing his file.
    [wrong] = [a for a in payload["output"]["annotations"] if a["path"] == "submissions/bob.py"]
    source = (TOY / "submissions" / "wrong_peak.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if text.startswith("def vector_stats"))
    assert wrong["start_line"] == wrong["end_line"] == line
    assert wrong["title"].startswith("wrong output in 1 of 4 cases")  # 6/8
    assert "<testsuite" in junit.read_text()
    CheckRun.model_validate(payload)  # within GitHub's limits


def test_passing_submissions_give_a_successful_check(collected: Collected, tmp_path: Path) -> None:
    result, payload = grade(collected, tmp_path, "--min-score", "50")
    assert result.exit_code == 0, result.stderr
    assert payload is not None and payload["conclusion"] == "success"
    assert payload["output"]["title"] == "2 submissions graded: all pass (8/8, 6/8)"


def test_a_crash_is_annotated_at_the_students_line(course: Path, tmp_path: Path) -> None:
    (course / "submissions" / "bob.py").write_text(
        "def vector_stats(x, k):\n    raise RuntimeError('boom\\n::error::injected')\n"
    )
    git(course, "commit", "-q", "-am", "crash")
    out = tmp_path / "artifact"
    assert grader("pr", "collect", "--repo", str(course), "--base", "main", "--head", "pr",
                  "--pr", "7", "--out", str(out)).exit_code == 0  # fmt: skip
    collected = Collected(out, git(course, "rev-parse", "pr"))
    result, payload = grade(collected, tmp_path)
    assert result.exit_code == 1
    assert payload is not None
    [annotation] = payload["output"]["annotations"]
    assert annotation["path"] == "submissions/bob.py"
    assert annotation["start_line"] == annotation["end_line"] == 2
    assert annotation["annotation_level"] == "failure"
    assert annotation["title"].startswith("RuntimeError in case")
    # What the submission prints on the trusted runner's log cannot become a workflow command.
    assert not any(line.startswith("::error") for line in result.stdout.splitlines())


def test_an_artifact_with_nothing_to_grade_does_not_pass(
    collected: Collected, tmp_path: Path
) -> None:
    def empty(manifest: dict[str, Any]) -> None:
        manifest["files"] = []

    shutil.rmtree(collected.artifact / "submissions")
    collected.rewrite_manifest(empty)
    result, payload = grade(collected, tmp_path, "--min-score", "0")
    assert result.exit_code == 1
    assert payload is not None and payload["conclusion"] == "failure"
    assert payload["output"]["title"] == "No submission graded"


def test_fork_pull_request_without_a_number_in_the_event_is_graded(
    collected: Collected, tmp_path: Path
) -> None:
    # GitHub lists no pull request in workflow_run events from forks: the SHA alone binds.
    result, payload = grade(collected, tmp_path, "--min-score", "0", pr="")
    assert result.exit_code == 0, result.stderr
    assert payload is not None and payload["conclusion"] == "success"


def _symlink_to_reference(c: Collected) -> None:
    target = c.artifact / "submissions" / "alice.py"
    target.unlink()
    target.symlink_to(TOY / "reference" / "vector_stats.py")


def _oversize(c: Collected) -> None:
    (c.artifact / "submissions" / "bob.py").write_bytes(b"#" * (1024 * 1024 + 1))


def _non_utf8_name(c: Collected) -> None:
    with open(os.fsencode(c.artifact / "submissions") + b"/\xff\xfe.py", "wb") as stream:  # noqa: PTH123  # Path takes no bytes
        stream.write(b"x = 1\n")


def _fifo(c: Collected) -> None:
    os.mkfifo(c.artifact / "submissions" / "carol.py")


def _injection_name(c: Collected) -> None:
    (c.artifact / "submissions" / "a\n::error::`x`.py").write_text("x = 1\n")


def _set(key: str, value: Any) -> Callable[[Collected], None]:
    return lambda c: c.rewrite_manifest(lambda m: m.update({key: value}))


def _set_path(path: str) -> Callable[[Collected], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest["files"][0]["path"] = path

    return lambda c: c.rewrite_manifest(change)


# (id, how the artifact is spoiled, a fragment the failing check must show)
HOSTILE: list[tuple[str, Callable[[Collected], None], str]] = [
    ("dotdot-in-manifest", _set_path("submissions/../reference/vector_stats.py"),
     "leaves the submissions folder"),
    ("absolute-path", _set_path("/etc/passwd"), "leaves the submissions folder"),
    ("nested-path", _set_path("submissions/a/b.py"), "not a file directly under"),
    ("not-python", _set_path("submissions/alice.sh"), "ending in .py or .ipynb"),
    ("file-outside-submissions",
     lambda c: (c.artifact / "setup.py").write_text("import os\n"), "unexpected entries"),
    ("symlink-to-reference", _symlink_to_reference, "is a symbolic link"),
    ("fifo", _fifo, "special file"),
    ("oversize-file", _oversize, "larger than 1048576 bytes"),
    ("forged-pr-number", _set("pr_number", 8), "says pull request #8"),
    ("forged-head-sha", _set("head_sha", OTHER_SHA), "does not belong to this pull request"),
    ("missing-manifest", lambda c: c.manifest_path.unlink(), "has no manifest.json"),
    ("malformed-manifest", lambda c: c.manifest_path.write_text("{not json"), "is malformed"),
    ("unknown-manifest-key", _set("grade", "14/14"), "grade: Extra inputs are not permitted"),
    ("non-utf8-name", _non_utf8_name, "not UTF-8"),
    ("injection-in-name", _injection_name, "a\\n::error::\\x60x\\x60.py"),
    ("tampered-content",
     lambda c: (c.artifact / "submissions" / "bob.py").write_text("x = 2\n"),
     "does not match the size and SHA-256"),
    ("unlisted-file",
     lambda c: (c.artifact / "submissions" / "eve.py").write_text("x = 1\n"),
     "present but not listed: `submissions/eve.py`"),
    ("missing-artifact", lambda c: shutil.rmtree(c.artifact), "the artifact is missing"),
    ("artifact-is-a-file",
     lambda c: (shutil.rmtree(c.artifact), c.artifact.write_text("x"))[0], "not a folder"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spoil", "fragment"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_artifact_is_a_failing_check_never_graded(
    collected: Collected, tmp_path: Path, spoil: Callable[[Collected], None], fragment: str
) -> None:
    spoil(collected)
    submissions, reference = InProcessRunner(), InProcessRunner()
    result, payload = grade(collected, tmp_path, setup=Setup(submissions, reference))
    assert result.exit_code == 1, result.stderr
    assert submissions.requests == reference.requests == []  # refused before anything ran
    assert payload is not None
    assert payload["conclusion"] == "failure"
    assert payload["head_sha"] == collected.head_sha
    assert payload["output"]["title"] == "Not graded"
    summary = payload["output"]["summary"]
    assert fragment in summary
    assert "Grading results" not in summary  # refused before anything ran
    assert REFERENCE_SECRET not in summary and "def vector_stats" not in summary
    assert "\n::" not in summary  # an attacker's file name stays on its line, escaped
    CheckRun.model_validate(payload)


def test_the_sha_comes_from_the_event_not_the_artifact(
    collected: Collected, tmp_path: Path
) -> None:
    # The collect run was for another commit than the one the manifest names.
    result, payload = grade(collected, tmp_path, sha=OTHER_SHA)
    assert result.exit_code == 1
    assert payload is not None and payload["head_sha"] == OTHER_SHA
    assert payload["conclusion"] == "failure"
    assert f"the collect run was for commit {OTHER_SHA}" in payload["output"]["summary"]


def test_a_failed_collect_run_is_not_graded(collected: Collected, tmp_path: Path) -> None:
    result, payload = grade(collected, tmp_path, "--collect-conclusion", "failure")
    assert result.exit_code == 1
    assert payload is not None and payload["conclusion"] == "failure"
    assert "conclusion `failure`" in payload["output"]["summary"]


def test_a_course_side_fault_is_a_failing_check(collected: Collected, tmp_path: Path) -> None:
    empty = tmp_path / "no-reference"
    empty.mkdir()
    payload_path = tmp_path / "check-run.json"
    result = grader(
        "pr", "grade", str(collected.artifact), "--sha", collected.head_sha, "--pr", "7",
        "--payload", str(payload_path), "--problems-dir", str(TOY / "problems"),
        "--reference-dir", str(empty),
    )  # fmt: skip
    assert result.exit_code == 2
    payload = json.loads(payload_path.read_text())
    assert payload["conclusion"] == "failure"
    summary = payload["output"]["summary"]
    assert "a problem on the course's side (ReferenceMissing)" in summary
    # The details are for staff, in the run's log, never on the pull request.
    assert "the reference solution for 'vector_stats' is missing" in result.stderr
    assert str(empty) not in summary and "reference solution" not in summary


def test_a_sha_that_is_not_one_is_a_usage_error_and_leaves_no_verdict(
    collected: Collected, tmp_path: Path
) -> None:
    payload = tmp_path / "check-run.json"
    payload.write_text('{"conclusion": "success"}')  # left over: must not be posted
    result = grader(
        "pr", "grade", str(collected.artifact), "--sha", "main", "--payload", str(payload),
        *TOY_DIRS,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--sha `main` is not a full commit SHA" in result.stderr
    assert not payload.exists()


# --------------------------------------------------------------------------------------------
# Posting to GitHub (a local server stands in for the API)
# --------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 201


# GitHub's limits on check-run text, in bytes of UTF-8 as GitHub enforces them (it answers
# "exceeds a maximum bytesize" for a summary of 65,536 bytes, though its reference says
# characters): output summary and text 65535; annotation message and raw_details "64 KB";
# annotation title "255 characters", held to bytes too.
GITHUB_LIMITS = {"summary": 65535, "text": 65535}
GITHUB_ANNOTATION_LIMITS = {"message": 64 * 1024, "raw_details": 64 * 1024, "title": 255}


def over_githubs_limits(body: Any) -> list[str]:
    """What in a check-run request GitHub would refuse for its size."""
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, dict):
        return []
    fields = [(f"output.{k}", output.get(k), limit) for k, limit in GITHUB_LIMITS.items()]
    for n, annotation in enumerate(output.get("annotations") or []):
        fields += [
            (f"output.annotations[{n}].{k}", annotation.get(k), limit)
            for k, limit in GITHUB_ANNOTATION_LIMITS.items()
        ]
    return [
        f"{name} exceeds a maximum bytesize of {limit}"
        for name, value, limit in fields
        if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > limit
    ]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """An HTTP server on 127.0.0.1 that records each request and answers like the API,
    refusing text over GitHub's limits in bytes with a 422 as GitHub does."""
    fake = FakeGitHub(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            fake.requests.append(
                Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            too_big = over_githubs_limits(body)
            status = fake.status if self.command == "POST" else 200
            status = 422 if too_big else status
            answer = json.dumps(
                {"id": 42}
                if status < 300
                else {"message": "; ".join(too_big) or "Resource not accessible by integration"}
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.encode())

        do_POST = do_PATCH = _record  # http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # Polled often: shutdown() waits up to a poll interval (0.5 s by default) in every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def post(github: FakeGitHub, payload: Path, sha: str) -> Result:
    return grader("pr", "post", str(payload), "--sha", sha, env=github_env(github))


def github_env(github: FakeGitHub) -> dict[str, str]:
    return {
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": "course/repo",
        "GITHUB_TOKEN": "t0ken",
    }


def test_post_sends_the_check_run_to_the_head_commit(
    collected: Collected, tmp_path: Path, github: FakeGitHub
) -> None:
    _, payload = grade(collected, tmp_path)
    result = post(github, tmp_path / "check-run.json", collected.head_sha)
    assert result.exit_code == 0, result.stderr
    assert "posted check run 42 (failure" in result.stdout
    [request] = github.requests
    assert request.method == "POST"
    assert request.path == "/repos/course/repo/check-runs"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.body == {k: v for k, v in (payload or {}).items() if v is not None}


def test_post_without_a_payload_sends_a_failing_check(tmp_path: Path, github: FakeGitHub) -> None:
    result = post(github, tmp_path / "never-written.json", OTHER_SHA)
    assert result.exit_code == 0, result.stderr
    [request] = github.requests
    assert request.body["head_sha"] == OTHER_SHA
    assert request.body["conclusion"] == "failure"
    assert request.body["output"]["title"] == "Not graded"
    assert "did not finish" in request.body["output"]["summary"]


def test_post_refuses_a_payload_for_another_commit(tmp_path: Path, github: FakeGitHub) -> None:
    passing = CheckRun(
        name="grader", head_sha="a" * 40, status="completed", conclusion="success",
        output=Output(title="all pass", summary="fine"),
    )  # fmt: skip
    (tmp_path / "check-run.json").write_text(passing.model_dump_json())
    result = post(github, tmp_path / "check-run.json", OTHER_SHA)
    assert result.exit_code == 0, result.stderr
    [request] = github.requests
    assert request.body["head_sha"] == OTHER_SHA
    assert request.body["conclusion"] == "failure"
    assert "for another commit" in request.body["output"]["summary"]


def test_post_explains_a_refusal(tmp_path: Path, github: FakeGitHub) -> None:
    github.status = 403
    # In a process of its own: in this one, the HTTPError's connection is left open
    # (grader.ci_checks._request reads the error's body without closing it).
    result = subprocess.run(
        [sys.executable, "-m", "grader", "pr", "post", str(tmp_path / "never-written.json"),
         "--sha", OTHER_SHA],
        capture_output=True, text=True, check=False, env={**os.environ, **github_env(github)},
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "HTTP 403" in result.stderr and "Resource not accessible" in result.stderr
    assert "checks: write" in result.stderr


def test_more_than_50_annotations_go_in_further_requests(github: FakeGitHub) -> None:
    annotations = [
        Annotation(path="submissions/a.py", start_line=n, end_line=n, annotation_level="failure",
                   title="t", message=f"m{n}")
        for n in range(1, 121)
    ]  # fmt: skip
    check_run = CheckRun(
        name="grader", head_sha=OTHER_SHA, status="completed", conclusion="failure",
        output=Output(title="t", summary="s", annotations=annotations),
    )  # fmt: skip
    run_id = post_check_run(check_run, api_url=github.url, repository="o/r", token="t0ken")  # noqa: S106  # a fake server's token
    assert run_id == 42
    assert [(r.method, r.path) for r in github.requests] == [
        ("POST", "/repos/o/r/check-runs"),
        ("PATCH", "/repos/o/r/check-runs/42"),
        ("PATCH", "/repos/o/r/check-runs/42"),
    ]
    sent = [a["message"] for r in github.requests for a in r.body["output"]["annotations"]]
    assert [len(r.body["output"]["annotations"]) for r in github.requests] == [50, 50, 20]
    assert sent == [f"m{n}" for n in range(1, 121)]


def test_summary_is_cut_to_githubs_limit_at_a_line() -> None:
    text = "".join(f"| row {n} | {'x' * 80} |\n" for n in range(2000))
    cut = fit_summary(text)
    assert len(cut.encode()) <= MAX_SUMMARY < len(text)
    kept, note = cut.split("\n\n*The summary was cut here")
    assert kept + "\n" in text  # whole lines only
    missing = text[len(kept) :]
    assert note == (
        f" to fit GitHub's limit of 65535 bytes: the last {len(missing)} bytes "
        f"({missing.count(chr(10)) - 1} lines) are missing. "
        "The grading run's JUnit artifact has every case.*\n"
    )
    assert fit_summary("short\n") == "short\n"


def test_summary_is_cut_in_bytes_at_a_character_boundary() -> None:
    # Under 65535 characters, over 65535 bytes: ❌ is 3 bytes, 😀 is 4.
    text = "".join(f"| {n} | ❌ значение 😀😁😂 |\n" for n in range(2000))
    assert len(text) < MAX_SUMMARY < len(text.encode())
    cut = fit_summary(text)
    assert len(cut.encode()) <= MAX_SUMMARY
    assert cut.split("\n\n*The summary was cut here")[0] + "\n" in text
    # One line longer than the limit: cut inside the line, never inside a character.
    line = fit_summary("😀" * 20000)
    assert len(line.encode()) <= MAX_SUMMARY and line.startswith("😀" * 16000)
    kept = line.split("\n\n*The summary")[0]
    assert f"the last {80000 - len(kept.encode())} bytes (1 lines) are missing" in line
    # A lone surrogate, which UTF-8 cannot carry and GitHub refuses, becomes "?".
    assert fit_summary("a\udcffb") == "a?b"


def test_a_payload_over_githubs_byte_limits_is_invalid() -> None:
    # 16,384 characters, 65,536 bytes: the model refuses what GitHub would refuse.
    with pytest.raises(ValidationError, match="65536 bytes of UTF-8; GitHub takes at most 65535"):
        Output(title="t", summary="😀" * 16384)
    with pytest.raises(ValidationError, match="GitHub takes at most 255"):
        Output(title="é" * 128, summary="s")
    Output(title="é" * 127, summary="😀" * 16383)  # 254 and 65532 bytes: fine


def test_a_large_non_ascii_verdict_is_posted_within_githubs_byte_limits(
    toy: Problem, references: ReferenceCache, tmp_path: Path, github: FakeGitHub
) -> None:
    # Twenty files raising a non-ASCII message, from an exception class with a non-ASCII name:
    # the summary is under 65535 characters but over 65535 bytes, an annotation title under
    # 255 characters but over 255 bytes. GitHub refused such a check run, and the pull request
    # got "Not graded" from the last-resort step instead of its grade.
    name = "Ошибка" * 40
    error_class = type(name, (Exception,), {})

    def raises(x: object, k: int) -> list[float]:
        raise error_class("неверно 😀😁😂😀😁😂😀😁😂 " * 200)

    report = student_view(
        grade_file(TOY / "submissions" / "correct.py", problem=toy, seed=3,
              expected=references.get(toy, 3), runner=FakeRunner(raises))
    )  # fmt: skip
    case = report.cases[0]
    assert case.error is not None and case.error.type.startswith(name[:120])
    # The worker gives the student's line; the in-process fake gives none, so set one.
    located = case.model_copy(update={"error": case.error.model_copy(update={"line": 2})})
    report = report.model_copy(update={"cases": (located, *report.cases[1:])})
    graded = [
        FileVerdict(Change(path=f"submissions/s{n:02}.py", status="added"), report, 2)
        for n in range(20)
    ]
    artifact = Artifact(manifest=None, submissions=[], deleted=[])  # type: ignore[arg-type]
    check_run = graded_check_run(artifact, graded, head_sha=OTHER_SHA, min_score=100)
    (tmp_path / "check-run.json").write_text(check_run.model_dump_json())
    full = markdown_summary(graded, [], None, 100)
    assert len(full) < 65535 < len(full.encode())

    result = post(github, tmp_path / "check-run.json", OTHER_SHA)

    assert result.exit_code == 0, result.stderr
    [request] = github.requests
    output = request.body["output"]
    assert output["title"] == check_run.output.title != "Not graded"
    summary = output["summary"]
    assert 60000 < len(summary.encode()) <= 65535, len(summary.encode())
    assert "| ` submissions/s00.py ` | 0/8 | graded | ❌ |" in summary
    assert "limit of 65535 bytes" in summary.splitlines()[-1]
    [annotation] = [a for a in output["annotations"] if a["path"] == "submissions/s00.py"]
    assert len(annotation["title"].encode()) <= 255 and annotation["title"].endswith("...")
    assert annotation["title"].startswith("ОшибкаОшибка")
    assert len(annotation["message"].encode()) <= 4000
    assert annotation["message"].endswith("the check's summary has more]")


# --------------------------------------------------------------------------------------------
# The workflows: actionlint and a policy over .github/workflows
# --------------------------------------------------------------------------------------------


def test_workflows_pass_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert {w.name for w in workflows} >= {"collect.yml", "grade.yml"}
    result = subprocess.run(
        [actionlint, *map(str, workflows)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


TRUSTED_TRIGGERS = {"workflow_run", "push", "workflow_dispatch"}
SECRET = re.compile(r"\bsecrets\.(?!GITHUB_TOKEN\b)")
PR_CODE = re.compile(
    r"pull_request\.head|refs/pull/|workflow_run\.head_(?:sha|branch)|head_repository|"
    r"github\.head_ref|merge_commit_sha"
)
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")


def triggers(workflow: dict[Any, Any]) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    if isinstance(on, str):
        return {on}
    return set(on)


def violations(name: str, text: str) -> list[str]:
    """What in one workflow file breaks the policy of docs/ci.md."""
    workflow = yaml.safe_load(text)
    on = triggers(workflow)
    found = []
    holds_secret = SECRET.search(text) is not None
    if "pull_request_target" in on:
        found.append(f"{name}: pull_request_target runs pull-request code with secrets")
    if "secrets." in text and "pull_request" in on:
        found.append(f"{name}: a pull_request workflow names a secret")
    if holds_secret and not on <= TRUSTED_TRIGGERS:
        found.append(f"{name}: holds a secret but runs on {sorted(on - TRUSTED_TRIGGERS)}")
    for job_name, job in workflow["jobs"].items():
        where = f"{name}: job {job_name}"
        job_text = yaml.safe_dump(job)
        if SECRET.search(job_text) and "environment" not in job:
            found.append(f"{where}: a secret outside a branch-limited environment")
        permissions = job.get("permissions", workflow.get("permissions"))
        if not isinstance(permissions, dict):
            found.append(f"{where}: no explicit least permissions ({permissions!r})")
            permissions = {}
        writes = {scope for scope, level in permissions.items() if level == "write"}
        if "pull_request" in on and writes:
            found.append(f"{where}: a pull_request job can write {sorted(writes)}")
        if holds_secret and not writes <= {"checks", "pull-requests"}:
            found.append(f"{where}: a trusted job writes {sorted(writes)}")
        for step in job.get("steps", []):
            uses = step.get("uses", "")
            if uses and not PINNED.fullmatch(uses):
                found.append(f"{where}: {uses} is not pinned to a commit SHA")
            inputs = step.get("with") or {}
            if holds_secret and uses.startswith("actions/checkout@"):
                for key in ("ref", "repository"):
                    if PR_CODE.search(str(inputs.get(key, ""))):
                        found.append(f"{where}: checks out pull-request code ({key})")
            run = step.get("run", "")
            if re.search(r"\$\{\{[^}]*github\.event", run):
                found.append(f"{where}: an event field expanded into a script (injection)")
            if holds_secret and re.search(r"\bgit\b", run) and PR_CODE.search(run):
                found.append(f"{where}: runs git on pull-request code")
    return found


def test_the_shipped_workflows_follow_the_policy() -> None:
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        assert violations(workflow.name, workflow.read_text()) == []


# --------------------------------------------------------------------------------------------
# Pins GitHub still runs
# --------------------------------------------------------------------------------------------

# The oldest release of each action we accept, kept by hand: GitHub refuses older ones, or
# they run on a retired runtime. One line per reason, with where it is written; a pin below any
# line of its action fails the suite. Dependabot (.github/dependabot.yml) proposes new pins.
OLDEST_ACCEPTED: list[tuple[str, str, str]] = [
    ("actions/cache", "4.2.0",
     "github.com/actions/cache README, 'What's New': 'If you are using pinned SHAs, please use "
     "the SHAs of versions v4.2.0 or v3.4.0. If you do not upgrade, all workflow runs using any "
     "of the deprecated actions/cache will fail.'"),
    ("actions/cache", "5.0.0",
     "same README, '### v5': 'Updated to node 24'; node20 is being retired, actions/runner#3948 "
     "('Phase 3: Node 24 Required')"),
    ("actions/setup-python", "5.4.0",
     "`cache: pip` uses the legacy cache service (sunset per the actions/cache README) until "
     "@actions/cache ^4.0.0: commit b8cf3eb 'Use the new cache service: upgrade "
     "`@actions/cache` to `^4.0.0` (#1007)', first tagged v5.4.0 (package.json at v5.3.0 has "
     "^3.2.4)"),
    ("actions/setup-python", "6.0.0",
     "github.com/actions/setup-python README: 'Breaking changes in V6: Upgraded action from "
     "node20 to node24'"),
    ("actions/checkout", "5.0.0",
     "github.com/actions/checkout README: 'Checkout v5 ... Updated to the node24 runtime'"),
    ("actions/upload-artifact", "4.0.0",
     "github.com/actions/upload-artifact README: 'actions/upload-artifact@v3 is scheduled for "
     "deprecation on November 30, 2024'"),
    ("actions/upload-artifact", "6.0.0",
     "same README: 'actions/upload-artifact@v6 now runs on Node.js 24 (runs.using: node24)'"),
    ("actions/download-artifact", "4.1.3",
     "GHSA-cxww-7g56-2vh6: releases before 4.1.3 write outside the target folder for crafted "
     "artifacts (docs/ci.md)"),
    ("actions/download-artifact", "7.0.0",
     "github.com/actions/download-artifact README: 'actions/download-artifact@v7 now runs on "
     "Node.js 24 (runs.using: node24)'"),
]  # fmt: skip

# Pins we checked by hand: the tag the commit carries in the action's repository and the
# runtime its action.yml declares at that commit (`git rev-parse TAG^{commit}`, `git show
# TAG:action.yml` in a mirror of the action's repository). A pin listed here must carry its
# tag in the comment and run on node24; a pin not listed (a Dependabot update) is held to
# OLDEST_ACCEPTED only, until someone records it.
RECORDED_PINS: dict[tuple[str, str], tuple[str, str]] = {
    ("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1"): ("v7.0.1", "node24"),
    ("actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97"): ("v7.0.0", "node24"),
    ("actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"): ("v7.0.0", "node24"),
    ("actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c"): (
        "v8.0.1", "node24"),
    ("actions/cache", "27d5ce7f107fe9357f9df03efb73ab90386fccae"): ("v5.0.5", "node24"),
    # The pins before issue 23, kept to show the runtime check working (all node20).
    ("actions/cache", "13aacd865c20de90d75de3b17ebe84f7a17d57d2"): ("v4.0.0", "node20"),
    ("actions/checkout", "b4ffde65f46336ab88eb53be808477a3936bae11"): ("v4.1.1", "node20"),
}  # fmt: skip

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<uses>\S+)(?P<comment>.*)$", re.MULTILINE)
PIN = re.compile(r"(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})")
TAG_COMMENT = re.compile(r"\s*#\s*(?P<tag>v(?P<version>\d+(?:\.\d+){0,2}))\b")


def _version(text: str) -> tuple[int, ...]:
    parts = tuple(int(part) for part in text.split("."))
    return parts + (0,) * (3 - len(parts))


def pin_violations(name: str, text: str) -> list[str]:
    """Each `uses:` in text that GitHub would not run, or whose pin we cannot read."""
    found = []
    for match in USES.finditer(text):
        uses, comment = match["uses"], match["comment"]
        pin = PIN.fullmatch(uses)
        if pin is None:
            found.append(f"{name}: {uses} is not pinned to a full commit SHA")
            continue
        tag = TAG_COMMENT.match(comment)
        if tag is None:
            found.append(f"{name}: {uses} has no `# vX.Y.Z` comment naming its release")
            continue
        action, version = pin["action"], _version(tag["version"])
        for floor_action, floor, source in OLDEST_ACCEPTED:
            if action == floor_action and version < _version(floor):
                found.append(f"{name}: {action} {tag['tag']} is older than {floor} ({source})")
        recorded = RECORDED_PINS.get((action, pin["sha"]))
        if recorded is not None:
            recorded_tag, runtime = recorded
            if recorded_tag != tag["tag"]:
                found.append(
                    f"{name}: {action}@{pin['sha']} is {recorded_tag}, not {tag['tag']} as its "
                    f"comment says"
                )
            if runtime != "node24":
                found.append(f"{name}: {action} {recorded_tag} runs on {runtime}, not node24")
    return found


def test_every_pin_is_a_release_github_still_runs() -> None:
    # The workflows, and the workflow docs/ci.md tells courses to copy.
    texts = {w.name: w.read_text() for w in sorted(WORKFLOWS.glob("*.yml"))}
    texts["docs/ci.md"] = (REPO / "docs" / "ci.md").read_text()
    assert sum(len(USES.findall(text)) for text in texts.values()) >= 11
    for name, text in texts.items():
        assert pin_violations(name, text) == []
    # Every action the workflows use has a floor: a new one needs its line above.
    used = {PIN.match(m["uses"])["action"] for t in texts.values() for m in USES.finditer(t)}  # type: ignore[index]
    assert used <= {action for action, _, _ in OLDEST_ACCEPTED}, used


def test_dependabot_keeps_the_action_pins_current() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    [update] = [u for u in config["updates"] if u["package-ecosystem"] == "github-actions"]
    assert update["directory"] == "/"
    assert update["schedule"]["interval"] in {"daily", "weekly"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # What grade.yml and collect.yml pinned before issue 23.
        ("uses: actions/cache@13aacd865c20de90d75de3b17ebe84f7a17d57d2 # v4.0.0",
         ["actions/cache v4.0.0 is older than 4.2.0", "older than 5.0.0",
          "runs on node20, not node24"]),
        ("- uses: actions/setup-python@0a5c61591373683505ea898e09a3ea4f39ef2b9c # v5.0.0",
         ["actions/setup-python v5.0.0 is older than 5.4.0"]),
        ("uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11 # v4.1.1",
         ["older than 5.0.0", "runs on node20"]),
        # A comment that lies about the commit.
        ("uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11 # v7.0.1",
         ["is v4.1.1, not v7.0.1 as its comment says"]),
        ("uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae", ["no `# vX.Y.Z` comment"]),
        ("uses: actions/cache@v5", ["not pinned to a full commit SHA"]),
    ],
    ids=["cache-v4.0.0", "setup-python-v5.0.0", "checkout-node20", "lying-comment",
         "no-comment", "tag-not-sha"],
)  # fmt: skip
def test_the_pin_policy_catches_what_github_refuses(line: str, expected: list[str]) -> None:
    found = pin_violations("bad.yml", f"steps:\n  - name: x\n    {line}\n")
    for fragment in expected:
        assert any(fragment in v for v in found), (fragment, found)


def test_collect_holds_nothing_and_grade_runs_only_on_workflow_run() -> None:
    collect = yaml.safe_load((WORKFLOWS / "collect.yml").read_text())
    trusted = yaml.safe_load((WORKFLOWS / "grade.yml").read_text())
    assert triggers(collect) == {"pull_request"}
    assert collect["permissions"] == {"contents": "read"}
    assert triggers(trusted) == {"workflow_run"}
    assert trusted[True]["workflow_run"]["workflows"] == [collect["name"]]
    [job] = trusted["jobs"].values()
    assert job["if"] == "github.event.workflow_run.event == 'pull_request'"
    assert job["permissions"] == {"actions": "read", "checks": "write", "contents": "read"}
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    grade_run = next(s["run"] for s in job["steps"] if "pr grade" in s.get("run", ""))
    assert grade_run.startswith("sudo ") and "--require-sandbox" in grade_run
    assert '--sha "$HEAD_SHA"' in grade_run and '--pr "$PR_NUMBER"' in grade_run
    assert job["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    download = next(s for s in steps.values() if "download-artifact" in s.get("uses", ""))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    post_step = next(s for s in job["steps"] if "pr post" in s.get("run", ""))
    assert post_step["if"] == "always()"  # fail closed: a verdict whatever happened before
    # No token in the step that runs submissions (as root, in the sandbox).
    grade_step = next(s for s in job["steps"] if "pr grade" in s.get("run", ""))
    assert "token" not in json.dumps(grade_step).lower()
    assert post_step["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}


# The workflow this repository shipped before issue 13, cut down: pull_request with the key.
VULNERABLE_PULL_REQUEST = """
name: Grade submissions
on:
  pull_request:
permissions:
  contents: read
jobs:
  grade:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
        with:
          repository: ${{ vars.REFERENCE_REPOSITORY }}
          ssh-key: ${{ secrets.REFERENCE_DEPLOY_KEY }}
      - run: pip install -e . && sudo grader ci --base "${{ github.event.pull_request.base.sha }}"
"""
VULNERABLE_TARGET = """
on: pull_request_target
permissions: write-all
jobs:
  grade:
    runs-on: ubuntu-24.04
    environment: grading
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
          ssh-key: ${{ secrets.REFERENCE_DEPLOY_KEY }}
"""
VULNERABLE_WORKFLOW_RUN = """
on:
  workflow_run:
    workflows: [Collect submissions]
    types: [completed]
jobs:
  grade:
    runs-on: ubuntu-24.04
    environment: grading
    permissions:
      contents: write
    steps:
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
        with:
          ref: ${{ github.event.workflow_run.head_sha }}
      - run: git fetch origin "refs/pull/$PR/head" && echo "${{ secrets.REFERENCE_DEPLOY_KEY }}"
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VULNERABLE_PULL_REQUEST, [
            "a pull_request workflow names a secret",
            "holds a secret but runs on ['pull_request']",
            "a secret outside a branch-limited environment",
            "an event field expanded into a script",
        ]),
        (VULNERABLE_TARGET, [
            "pull_request_target runs pull-request code with secrets",
            "no explicit least permissions ('write-all')",
            "actions/checkout@v4 is not pinned",
            "checks out pull-request code (ref)",
        ]),
        (VULNERABLE_WORKFLOW_RUN, [
            "a trusted job writes ['contents']",
            "checks out pull-request code (ref)",
            "runs git on pull-request code",
        ]),
    ],
    ids=["pull_request-with-key", "pull_request_target", "workflow_run-checks-out-pr"],
)  # fmt: skip
def test_the_policy_catches_unsafe_workflows(text: str, expected: list[str]) -> None:
    found = violations("bad.yml", text)
    for fragment in expected:
        assert any(fragment in v for v in found), (fragment, found)


# --------------------------------------------------------------------------------------------
# The trusted workflow's own commands, run here as written
# --------------------------------------------------------------------------------------------


def workflow_command(step: dict[str, Any]) -> str:
    """A step's script, with the grader of this checkout in place of the workflow's venv."""
    command = " ".join(step["run"].split())
    if command.startswith("sudo "):
        # The preserved variables are set in this test's environment already.
        command = command.split(" ", 2)[2]
        if os.geteuid() != 0:
            command = command.replace(" --require-sandbox", "")
    assert command.startswith(".venv/bin/grader ")
    # The console script, as the workflow has it: `python -m grader` would pick up a
    # grader.py of the working folder (the course fixture has one).
    return command.replace(".venv/bin/grader", str(Path(sys.executable).parent / "grader"), 1)


def test_the_trusted_workflow_steps_grade_and_post_as_written(
    course: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    """The end-to-end test of `grader pr collect`, `pr grade` and `pr post`: the workflows'
    command lines as written, real processes, submissions graded in the sandbox."""
    # The workflow passes no --seed: bob is wrong on every case, whatever the cases drawn.
    (course / "submissions" / "bob.py").write_text(
        "def vector_stats(x, k):\n    return [0, 0, 0]\n"
    )
    git(course, "commit", "-q", "-am", "bob: always wrong")
    head_sha = git(course, "rev-parse", "pr")
    # The collect job's own command line, in the pull request's checkout.
    collect_job = yaml.safe_load((WORKFLOWS / "collect.yml").read_text())["jobs"]["collect"]
    [collect_step] = [s for s in collect_job["steps"] if "pr collect" in s.get("run", "")]
    collect_temp = tmp_path / "collect-runner-temp"
    collect_temp.mkdir()
    collect_env = {
        **os.environ,
        "RUNNER_TEMP": str(collect_temp),
        "BASE_SHA": git(course, "rev-parse", "main"),
        "HEAD_SHA": head_sha,
        "PR_NUMBER": "7",
    }
    collected_run = subprocess.run(
        ["bash", "-c", workflow_command(collect_step)],
        cwd=course, env=collect_env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert collected_run.returncode == 0, collected_run.stderr
    # upload-artifact's `path` is that folder; download-artifact recreates it elsewhere.
    collected = Collected(collect_temp / "submissions", head_sha)
    job = yaml.safe_load((WORKFLOWS / "grade.yml").read_text())["jobs"]["grade"]
    runs = {step["name"]: step for step in job["steps"] if "run" in step}
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    shutil.copytree(collected.artifact, runner_temp / "artifact")
    details = "https://github.example/course/repo/actions/runs/1"
    env = {
        **os.environ,
        "RUNNER_TEMP": str(runner_temp),
        "HEAD_SHA": collected.head_sha,
        "PR_NUMBER": "7",
        "COLLECT_CONCLUSION": "success",
        "DETAILS_URL": details,
        "GRADER_PROBLEMS_DIR": str(TOY / "problems"),
        "GRADER_REFERENCE_DIR": str(TOY / "reference"),
    }
    graded = subprocess.run(
        ["bash", "-c", workflow_command(runs["Grade them"])],
        env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert graded.returncode == 1, graded.stderr  # bob is below full marks
    assert (runner_temp / "grading-junit.xml").exists()
    post_env = {
        **env,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": "course/repo",
        "GITHUB_TOKEN": "t0ken",
    }
    posted = subprocess.run(
        ["bash", "-c", workflow_command(runs["Report to the pull request"])],
        env=post_env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    [request] = github.requests
    assert (request.method, request.path) == ("POST", "/repos/course/repo/check-runs")
    assert request.headers["authorization"] == "Bearer t0ken"
    body = request.body
    assert body["head_sha"] == collected.head_sha
    assert body["conclusion"] == "failure"
    assert body["details_url"] == details
    assert f"[run log]({details})" in body["output"]["summary"]
    assert "| ` submissions/bob.py ` | 0/8 | graded | ❌ |" in body["output"]["summary"]


def test_the_last_resort_step_posts_a_failing_check(tmp_path: Path) -> None:
    # No gh here: a stand-in records the arguments the workflow's command line gives it.
    job = yaml.safe_load((WORKFLOWS / "grade.yml").read_text())["jobs"]["grade"]
    [step] = [s for s in job["steps"] if "gh api" in s.get("run", "")]
    assert step["if"] == "failure() && steps.post.outcome != 'success'"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    fake_gh = bin_dir / "gh"
    fake_gh.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    fake_gh.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GITHUB_REPOSITORY": "course/repo",
        "HEAD_SHA": OTHER_SHA,
        "DETAILS_URL": "https://github.example/run/1",
        "GH_TOKEN": "t0ken",
    }
    result = subprocess.run(
        ["bash", "-c", " ".join(step["run"].split())],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    argv = json.loads(record.read_text())
    assert argv[:4] == ["api", "repos/course/repo/check-runs", "--method", "POST"]
    fields = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-f")
    assert fields["head_sha"] == OTHER_SHA
    assert fields["conclusion"] == "failure"
    assert fields["status"] == "completed"
    assert fields["output[title]"] == "Not graded"
    assert "https://github.example/run/1" in fields["output[summary]"]
