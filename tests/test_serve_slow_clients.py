"""Slow and idle clients against a real `grader serve` (uvicorn, 127.0.0.1 only): one address
holding hundreds of half-open connections denies no one else (issue 22 item 4).

The attacker connects from 127.0.0.2 (Linux routes all of 127/8 to the loopback), the other
client from 127.0.0.1, so that they are different addresses to the server. Every loop here is
bounded in time and stops by itself; every socket is closed at the end.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Server, make_roster

ATTACKER = "127.0.0.2"
HALF_OPEN = 300  # above the server's 256 connections at once
HEAD_SECONDS = 2.0  # the deadlines, small for the test (the defaults are 10 s and 60 s)
BODY_SECONDS = 3.0
PER_ADDRESS = 20


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("GRADER_SERVE_HEADER_SECONDS", str(HEAD_SECONDS))
    monkeypatch.setenv("GRADER_SERVE_BODY_SECONDS", str(BODY_SECONDS))
    tokens = make_roster(tmp_path)
    running = Server(
        tmp_path,
        tokens,
        workers=1,
        extra=("--max-connections-per-address", str(PER_ADDRESS)),
    )
    running.start()
    yield running
    running.kill()


def _open_half(server: Server, count: int, head: bytes) -> list[socket.socket]:
    """`count` connections from the attacker's address, each having sent `head` only."""
    opened = []
    for _ in range(count):
        conn = socket.socket()
        conn.settimeout(2)
        try:
            conn.bind((ATTACKER, 0))
            conn.connect(("127.0.0.1", server.port))
            conn.sendall(head)
        except OSError:
            conn.close()
            continue
        opened.append(conn)
    return opened


def _still_open(conns: list[socket.socket], within: float) -> list[socket.socket]:
    """The connections the server has not closed (no EOF, no reset) within `within` s."""
    selector = selectors.DefaultSelector()
    for conn in conns:
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ)
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(closed) < len(conns):
        for key, _ in selector.select(timeout=0.1):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5"):
                closed.add(conn)
                selector.unregister(conn)
    selector.close()
    return [conn for conn in conns if conn not in closed]


def _timed_get(server: Server) -> tuple[int, float]:
    started = time.monotonic()
    status = server.request("GET", "/api/submissions", timeout=10).status
    return status, time.monotonic() - started


def test_one_address_with_hundreds_of_half_open_connections_denies_no_one(
    server: Server,
) -> None:
    conns = _open_half(server, HALF_OPEN, b"GET /api/submissions HTTP/1.1\r\nHost: x\r\n")
    try:
        assert len(conns) > 250, "the attacker could not even connect"
        # While the attacker holds them, another address is answered at once (401: no token),
        # not with 503.
        answers = [_timed_get(server) for _ in range(5)]
        assert all(status == 401 for status, _ in answers), answers
        assert max(seconds for _, seconds in answers) < 1.0, answers
        # The attacker keeps at most its cap, and trickling header lines does not keep them:
        # by the head deadline every one of them is closed.
        held = _still_open(conns, within=0.5)
        assert len(held) <= PER_ADDRESS, len(held)
        for conn in held:
            conn.setblocking(True)
            with contextlib.suppress(OSError):
                conn.sendall(b"X-Slow: 1\r\n")
        assert _still_open(held, within=HEAD_SECONDS + 2) == []
    finally:
        for conn in conns:
            conn.close()
    assert "connections at once from" in server.log_text()


def _answer(conn: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it is still open."""
    conn.settimeout(within)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return data


def test_a_slow_body_and_an_idle_connection_are_closed(server: Server) -> None:
    token = server.tokens["alice"]
    head = (
        f"POST /api/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    slow_body = _open_half(server, 1, head + b"--b\r\n")[0]
    idle = _open_half(server, 1, b"")[0]
    try:
        started = time.monotonic()
        answer = None
        # A byte every half second keeps no body alive past its deadline (bounded loop).
        while answer is None and time.monotonic() < started + BODY_SECONDS + 3:
            with contextlib.suppress(OSError):
                slow_body.sendall(b"x")
            answer = _answer(slow_body, within=0.5)
        took = time.monotonic() - started
        assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
        assert BODY_SECONDS - 0.5 < took < BODY_SECONDS + 2, took
        assert b"took more than" in answer
        # The connection that sent nothing was closed by the head deadline, earlier.
        idle_answer = _answer(idle, within=0.1)
        assert idle_answer is not None and idle_answer.startswith(b"HTTP/1.1 408"), idle_answer
    finally:
        slow_body.close()
        idle.close()
    # And the service still answers.
    assert _timed_get(server)[0] == 401


def test_the_cap_per_address_can_be_turned_off_behind_a_proxy() -> None:
    from grader.errors import UsageError
    from grader.service.http import Limits

    assert Limits.from_environment(per_address=0).per_address is None
    env = os.environ.copy()
    try:
        os.environ["GRADER_SERVE_HEADER_SECONDS"] = "nonsense"
        with pytest.raises(UsageError, match="GRADER_SERVE_HEADER_SECONDS"):
            Limits.from_environment(per_address=32)
    finally:
        os.environ.clear()
        os.environ.update(env)
