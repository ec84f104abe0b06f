"""The worker protocol, as the trusted side receives it: a small, bounded state machine.

The worker writes one JSON object per line on a pipe of its own:

    confined | sandbox_failed          (before any student code runs)
    loaded | load_failed
    start i, outcome i                 (for each requested case, in any order, each once)
    done

Everything after `confined` comes from a process that runs student code, so every line is
hostile until checked: its length, its nesting and its shape are bounded, only the case
indices the request asked for are accepted, each once, and anything out of order ends the run
as a protocol violation (the case is `crashed`), never as a grader error. Only a
`sandbox_failed` sent before `confined`, when no student code has run yet, is the grader's
fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from grader.models import (
    CaseOutcome,
    ConfinedMessage,
    DoneMessage,
    ErrorInfo,
    LoadedMessage,
    LoadFailedMessage,
    OutcomeMessage,
    SandboxFailedMessage,
    StartMessage,
    Status,
    WorkerMessage,
)

MESSAGE_BYTES = 256 * 1024  # longest line accepted on the result channel
MAX_DEPTH = 16  # deepest nesting of objects and arrays in a message

_messages: TypeAdapter[WorkerMessage] = TypeAdapter(WorkerMessage)


class ProtocolViolation(Exception):
    """The worker sent something the protocol does not allow (a submission's doing)."""


class SandboxSetupFailed(Exception):
    """The worker could not confine itself before loading the submission (the grader's fault)."""


@dataclass(frozen=True)
class LoadFailure:
    """Why no case could run."""

    status: Status
    message: str
    error: ErrorInfo | None = None


@dataclass
class Receiver:
    """What one worker process has said so far, checked message by message."""

    requested: frozenset[int]
    sent: set[int] = field(default_factory=set)  # cases the trusted side has written so far
    trusted: bool = False  # the reference may send scales and variants; a submission may not
    confined: bool = False
    loaded: bool = False
    done: bool = False
    load_failure: LoadFailure | None = None
    outcomes: dict[int, CaseOutcome] = field(default_factory=dict)
    current: int | None = None  # case started and not finished
    peak_rss_kib: int | None = None
    x64_enabled: bool | None = None

    @classmethod
    def for_cases(cls, indices: Iterable[int], *, trusted: bool = False) -> Receiver:
        return cls(requested=frozenset(indices), trusted=trusted)

    @property
    def finished(self) -> bool:
        return self.done or self.load_failure is not None

    def feed(self, line: bytes) -> None:
        """Apply one line; raises ProtocolViolation or SandboxSetupFailed."""
        if len(line) > MESSAGE_BYTES:
            raise ProtocolViolation("an over-long message")
        if _depth(line) > MAX_DEPTH:
            raise ProtocolViolation("a message nested too deeply")
        try:
            message = _messages.validate_python(json.loads(line))
        except (ValueError, ValidationError, RecursionError, TypeError):
            raise ProtocolViolation("a malformed message") from None
        self.apply(message)

    def apply(self, message: WorkerMessage) -> None:
        if self.finished:
            raise ProtocolViolation("a message after the run had finished")
        if not self.confined:
            if isinstance(message, SandboxFailedMessage):
                raise SandboxSetupFailed(message.message)
            if not isinstance(message, ConfinedMessage):
                raise ProtocolViolation("a message before the sandbox was confirmed")
            self.confined = True
            return
        if isinstance(message, ConfinedMessage | SandboxFailedMessage):
            raise ProtocolViolation(f"a '{message.event}' message after the sandbox was set up")
        if not self.loaded:
            if isinstance(message, LoadFailedMessage):
                self.load_failure = LoadFailure(
                    Status(message.status), message.message, message.error
                )
            elif isinstance(message, LoadedMessage):
                self.loaded = True
            else:
                raise ProtocolViolation("a case before loading finished")
            return
        if isinstance(message, StartMessage):
            if self.current is not None:
                raise ProtocolViolation("a case started before the last one finished")
            if message.index not in self.requested:
                raise ProtocolViolation("a case that was not asked for")
            if message.index not in self.sent:
                raise ProtocolViolation("a case that had not been sent yet")
            if message.index in self.outcomes:
                raise ProtocolViolation("a case that had already finished")
            self.current = message.index
        elif isinstance(message, OutcomeMessage):
            outcome = message.outcome
            if outcome.index != self.current:
                raise ProtocolViolation("an outcome for a case not started")
            if not self.trusted and (outcome.scales is not None or outcome.variants is not None):
                raise ProtocolViolation("reference-only fields in an outcome")
            self.outcomes[outcome.index] = outcome
            self.current = None
        elif isinstance(message, DoneMessage):
            if self.current is not None or set(self.outcomes) != self.requested:
                raise ProtocolViolation("'done' before every case had finished")
            self.done = True
            self.peak_rss_kib = message.peak_rss_kib
            self.x64_enabled = message.x64_enabled
        else:
            raise ProtocolViolation(f"an unexpected '{message.event}' message")


def _depth(line: bytes) -> int:
    """The nesting depth of the JSON text's objects and arrays (brackets in strings skipped)."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than allowed: skip the scan
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
