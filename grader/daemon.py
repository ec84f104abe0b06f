"""The warm engine behind `grader check`: a per-user background process that keeps what a
grading needs between commands (as dmypy or Gradle's daemon do).

The first `grader check` starts it; the next ones send it their file and get the report back,
so that neither interpreter start-up, JAX's import in the sandbox's zygotes, nor (for a new
seed) the reference's run is paid again: after each real grading it readies the next seed's
reference outcomes while the student reads the verdict (`engine.SeedPool`). It grades with the
same engine and sandbox as `grader check --no-daemon` (`Setup.for_student`), so a verdict is
the same either way. It stops after `IDLE_SECONDS` without a request, or with
`grader daemon stop`.

It listens on a Unix socket in a folder only its user may enter (`runtime_dir`); the socket's
name carries a digest of the grader's code, Python and library versions, so a changed grader
is never answered by an old daemon. The client resolves which problem or pack a file is
graded against (engine.Catalog, where it runs, with its own folder and environment) and sends
the file's bytes: the daemon reads nothing of the client's folders but the problem, reference
or pack it is told to use.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from grader import __version__
from grader.cache import library_versions
from grader.engine import Catalog, Grader, SeedPool, Setup, Target, written_upload
from grader.errors import GraderError
from grader.models import Report
from grader.problems import Problem

IDLE_ENV = "GRADER_DAEMON_IDLE"
IDLE_SECONDS = 15 * 60
START_SECONDS = 60.0  # how long a client waits for a daemon it started
MAX_REQUEST = 64 * 1024 * 1024  # a notebook (16 MiB) in base64, and the rest
PACKAGE = Path(__file__).resolve().parent


class Request(BaseModel):
    """One `grader check`, as the client resolved it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content: str  # base64 of the file's bytes, read once by the client
    name: str  # the file as the student named it (tracebacks, the report)
    suffix: Literal[".py", ".ipynb"]
    kind: Literal["problem", "pack"]
    problem_id: str = ""
    problems_dir: str = ""
    reference_dir: str = ""
    pack: str = ""
    seed: int | None = None
    require_sandbox: bool = False


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    report: str | None = None  # the staff report, JSON
    fault: bool = False
    error: str | None = None  # a GraderError's message (exit 2 on the client)


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR/grader, else <tmp>/grader-<uid>: made 0700 and checked to be this
    user's own folder (another user could have made it first, to catch the socket)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and not _own_private_folder(Path(base)):
        base = None  # another user's (`su` without `-`, `sudo -E`): they could swap ours
    folder = (
        Path(base) / "grader" if base else Path(tempfile.gettempdir()) / f"grader-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.getuid():
        raise OSError(f"{folder} is not a folder of this user's own")
    if info.st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def _own_private_folder(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    mine = path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid()
    return mine and not info.st_mode & 0o022


def code_key() -> str:
    """Which grader a daemon runs: its code, the Python, and every installed distribution
    (numpy or optax upgraded, a venv rebuilt: another key, another daemon)."""
    newest = max(path.stat().st_mtime_ns for path in PACKAGE.rglob("*.py"))
    folders = [
        Path(entry) for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))
    ]
    installed = sorted(
        item.name
        for folder in folders
        if folder.is_dir()
        for item in folder.iterdir()
        if item.name.endswith((".dist-info", ".egg-info"))
    )
    # The interpreter itself (bin/python and bin/python3 are one) and its environment.
    python = os.path.realpath(sys.executable)
    parts = [python, sys.prefix, sys.version, str(PACKAGE), __version__, str(newest)]
    text = "|".join([*parts, library_versions(), *installed])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


MAX_SOCKET_PATH = 100  # bytes: a Unix socket's path must fit in 108 (sun_path)


def socket_path() -> Path:
    path = runtime_dir() / f"daemon-{code_key()}.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise OSError(
            f"{path} is too long for a Unix socket: set XDG_RUNTIME_DIR to a shorter path"
        )
    return path


