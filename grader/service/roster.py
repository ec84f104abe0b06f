"""Who may use the service: the roster (`student,token`) and the staff token.

Tokens are secrets: they are compared in constant time (`hmac.compare_digest`, against every
entry, so the time taken says nothing about which one was close), never logged, never put in
a URL, and the roster file is written readable by its owner only.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

from grader.errors import UsageError
from grader.storage import write_atomic

STAFF_TOKEN_ENV = "GRADER_STAFF_TOKEN"  # noqa: S105 (the variable's name, not a token)
MIN_TOKEN_CHARS = 16
MAX_STUDENT_CHARS = 100


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a student, or staff (who see everything)."""

    student: str | None
    staff: bool = False

    @property
    def name(self) -> str:
        return "staff" if self.staff else str(self.student)


class Roster:
    """Tokens to callers."""

    def __init__(self, students: dict[str, str], staff_token: str | None) -> None:
        self._tokens = [(token.encode(), student) for student, token in students.items()]
        self.students = sorted(students)
        self._staff = staff_token.encode() if staff_token else None
        if self._staff is not None and any(
            hmac.compare_digest(token, self._staff) for token, _ in self._tokens
        ):
            raise UsageError(f"${STAFF_TOKEN_ENV} equals a student's token: choose another")

    def caller(self, token: str) -> Caller | None:
        """The caller a token belongs to, or None; every entry is compared, in constant time."""
        given = token.encode("utf-8", errors="surrogateescape")
        found: Caller | None = None
        for known, student in self._tokens:
            if hmac.compare_digest(known, given):
                found = Caller(student)
        if self._staff is not None and hmac.compare_digest(self._staff, given):
            found = Caller(None, staff=True)
        return found


def load_roster(path: Path, staff_token: str | None) -> Roster:
    """Read and check a roster CSV (header `student,token`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the roster {path}: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [cell.strip() for cell in rows[0]] != ["student", "token"]:
        raise UsageError(
            f"the roster {path} must start with the header line 'student,token' "
            f"(make one with `grader roster make NAMES --out {path}`)"
        )
    students: dict[str, str] = {}
    seen_tokens: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise UsageError(
                f"{path}, line {number}: expected 'student,token', got {len(row)} cells"
            )
        student, token = row[0].strip(), row[1].strip()
        problem = student_id_problem(student)
        if problem:
            raise UsageError(f"{path}, line {number}: {problem}")
        if student in students:
            raise UsageError(f"{path}, line {number}: student {student!r} appears twice")
        if len(token) < MIN_TOKEN_CHARS:
            raise UsageError(
                f"{path}, line {number}: the token of {student!r} is shorter than "
                f"{MIN_TOKEN_CHARS} characters: make tokens with `grader roster make`"
            )
        if token in seen_tokens:
            raise UsageError(f"{path}, line {number}: two students share a token")
        seen_tokens.add(token)
        students[student] = token
    if staff_token is not None and len(staff_token) < MIN_TOKEN_CHARS:
        raise UsageError(f"${STAFF_TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters long")
    return Roster(students, staff_token)


def student_id_problem(student: str) -> str | None:
    """Why a name cannot be a student id (it becomes a gradebook cell and a link), or None."""
    if not student:
        return "empty student name"
    if len(student) > MAX_STUDENT_CHARS:
        return f"student name longer than {MAX_STUDENT_CHARS} characters: {student[:20]!r}..."
    if any(ord(c) < 32 or ord(c) == 127 for c in student) or "/" in student:
        return f"student name {student!r} holds a control character or '/'"
    if student.lower() == "staff":
        return "'staff' is reserved for the staff token"
    return None


def make_roster(names_file: Path, out: Path, *, force: bool = False) -> int:
    """Write a roster with a fresh random token for every name in names_file (one a line)."""
    if out.exists() and not force:
        raise UsageError(
            f"{out} exists: a new roster would replace every student's token. Pass --force to "
            f"do so, or choose another --out."
        )
    try:
        lines = names_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {names_file}: {exc}") from None
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        problem = student_id_problem(name)
        if problem:
            raise UsageError(f"{names_file}, line {number}: {problem}")
        if name in names:
            raise UsageError(f"{names_file}, line {number}: {name!r} appears twice")
        names.append(name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "token"])
    for name in names:
        writer.writerow([name, secrets.token_urlsafe(24)])
    # The file holds every student's secret: readable by its owner only, from the start.
    write_atomic(out, buffer.getvalue(), private=True)
    return len(names)
