"""A real `grader serve` (uvicorn on a free port, in its own process group) for the tests, the
same service served in this process on in-process runners (`InProcessServer`), and a real
`redis-server`, with a small HTTP client that can also send malformed requests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

TOY = Path(__file__).parent / "toy"
GRADER = [sys.executable, "-m", "grader"]
STAFF_TOKEN = "staff-" + "s3cret-staff-token-for-tests"
STUDENTS = ("alice", "bob")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_roster(folder: Path, names: tuple[str, ...] = STUDENTS) -> dict[str, str]:
    """A roster made by `grader roster make` (run in this process); returns student -> token."""
    from click.testing import CliRunner

    from grader.cli import cli

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "names.txt").write_text("\n".join(names) + "\n")
    made = CliRunner().invoke(
        cli, ["roster", "make", str(folder / "names.txt"), "--out", str(folder / "roster.csv")]
    )
    assert made.exit_code == 0, made.output
    lines = (folder / "roster.csv").read_text().splitlines()[1:]
    return dict(line.split(",", 1) for line in lines)  # type: ignore[misc]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def multipart(
    fields: dict[str, str], files: list[tuple[str, bytes | str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body; file names may be raw bytes (not UTF-8)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for field, filename, content in files:
        raw_name = filename if isinstance(filename, bytes) else filename.encode()
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="'.encode()
            + raw_name
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Server:
    """`grader serve` on the toy problem, started and killed as a process group."""

    def __init__(
        self,
        folder: Path,
        tokens: dict[str, str],
        *,
        workers: int = 2,
        extra: tuple[str, ...] = (),
        problems_dir: Path = TOY / "problems",
        reference_dir: Path = TOY / "reference",
    ) -> None:
        self.folder = folder
        self.tokens = tokens
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs: list[Path] = []
        self.command = [
            *GRADER,
            "serve",
            "--data",
            str(folder / "data"),
            "--roster",
            str(folder / "roster.csv"),
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--problems-dir",
            str(problems_dir),
            "--reference-dir",
            str(reference_dir),
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        log = self.folder / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        env = {
            **os.environ,
            "GRADER_STAFF_TOKEN": STAFF_TOKEN,
            "HOME": str(self.folder),
            "GRADER_CACHE_DIR": str(self.folder / "cache"),
        }
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                self.command,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"grader serve exited: {log.read_text()}")
            try:
                if self.request("GET", "/api/submissions").status == 401:
                    return self
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"grader serve did not start: {log.read_text()}")

    def log_text(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        """One HTTP/1.1 request on a fresh connection, written by hand (so that anything can
        be sent), and its response."""
        head = {"Host": f"127.0.0.1:{self.port}", "Connection": "close", **(headers or {})}
        if token is not None:
            head["Authorization"] = f"Bearer {token}"
        if body is not None and "Transfer-Encoding" not in head:
            head["Content-Length"] = str(len(body))
        raw = f"{method} {path} HTTP/1.1\r\n".encode()
        raw += b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in head.items()) + b"\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(raw + (body or b""))
            return read_response(conn)

    def submit(self, student: str, name: str | bytes, content: bytes, **fields: str) -> Response:
        body, content_type = multipart(fields, [("file", name, content)])
        return self.request(
            "POST",
            "/api/submissions",
            token=self.tokens[student],
            body=body,
            headers={"Content-Type": content_type},
        )

    def wait_done(self, student: str, submission_id: str, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.request(
                "GET", f"/api/submissions/{submission_id}", token=self.tokens[student]
            ).json()
            if found["state"] == "done":
                return found
            time.sleep(0.2)
        pytest.fail(f"submission {submission_id} not graded in {timeout} s:\n{self.log_text()}")


class InProcessServer(Server):
    """The service `grader serve` builds (`build_service`, `build_app`, its HTTP limits),
    served by uvicorn in a thread of this process, grading on in-process runners: for tests of
    the HTTP API on files the tests wrote. Of `extra`, only `--rate` is understood; there is
    no log (use `Server` to read one) and no process to signal."""

    def start(self) -> InProcessServer:
        import uvicorn

        from grader.engine import Catalog, Setup, World
        from grader.run.fake import InProcessRunner
        from grader.service.app import MAX_CONNECTIONS, build_app
        from grader.service.http import Limits, uvicorn_options
        from grader.service.start import build_service

        args = self.command[self.command.index("serve") + 1 :]
        options = dict(zip(args[::2], args[1::2], strict=True))
        unknown = set(options) - {"--data", "--roster", "--port", "--workers"}
        unknown -= {"--problems-dir", "--reference-dir", "--rate"}
        assert not unknown, f"InProcessServer does not understand {unknown}"
        saved = os.environ.get("GRADER_STAFF_TOKEN")
        os.environ["GRADER_STAFF_TOKEN"] = STAFF_TOKEN
        try:
            service, _ = build_service(
                data=Path(options["--data"]),
                roster_path=Path(options["--roster"]),
                catalog=Catalog(Path(options["--problems-dir"]), Path(options["--reference-dir"])),
                world=World.of(Setup(InProcessRunner(), InProcessRunner())),
                rate=options.get("--rate"),
                workers=int(options["--workers"]),
            )
        finally:
            if saved is None:
                os.environ.pop("GRADER_STAFF_TOKEN", None)
            else:
                os.environ["GRADER_STAFF_TOKEN"] = saved
        config = uvicorn.Config(
            build_app(service),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_keep_alive=5,
            limit_concurrency=MAX_CONNECTIONS,
            **uvicorn_options(Limits()),
        )
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.uvicorn.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the in-process service did not start")
            time.sleep(0.02)
        return self

    def log_text(self) -> str:
        raise AssertionError("an InProcessServer keeps no log: use Server")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop it as SIGTERM stops `grader serve` (whatever `sig`: a thread cannot be
        killed)."""
        if getattr(self, "thread", None) is not None and self.thread.is_alive():
            self.uvicorn.should_exit = True
            self.thread.join(timeout=60)