# The server ---------------------------------------------------------------------------------


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), _Handler)
        self.graders: dict[bool, tuple[Grader, SeedPool]] = {}
        self.lock = threading.Lock()
        self.last = time.monotonic()
        self.busy = 0

    def grader(self, require_sandbox: bool) -> tuple[Grader, SeedPool]:
        with self.lock:
            if require_sandbox not in self.graders:
                grader = Grader(Setup.for_student(require_sandbox=require_sandbox))
                self.graders[require_sandbox] = grader, SeedPool(grader, size=2)
            return self.graders[require_sandbox]

    def answer(self, request: Request) -> tuple[Reply, Problem | None]:
        """The reply, and what to ready next (a problem) once it is sent."""
        grader, pool = self.grader(request.require_sandbox)
        try:
            content = base64.b64decode(request.content, validate=True)
        except ValueError:
            return Reply(error="the daemon could not read the request: bad base64"), None
        try:
            catalog = Catalog(Path(request.problems_dir), Path(request.reference_dir))
            if request.kind == "pack":
                target, seed = catalog.target("", pack=Path(request.pack)), None
            else:
                target = Target(catalog.problem(request.problem_id))
                seed = request.seed
                if seed is None:
                    seed = pool.take(target.problem, wait=60)
            # Graded as `grader check` grades (course faults are the check's errors, not a
            # report), from a private copy as an upload is.
            with written_upload(content, request.suffix) as path:
                graded = grader.grade(path, target, seed=seed, display_name=request.name)
        except GraderError as exc:
            return Reply(error=str(exc)), None
        ready_next = target.problem if request.kind == "problem" else None
        return Reply(report=graded.staff.model_dump_json(), fault=graded.fault), ready_next


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        server = self.server
        with server.lock:
            server.busy += 1
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
            if line.strip() == b"stop":
                self.wfile.write(b'{"stopping": true}\n')
                threading.Thread(target=server.shutdown, daemon=True).start()
                return
            if line.strip() == b"ping":
                self.wfile.write(json.dumps({"pid": os.getpid()}).encode() + b"\n")
                return
            try:
                request = Request.model_validate_json(line)
            except ValueError as exc:
                reply, ready_next = (
                    Reply(error=f"the daemon could not read the request: {exc}"),
                    None,
                )
            else:
                reply, ready_next = server.answer(request)
            self.wfile.write(reply.model_dump_json().encode() + b"\n")
            self.wfile.flush()
            if ready_next is not None:
                _, pool = server.grader(request.require_sandbox)
                with contextlib.suppress(Exception):  # the next grading says what is wrong
                    # Only while no other check is graded (this handler is the one busy):
                    # readying must not slow a grading, whose limits count its time.
                    while server.busy == 1 and pool.fill(ready_next):
                        pass
        finally:
            with server.lock:
                server.busy -= 1
                server.last = time.monotonic()


def serve(idle: float | None = None) -> None:
    """Run the daemon until it is idle for `idle` seconds, or stopped."""
    idle = float(os.environ.get(IDLE_ENV, IDLE_SECONDS)) if idle is None else idle
    path = socket_path()
    # One daemon per socket: a second one started at the same moment (two first checks)
    # leaves at once, rather than take the socket and leave the first running unreachable.
    lock = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a daemon of this code that died: its socket answers no one
    server = _Server(path)
    path.chmod(0o600)

    def watch() -> None:
        while True:
            time.sleep(min(5.0, max(idle / 4, 0.05)))
            with server.lock:
                quiet = server.busy == 0 and time.monotonic() - server.last > idle
            if quiet:
                server.shutdown()
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        for grader, _ in server.graders.values():
            grader.setup.cancel()


# The client ---------------------------------------------------------------------------------


def _connect(path: Path, timeout: float | None) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        client.connect(str(path))
        # The process on the other end must be this user's: nobody else's socket (swapped in
        # after the folder was checked) gets a file or forges a verdict.
        credentials = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        _pid, uid, _gid = struct.unpack("3i", credentials)
        if uid != os.getuid():
            raise OSError(f"the socket {path} belongs to uid {uid}, not to this user")
    except OSError:
        client.close()
        raise
    return client


def _exchange(path: Path, line: bytes, timeout: float | None = None) -> bytes:
    with _connect(path, timeout) as client:
        client.sendall(line + b"\n")
        with client.makefile("rb") as stream:
            return stream.readline(MAX_REQUEST)


def start() -> Path:
    """A running daemon's socket: this code's, started now if there is none."""
    path = socket_path()
    with contextlib.suppress(OSError):
        _exchange(path, b"ping", timeout=5)
        return path
    folder = runtime_dir()
    log_path = folder / "daemon.log"
    with log_path.open("ab") as log:
        started = subprocess.Popen(
            # -P and a folder of our own: never a `grader` package of the folder the student
            # runs the check in (it would run unsandboxed, as the user).
            [sys.executable, "-P", "-m", "grader.daemon"],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not stopped by the terminal's Ctrl-C meant for the client
            close_fds=True,
        )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _exchange(path, b"ping", timeout=5)
            return path
        code = started.poll()
        if code is not None:
            with contextlib.suppress(OSError):
                _exchange(path, b"ping", timeout=5)  # another check's daemon won the lock
                return path
            raise OSError(f"the grading daemon exited at start (code {code}); see {log_path}")
        time.sleep(0.05)
    raise OSError(f"the grading daemon did not start within {START_SECONDS:g} s; see {log_path}")


def grade(request: Request) -> tuple[Report, bool]:
    """The staff report of one `grader check` from the daemon (started if needed), and
    whether it is a fault of the grader's. GraderError for the course's faults; OSError when
    the daemon cannot be reached (the caller grades in its own process instead)."""
    path = start()
    answer = _exchange(path, request.model_dump_json().encode())
    if not answer:
        raise OSError("the grading daemon closed the connection without an answer")
    reply = Reply.model_validate_json(answer)
    if reply.error is not None:
        raise GraderError(reply.error)
    assert reply.report is not None
    return Report.model_validate_json(reply.report), reply.fault


def stop() -> bool:
    """Stop this code's daemon; False when none was running."""
    try:
        _exchange(socket_path(), b"stop", timeout=5)
    except OSError:
        return False
    return True


def status() -> int | None:
    """The pid of this code's running daemon, or None."""
    try:
        answer = _exchange(socket_path(), b"ping", timeout=5)
        return int(json.loads(answer)["pid"])
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    serve()
