"""Submissions, their state and their reports, in one SQLite database under the data folder.

Why SQLite: the service must lose nothing when killed at any moment, and must finish every
submission exactly once. SQLite gives both with no other server: every change is one
transaction (WAL journal, `synchronous=FULL`: a commit is on disk before the HTTP answer says
202), a submission's bytes are stored in the same row as its state, and the states move only
forward through guarded updates:

    queued --claim--> running --finish--> done
      ^                  |
      +---- requeue -----+   (at start-up: a grading cut short by a kill is done again)

`finish` updates only a row that is not yet `done`, so a result that arrives twice (a Redis
message redelivered after a worker died, a grading repeated after a restart) is ignored the
second time: the first report stays, and `finish` says it was a duplicate.

Every thread opens its own connection (sqlite3 connections are not shared across threads).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

State = Literal["queued", "running", "done"]
HOUR = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    student TEXT NOT NULL,
    problem TEXT NOT NULL,
    file_name TEXT NOT NULL,
    suffix TEXT NOT NULL,
    content BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    seed INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    submitted REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    score REAL,
    max_score REAL,
    status TEXT,
    report TEXT
);
CREATE INDEX IF NOT EXISTS by_state ON submissions (state, seq);
CREATE INDEX IF NOT EXISTS by_student ON submissions (student, problem, submitted);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Submission:
    """One stored submission (the bytes are loaded only when grading needs them)."""

    seq: int
    id: str
    student: str
    problem: str
    file_name: str
    suffix: str
    sha256: str
    seed: int
    state: State
    submitted: float
    started: float | None
    finished: float | None
    attempts: int
    score: float | None
    max_score: float | None
    status: str | None
    report: str | None  # the staff report as JSON, once done


@dataclass(frozen=True)
class RateLimited:
    """A submission refused by the hourly limit: when the next one will be accepted."""

    limit: int
    next_allowed: float


@dataclass(frozen=True)
class StillWaiting:
    """A submission refused because the student's earlier ones have no verdict yet."""

    waiting: int


# Submissions of one student to one problem that may wait for a verdict at once: the queue is
# shared, and one student's files (each may take its whole time limit) must not fill it.
MAX_WAITING = 3


_COLUMNS = (
    "seq, id, student, problem, file_name, suffix, sha256, seed, state, submitted, started, "
    "finished, attempts, score, max_score, status, report"
)
# For listings: every column but the report (up to hundreds of KiB each), read as NULL.
_BRIEF = _COLUMNS.replace("report", "NULL AS report")