def read_response(conn: socket.socket) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = headers.get("content-length")
    while length is not None and len(rest) < int(length):
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Response(status, headers, rest)


class Redis:
    """A real redis-server on a free port, data in a tmp folder, killed at teardown; with an
    ACL user and its password, and with TLS only (a CA and certificate made by openssl), when
    asked."""

    def __init__(self, folder: Path, *, password: str | None = None, tls: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("CI must have redis-server (Debian package 'redis-server')")
            pytest.skip("redis-server is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ca: Path | None = None
        options = ["--port", str(self.port)]
        scheme, query = "redis", ""
        if tls:
            self.ca = _certificates(folder)
            options = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            options += ["--tls-cert-file", str(folder / "server.pem")]
            options += ["--tls-key-file", str(folder / "server.key")]
            options += ["--tls-ca-cert-file", str(self.ca)]
            scheme, query = "rediss", f"?ssl_ca_certs={self.ca}"
        user = ""
        if password is not None:  # an ACL user 'grader'; the default user is off
            user = f"grader:{password}@"
            options += ["--user", "default", "off", "--user", "grader", "on", f">{password}"]
            options += ["~*", "&*", "+@all"]
        self.url = f"{scheme}://{user}127.0.0.1:{self.port}/0{query}"
        self.process = subprocess.Popen(
            [
                binary,
                *options,
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self._ping().startswith((b"+PONG", b"-NOAUTH")):  # up (with a password)
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def _ping(self) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
            if self.ca is None:
                raw.sendall(b"PING\r\n")
                return raw.recv(64)
            context = ssl.create_default_context(cafile=str(self.ca))
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def _certificates(folder: Path) -> Path:
    """A CA, and a certificate it signed for 127.0.0.1 (server.pem, server.key); the CA's
    certificate's path."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ("-newkey", "rsa:2048", "-nodes", "-days", "2")
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test CA")
    key = key[:3]  # (a request has no validity period)
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    return folder / "ca.pem"
