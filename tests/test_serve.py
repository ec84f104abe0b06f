"""`grader serve` as students and staff use it: uvicorn on a free port, the toy problem,
requests sent byte for byte.

`test_student_uploads_and_reads_the_verdict` is the end-to-end test of `grader serve` (a real
process grading in the sandbox), with the log test on the same server; a killed or stopped
server is a real one too. The other tests use the same service served in this process on
in-process runners (`serving.InProcessServer`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from serving import STAFF_TOKEN, TOY, InProcessServer, Server, make_roster, multipart

from grader.cli import cli
from grader.gradebook import BatchResult, gradebook_csv

CORRECT = (TOY / "submissions" / "correct.py").read_bytes()
UNKNOWN_TOKEN = "not-a-real-token-but-secret-1234"  # noqa: S105 (a test value)
# Wrong on every case: the count is off by one.
WRONG = b"def vector_stats(x, k):\n    return [len(x) + 1, float(sum(x)) * k, 0.0]\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service in this process, grading on in-process runners."""
    folder = tmp_path_factory.mktemp("serve")
    tokens = make_roster(folder)
    running = InProcessServer(folder, tokens, workers=2).start()
    yield running
    running.kill()


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `grader serve` process, grading in the sandbox."""
    folder = tmp_path_factory.mktemp("serve-real")
    tokens = make_roster(folder)
    running = Server(folder, tokens, workers=2).start()
    yield running
    running.kill()


def test_student_uploads_and_reads_the_verdict(real_server: Server) -> None:
    """The end-to-end test of `grader serve`: a process grading uploads in the sandbox."""
    server = real_server
    answer = server.submit("alice", "solution.py", CORRECT)
    assert answer.status == 202, answer.body
    accepted = answer.json()
    assert accepted["state"] in {"queued", "running", "done"}
    assert accepted["problem"] == "vector_stats"  # found from the only problem
    done = server.wait_done("alice", accepted["id"])
    report = done["report"]
    assert report["view"] == "student"
    assert report["status"] == "graded" and report["score"] == report["max_score"] > 0
    assert report["submission"]["path"] == "solution.py"

    wrong = server.submit("alice", "wrong.py", WRONG, problem="vector_stats").json()
    graded = server.wait_done("alice", wrong["id"])["report"]
    assert graded["score"] == 0 and graded["status"] == "graded"
    assert graded["view"] == "student"

    mine = server.request("GET", "/api/submissions", token=server.tokens["alice"]).json()
    assert [s["id"] for s in mine["submissions"]][:2] == [wrong["id"], accepted["id"]]


def test_a_notebook_is_stored_with_its_suffix_and_graded(server: Server) -> None:
    cell = {
        "cell_type": "code",
        "metadata": {},
        "source": CORRECT.decode(),
        "outputs": [],
        "execution_count": None,
    }
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    answer = server.submit("alice", "solution.ipynb", json.dumps(notebook).encode())
    assert answer.status == 202, answer.body
    assert answer.json()["file"] == "solution.ipynb"
    pytest.importorskip("grader.notebook", reason="notebook grading (issue 16) is not merged")
    report = server.wait_done("alice", answer.json()["id"])["report"]
    assert report["status"] == "graded" and report["score"] == report["max_score"]
    assert report["submission"]["path"] == "solution.ipynb"


def test_identity_comes_from_the_token(server: Server) -> None:
    alice, bob = server.tokens["alice"], server.tokens["bob"]
    own = server.submit("alice", "bob.py", CORRECT).json()  # the file name says nothing
    assert own["student"] == "alice"

    missing = server.request("GET", "/api/submissions")
    assert missing.status == 401 and "Bearer" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for header in (f"Basic {alice}", "Bearer", f"Bearer {alice}x", f"Bearer {STAFF_TOKEN[:-1]}"):
        refused = server.request("GET", "/api/submissions", headers={"Authorization": header})
        assert refused.status == 401, header
    # Another student's submission does not exist for bob; staff see it.
    assert server.request("GET", f"/api/submissions/{own['id']}", token=bob).status == 404
    assert own["id"] not in server.request("GET", "/api/submissions", token=bob).body.decode()
    staff = server.request("GET", f"/api/submissions/{own['id']}", token=STAFF_TOKEN)
    assert staff.status == 200 and staff.json()["student"] == "alice"
    body, kind = multipart({}, [("file", "x.py", CORRECT)])
    as_staff = server.request(
        "POST", "/api/submissions", token=STAFF_TOKEN, body=body, headers={"Content-Type": kind}
    )
    assert as_staff.status == 403
    assert server.request("GET", "/api/grades.csv", token=alice).status == 403


def _bad_requests() -> list[tuple[str, bytes, str]]:
    ok_body, ok_type = multipart({}, [("file", "a.py", CORRECT)])
    no_file, no_file_type = multipart({"problem": "vector_stats"}, [])
    as_text, as_text_type = multipart({"file": "print(1)"}, [])
    txt, txt_type = multipart({}, [("file", "notes.txt", b"hello")])
    no_suffix, no_suffix_type = multipart({}, [("file", "solution", CORRECT)])
    unknown, unknown_type = multipart({"problem": "nope\x1b[2J"}, [("file", "a.py", CORRECT)])
    two, two_type = multipart({}, [("file", "a.py", CORRECT), ("file", "b.py", CORRECT)])
    unnamed, unnamed_type = multipart({}, [("file", "", CORRECT)])
    return [
        ("no multipart at all", b"file=print(1)", "application/x-www-form-urlencoded"),
        ("no boundary", ok_body, "multipart/form-data"),
        ("wrong boundary", ok_body, "multipart/form-data; boundary=nothere"),
        ("truncated body", ok_body[: len(ok_body) // 2], ok_type),
        ("garbage", b"\x00\xff" * 500, ok_type),
        ("missing file field", no_file, no_file_type),
        ("file sent as text", as_text, as_text_type),
        ("wrong suffix", txt, txt_type),
        ("no suffix", no_suffix, no_suffix_type),
        ("unknown problem", unknown, unknown_type),
        ("two files", two, two_type),
        ("file without a name", unnamed, unnamed_type),
    ]


# Ids by name: the bodies hold random boundaries, and xdist workers must collect alike.
@pytest.mark.parametrize(
    ("what", "body", "content_type"), _bad_requests(), ids=[r[0] for r in _bad_requests()]
)
def test_bad_input_is_a_4xx_saying_what_is_wrong(
    real_server: Server, what: str, body: bytes, content_type: str
) -> None:
    # On the real server: in this process, Starlette's parser leaves a refused body's spooled
    # file for the garbage collector (grader.service.app._read_upload), which pytest fails.
    server = real_server
    answer = server.request(
        "POST",
        "/api/submissions",
        token=server.tokens["bob"],
        body=body,
        headers={"Content-Type": content_type},
    )
    assert 400 <= answer.status < 500, (what, answer.status, answer.body)
    error = answer.json()["error"]
    assert len(error) > 15 and "\x1b" not in error, what


def test_hostile_file_names_are_labels_only(server: Server) -> None:
    not_utf8 = server.submit("bob", b"\xff\xfe caf\xe9.py", CORRECT)
    assert not_utf8.status == 202, not_utf8.body
    traversal = server.submit("bob", "../../../etc/passwd.py", CORRECT).json()
    assert traversal["file"] == "passwd.py"
    windows = server.submit("bob", "C:\\Users\\bob\\sol.PY", CORRECT).json()
    assert windows["file"] == "sol.PY"
    report = server.wait_done("bob", traversal["id"])["report"]
    assert report["status"] == "graded"


def test_uploads_over_1_mib_are_refused_while_streaming(server: Server) -> None:
    big = b"# padding\n" * 110_000  # 1.1 MB
    declared = server.submit("bob", "big.py", big)
    assert declared.status == 413 and "1024 KiB" in declared.json()["error"]
    # Chunked, with no length announced: the answer comes before the body ends (the client
    # stops sending after 1.2 MB of an endless body and still reads a 413).
    body, content_type = multipart({}, [("file", "big.py", big * 4)])
    head = (
        f"POST /api/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{server.tokens['bob']}\r\nContent-Type: {content_type}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
        conn.sendall(head)
        sent = 0
        try:
            while sent < 1_200_000:
                chunk = body[sent : sent + 65536]
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server may close the connection as soon as it has answered
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_staff_gradebook_is_the_batch_format(server: Server) -> None:
    first = server.submit("bob", "first.py", WRONG).json()
    server.wait_done("bob", first["id"])
    latest = server.submit("bob", "latest.py", CORRECT).json()
    server.wait_done("bob", latest["id"])
    answer = server.request("GET", "/api/grades.csv", token=STAFF_TOKEN)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    text = answer.body.decode()
    assert text.splitlines()[0] == gradebook_csv(BatchResult(seed=0)).strip()
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["bob"]["score"] == rows["bob"]["max_score"]  # the latest one counts
    assert rows["bob"]["sha256"] == __import__("hashlib").sha256(CORRECT).hexdigest()


def test_tokens_never_reach_the_log(real_server: Server) -> None:
    server = real_server  # its log as `grader serve` configures it
    secret = server.tokens["alice"]
    server.request("GET", f"/?token={secret}")
    server.request("GET", f"/api/submissions?access_token={secret}", token=secret)
    server.request("GET", "/api/submissions", token=UNKNOWN_TOKEN)
    server.request("GET", f"/api/submissions/{secret}", token=secret)  # pasted into the path
    time.sleep(0.5)
    log = server.log_text()
    assert '"GET /api/submissions?... HTTP/1.1" 200' in log  # the access log is on
    for token in (*server.tokens.values(), STAFF_TOKEN, UNKNOWN_TOKEN):
        assert token not in log


def test_rate_limit_from_the_spec(tmp_path: Path) -> None:
    problems = tmp_path / "problems"
    problems.mkdir()
    spec = (TOY / "problems" / "vector_stats.toml").read_text()
    (problems / "vector_stats.toml").write_text(spec + "\n[service]\nsubmissions_per_hour = 2\n")
    tokens = make_roster(tmp_path)
    server = InProcessServer(tmp_path, tokens, workers=1, problems_dir=problems).start()
    try:
        assert server.submit("alice", "a.py", CORRECT).status == 202
        assert server.submit("alice", "a.py", CORRECT).status == 202
        refused = server.submit("alice", "a.py", CORRECT)
        assert refused.status == 429
        body = refused.json()
        assert "at most 2 submissions per hour" in body["error"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["next_allowed"])
        assert 3500 <= int(refused.headers["retry-after"]) <= 3601
        assert server.submit("bob", "a.py", CORRECT).status == 202  # per student
    finally:
        server.kill()
    # --rate overrides the spec.
    extra = ("--rate", "5/hour")
    server = InProcessServer(tmp_path, tokens, workers=1, problems_dir=problems, extra=extra)
    server.start()
    try:
        assert server.submit("alice", "a.py", CORRECT).status == 202
    finally:
        server.kill()


def test_roster_make(tmp_path: Path) -> None:
    tokens = make_roster(tmp_path, ("ana", "ben", "chloé"))
    roster = tmp_path / "roster.csv"
    assert set(tokens) == {"ana", "ben", "chloé"}
    assert len(set(tokens.values())) == 3 and all(len(t) >= 32 for t in tokens.values())
    assert stat.S_IMODE(roster.stat().st_mode) == 0o600
    again = CliRunner().invoke(
        cli, ["roster", "make", str(tmp_path / "names.txt"), "--out", str(roster)]
    )
    assert again.exit_code == 2 and "--force" in again.stderr


def _graded_lines(server: Server) -> list[str]:
    return re.findall(r"graded submission ([0-9a-f]{32})", server.log_text())


@pytest.mark.slow
def test_nothing_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    tokens = make_roster(tmp_path)
    server = Server(tmp_path, tokens, workers=2).start()
    slow = b"import time\ntime.sleep(2)\n" + CORRECT
    accepted = []
    try:
        for number in range(6):
            answer = server.submit(("alice", "bob")[number % 2], f"s{number}.py", slow)
            assert answer.status == 202
            accepted.append(answer.json()["id"])
        database = tmp_path / "data" / "service.sqlite3"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(database) as db:
                states = dict(db.execute("SELECT state, COUNT(*) FROM submissions GROUP BY state"))
            if states.get("done", 0) >= 1 and states.get("running", 0) >= 1:
                break
            time.sleep(0.1)
        server.kill()  # SIGKILL, mid-grading
        assert states.get("done", 0) < 6
        server.start()  # the same data folder
        for number, submission_id in enumerate(accepted):
            done = server.wait_done(("alice", "bob")[number % 2], submission_id)
            assert done["report"]["score"] == done["report"]["max_score"]
    finally:
        server.kill()
    with sqlite3.connect(database) as db:
        rows = list(db.execute("SELECT id, state, duplicates FROM submissions"))
    assert sorted(r[0] for r in rows) == sorted(accepted)
    assert all(state == "done" and duplicates == 0 for _, state, duplicates in rows)
    finished = _graded_lines(server)
    assert sorted(finished) == sorted(accepted)  # each finished once, over both runs


@pytest.mark.slow
def test_sigterm_puts_the_running_grading_back(tmp_path: Path) -> None:
    tokens = make_roster(tmp_path)
    server = Server(tmp_path, tokens, workers=1).start()
    slow = b"import time\ntime.sleep(30)\n" + CORRECT
    submission_id = server.submit("alice", "slow.py", slow).json()["id"]
    database = tmp_path / "data" / "service.sqlite3"
    deadline = time.monotonic() + 30
    state = "queued"
    while state != "running" and time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            state = db.execute("SELECT state FROM submissions").fetchone()[0]
        time.sleep(0.1)
    assert state == "running"
    stopped = time.monotonic()
    server.kill(signal.SIGTERM)
    assert time.monotonic() - stopped < 20  # the sandboxed run is stopped, not waited for
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT id, state, attempts FROM submissions").fetchone()
    assert row == (submission_id, "queued", 0)


def test_forms_posted_from_another_site_are_refused(server: Server) -> None:
    """A sign-in form on another site would sign a classmate into the sender's account (and
    their uploads into the sender's name): browsers say where a post comes from."""
    body = f"token={server.tokens['bob']}".encode()  # bob's own token, sent from elsewhere
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for header in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = server.request("POST", "/login", body=body, headers={**form, **header})
        assert refused.status == 403 and "set-cookie" not in refused.headers
        assert "did not come from this site" in refused.body.decode()  # a page, for people
    own = {"Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": "same-origin"}
    signed_in = server.request("POST", "/login", body=body, headers={**form, **own})
    assert signed_in.status == 303 and "grader_token=" in signed_in.headers["set-cookie"]


def test_no_redirect_built_from_the_host_header(server: Server) -> None:
    answer = server.request(
        "GET", "/api/submissions/", token=server.tokens["alice"], headers={"Host": "evil.example"}
    )
    assert answer.status == 404 and "location" not in answer.headers