class Store:
    """The service's database: a file `service.sqlite3` in the data folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)  # submissions and tokens' owners: staff only
        self.path = folder / "service.sqlite3"
        self._local = threading.local()
        self._db().executescript(_SCHEMA)  # each statement is idempotent

    # ----------------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            # IMMEDIATE: take the write lock now, so that a check and the write it decides
            # (the rate limit, a claim) cannot interleave with another thread's.
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")

    def _transaction(self) -> Store._Tx:
        return Store._Tx(self._db())

    # ----------------------------------------------------------------------------------------

    def meta(self, key: str, default: str) -> str:
        """A value kept in the database (set to default the first time)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"])

    def add(
        self,
        *,
        student: str,
        problem: str,
        file_name: str,
        suffix: str,
        content: bytes,
        sha256: str,
        seed: int,
        per_hour: int | None,
        now: float | None = None,
    ) -> Submission | RateLimited | StillWaiting:
        """Store a submission as queued, unless the student used up the hour's submissions or
        has MAX_WAITING waiting for their verdicts."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            (waiting,) = db.execute(
                "SELECT COUNT(*) FROM submissions WHERE student = ? AND problem = ? "
                "AND state IN ('queued', 'running')",
                (student, problem),
            ).fetchone()
            if waiting >= MAX_WAITING:
                return StillWaiting(waiting)
            if per_hour is not None:
                recent = [
                    row["submitted"]
                    for row in db.execute(
                        "SELECT submitted FROM submissions WHERE student = ? AND problem = ? "
                        "AND submitted > ? ORDER BY submitted",
                        (student, problem, now - HOUR),
                    )
                ]
                if len(recent) >= per_hour:
                    # The oldest submission that still counts leaves the window first.
                    return RateLimited(per_hour, recent[len(recent) - per_hour] + HOUR)
            submission_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO submissions (id, student, problem, file_name, suffix, content, "
                "sha256, seed, state, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (submission_id, student, problem, file_name, suffix, content, sha256, seed, now),
            )
        found = self.get(submission_id)
        assert found is not None
        return found

    def get(self, submission_id: str) -> Submission | None:
        row = (
            self._db()
            .execute(f"SELECT {_COLUMNS} FROM submissions WHERE id = ?", (submission_id,))
            .fetchone()
        )
        return None if row is None else Submission(**dict(row))

    def content(self, submission_id: str) -> bytes:
        row = (
            self._db()
            .execute("SELECT content FROM submissions WHERE id = ?", (submission_id,))
            .fetchone()
        )
        return bytes(row["content"])

    def of_student(self, student: str) -> list[Submission]:
        """A student's submissions, newest first (without their reports)."""
        rows = self._db().execute(
            f"SELECT {_BRIEF} FROM submissions WHERE student = ? ORDER BY seq DESC", (student,)
        )
        return [Submission(**dict(row)) for row in rows]

    def latest_done(self, problem: str) -> dict[str, Submission]:
        """Each student's latest graded submission to a problem."""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM submissions WHERE problem = ? AND state = 'done' ORDER BY seq",
            (problem,),
        )
        latest: dict[str, Submission] = {}
        for row in rows:
            latest[row["student"]] = Submission(**dict(row))
        return latest

    def all(self) -> list[Submission]:
        """Every submission, oldest first (without their reports)."""
        rows = self._db().execute(f"SELECT {_BRIEF} FROM submissions ORDER BY seq")
        return [Submission(**dict(row)) for row in rows]

    def position(self, submission: Submission) -> int | None:
        """1 for the next submission to be graded; None unless queued."""
        if submission.state != "queued":
            return None
        row = (
            self._db()
            .execute(
                "SELECT COUNT(*) AS n FROM submissions WHERE state = 'queued' AND seq <= ?",
                (submission.seq,),
            )
            .fetchone()
        )
        return int(row["n"])

    # ----------------------------------------------------------------------------------------
    # The local pool's side

    def claim(self, problems: tuple[str, ...]) -> Submission | None:
        """The next queued submission to one of these problems, now marked running (None when
        there is none): the oldest of a student with none running, if any (so that one
        student's slow files do not hold back everyone else's), else the oldest."""
        marks = ", ".join("?" * len(problems))
        with self._transaction() as db:
            row = db.execute(
                f"SELECT id FROM submissions AS s WHERE state = 'queued' AND problem IN ({marks}) "
                f"ORDER BY (SELECT COUNT(*) FROM submissions AS r WHERE r.student = s.student "
                f"AND r.state = 'running'), seq LIMIT 1",
                problems,
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE submissions SET state = 'running', started = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.get(row["id"])

    def mark_running(self, submission_id: str) -> None:
        """A queue worker started it (shown to the student; a restart does not requeue it:
        the queue redelivers the message if that worker dies)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE submissions SET state = 'running', started = ?, attempts = attempts + 1 "
                "WHERE id = ? AND state = 'queued'",
                (time.time(), submission_id),
            )

    def requeue_running(self) -> int:
        """Put back every grading cut short (at start-up, or when a worker was stopped)."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE submissions SET state = 'queued', started = NULL WHERE state = 'running'"
            ).rowcount

    def requeue(self, submission_id: str) -> None:
        """Put back a grading the service stopped itself (a graceful shutdown): that try is
        not counted against the file, unlike one cut short by a kill."""
        with self._transaction() as db:
            db.execute(
                "UPDATE submissions SET state = 'queued', started = NULL, "
                "attempts = attempts - 1 WHERE id = ? AND state = 'running'",
                (submission_id,),
            )

    def finish(
        self, submission_id: str, *, report_json: str, score: float, max_score: float, status: str
    ) -> bool:
        """Record the report, once: False (and nothing changed) when it was already done."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE submissions SET state = 'done', finished = ?, report = ?, score = ?, "
                "max_score = ?, status = ? WHERE id = ? AND state != 'done'",
                (time.time(), report_json, score, max_score, status, submission_id),
            ).rowcount
            if not changed:
                db.execute(
                    "UPDATE submissions SET duplicates = duplicates + 1 WHERE id = ?",
                    (submission_id,),
                )
        return bool(changed)

    # ----------------------------------------------------------------------------------------
    # The Redis queue's outbox: a submission is committed here first, then sent; a crash
    # between the two sends it again at start-up (a duplicate result is ignored by `finish`).

    def unsent(self) -> list[Submission]:
        rows = self._db().execute(
            f"SELECT {_BRIEF} FROM submissions WHERE sent = 0 AND state != 'done' ORDER BY seq"
        )
        return [Submission(**dict(row)) for row in rows]

    def mark_sent(self, submission_id: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE submissions SET sent = 1 WHERE id = ?", (submission_id,))
