"""uvicorn's HTTP/1.1 protocol (h11) with what it lacks against slow and idle clients.

uvicorn closes a connection idle after a response (`timeout_keep_alive`) and answers 503 beyond
`limit_concurrency` connections at once, but it has no deadline for a request's head or body
and no limit per client address: one address opening hundreds of connections and sending a
header line now and then made every other request get 503 for as long as it liked. So each
connection here, from the moment it opens (or its previous response ends):

- must send its whole request head within `head_seconds` (10 s), however it trickles;
- must then send its whole body within `body_seconds` (60 s: 1 MiB at about 18 KiB/s);
- and one address may hold at most `per_address` connections at once (64): more are answered
  503 and closed at once, before they cost anything else.

A deadline missed is answered 408 (when no response has started) and the connection closed.
Limits only ever close connections: the ASGI app sees a client that went away.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from grader.errors import UsageError

log = logging.getLogger("grader.serve")

HEAD_ENV = "GRADER_SERVE_HEADER_SECONDS"
BODY_ENV = "GRADER_SERVE_BODY_SECONDS"
DEFAULT_HEAD_SECONDS = 10.0
DEFAULT_BODY_SECONDS = 60.0
DEFAULT_PER_ADDRESS = 64


@dataclass(frozen=True)
class Limits:
    """Deadlines for a request's head and body, and connections per client address."""

    head_seconds: float = DEFAULT_HEAD_SECONDS
    body_seconds: float = DEFAULT_BODY_SECONDS
    per_address: int | None = DEFAULT_PER_ADDRESS  # None: no cap (behind a proxy)

    @classmethod
    def from_environment(cls, *, per_address: int) -> Limits:
        """The deadlines from $GRADER_SERVE_HEADER_SECONDS and $GRADER_SERVE_BODY_SECONDS (for
        tests and unusual networks), the cap as given (0: none)."""
        return cls(
            head_seconds=_seconds(HEAD_ENV, DEFAULT_HEAD_SECONDS),
            body_seconds=_seconds(BODY_ENV, DEFAULT_BODY_SECONDS),
            per_address=per_address or None,
        )


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise UsageError(f"${name} must be a number of seconds between 0 and 3600, not {text!r}")
    return value


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = (message + "\n").encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def protocol_class(limits: Limits) -> type[H11Protocol]:
    """An H11Protocol subclass enforcing `limits` (one per server: it counts its connections
    per address, on the server's one event loop)."""
    per_address: Counter[str] = Counter()
    at_cap: set[str] = set()  # addresses logged as over the cap, until they drop below it

    class GuardedH11Protocol(H11Protocol):
        _address: str | None = None
        _head_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else ""
            self._address = address
            per_address[address] += 1
            if limits.per_address is not None and per_address[address] > limits.per_address:
                if address not in at_cap:
                    at_cap.add(address)
                    log.warning(
                        "refusing connections from %s: more than %d connections at once from "
                        "one address",
                        address,
                        limits.per_address,
                    )
                transport.write(
                    _raw_response(
                        503,
                        "Service Unavailable",
                        f"too many connections from your address (at most "
                        f"{limits.per_address} at once): close some and retry",
                    )
                )
                transport.close()
                return
            self._track()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            if self._address is not None:
                per_address[self._address] -= 1
                if per_address[self._address] <= 0:
                    del per_address[self._address]
                if limits.per_address is not None and (
                    per_address[self._address] < limits.per_address
                ):
                    at_cap.discard(self._address)
                self._address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._track()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._track()

        # ---- deadlines ---------------------------------------------------------------------

        def _track(self) -> None:
            """Arm or cancel the deadlines for where the client is in its request."""
            if self.transport.is_closing():
                self._cancel_timers()
                return
            state = self.conn.their_state
            if state is h11.IDLE:  # a head is awaited (its deadline runs from the start)
                self._cancel_body()
                if self._head_timer is None:
                    self._head_timer = self.loop.call_later(
                        limits.head_seconds, self._expired, "request head", limits.head_seconds
                    )
            elif state is h11.SEND_BODY:
                self._cancel_head()
                if self._body_timer is None:
                    self._body_timer = self.loop.call_later(
                        limits.body_seconds, self._expired, "request body", limits.body_seconds
                    )
            else:  # the request is in (or the connection is over): the app's turn
                self._cancel_timers()

        def _expired(self, what: str, seconds: float) -> None:
            self._cancel_timers()
            if self.transport.is_closing():
                return
            log.info("closed a connection from %s: %s over %gs", self._address, what, seconds)
            cycle = self.cycle
            if what == "request head":  # no request of this cycle yet: nothing in flight
                answer = cycle is None or cycle.response_complete
            else:  # 408, unless the app answered already (a 401, a 413) before the body
                answer = cycle is not None and not cycle.response_started
            if answer:
                self.transport.write(
                    _raw_response(
                        408,
                        "Request Timeout",
                        f"the {what} took more than {seconds:g} seconds: send it faster",
                    )
                )
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() answers http.disconnect
                cycle.message_event.set()
            self.transport.close()

        def _cancel_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _cancel_body(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _cancel_timers(self) -> None:
            self._cancel_head()
            self._cancel_body()

    return GuardedH11Protocol


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """The options `uvicorn.run` takes for these limits."""
    return {"http": protocol_class(limits)}
