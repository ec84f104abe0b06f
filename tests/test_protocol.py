"""The worker protocol's receiving state machine, message by message (no process involved)."""

from __future__ import annotations

import json

import pytest

from grader.models import Status
from grader.run.protocol import (
    MAX_DEPTH,
    MESSAGE_BYTES,
    ProtocolViolation,
    Receiver,
    SandboxSetupFailed,
)


def line(**message: object) -> bytes:
    return json.dumps(message).encode()


CONFINED = line(event="confined")
LOADED = line(event="loaded")


def outcome(index: int, **extra: object) -> bytes:
    return line(
        event="outcome", outcome={"index": index, "kind": "returned", "values": [1.0]} | extra
    )


def running(*indices: int) -> Receiver:
    """A loaded worker that has been sent every case (the runner sends them one by one)."""
    receiver = Receiver.for_cases(indices or (0, 1))
    receiver.feed(CONFINED)
    receiver.feed(LOADED)
    receiver.sent.update(indices or (0, 1))
    return receiver


def test_a_case_not_sent_yet_cannot_be_started() -> None:
    receiver = Receiver.for_cases((0, 1))
    receiver.feed(CONFINED)
    receiver.feed(LOADED)
    receiver.sent.add(0)
    with pytest.raises(ProtocolViolation, match="not been sent yet"):
        receiver.feed(line(event="start", index=1))


def test_a_complete_run_is_accepted() -> None:
    receiver = running(0, 1)
    for index in (1, 0):
        receiver.feed(line(event="start", index=index))
        receiver.feed(outcome(index))
    receiver.feed(line(event="done", peak_rss_kib=1234, x64_enabled=True))
    assert receiver.done and receiver.finished
    assert sorted(receiver.outcomes) == [0, 1]
    assert receiver.peak_rss_kib == 1234
    assert receiver.x64_enabled is True


def test_sandbox_failed_before_confinement_is_the_graders_fault() -> None:
    receiver = Receiver.for_cases((0,))
    receiver.sent.add(0)
    with pytest.raises(SandboxSetupFailed, match="mount failed"):
        receiver.feed(line(event="sandbox_failed", message="mount failed"))


@pytest.mark.parametrize("when", ["after confined", "after loaded", "during a case"])
def test_sandbox_failed_after_confinement_is_the_submissions_doing(when: str) -> None:
    receiver = Receiver.for_cases((0,))
    receiver.sent.add(0)
    receiver.feed(CONFINED)
    if when != "after confined":
        receiver.feed(LOADED)
    if when == "during a case":
        receiver.feed(line(event="start", index=0))
    with pytest.raises(ProtocolViolation, match="sandbox_failed"):
        receiver.feed(line(event="sandbox_failed", message="::error::forged"))


def test_nothing_is_accepted_before_confinement() -> None:
    with pytest.raises(ProtocolViolation, match="before the sandbox was confirmed"):
        Receiver.for_cases((0,)).feed(LOADED)


def test_load_failure_is_recorded_once() -> None:
    receiver = Receiver.for_cases((0,))
    receiver.feed(CONFINED)
    receiver.feed(line(event="load_failed", status="syntax_error", message="bad"))
    assert receiver.load_failure is not None
    assert receiver.load_failure.status is Status.SYNTAX_ERROR
    with pytest.raises(ProtocolViolation, match="after the run had finished"):
        receiver.feed(LOADED)


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([line(event="start", index=0)], None),
        ([line(event="start", index=7)], "not asked for"),
        ([line(event="start", index=-1)], "not asked for"),
        ([line(event="start", index=0), line(event="start", index=1)], "before the last one"),
        ([line(event="start", index=0), outcome(1)], "not started"),
        ([outcome(0)], "not started"),
        ([line(event="start", index=0), outcome(0), line(event="start", index=0)], "already"),
        ([line(event="start", index=0), outcome(0), line(event="done")], "before every case"),
        ([line(event="start", index=0), outcome(0, scales=[1.0])], "reference-only"),
        ([line(event="start", index=0), outcome(0, variants={"v": [1.0]})], "reference-only"),
        ([line(event="confined")], "after the sandbox was set up"),
        ([line(event="loaded")], "loaded"),
    ],
)
def test_out_of_order_messages_are_violations(messages: list[bytes], fragment: str | None) -> None:
    receiver = running(0, 1)
    if fragment is None:  # the control: a valid prefix
        for message in messages:
            receiver.feed(message)
        assert receiver.current == 0
        return
    with pytest.raises(ProtocolViolation, match=fragment):
        for message in messages:
            receiver.feed(message)


def test_the_reference_may_send_scales_and_variants() -> None:
    receiver = Receiver.for_cases((0,), trusted=True)
    receiver.sent.add(0)
    for message in (CONFINED, LOADED, line(event="start", index=0)):
        receiver.feed(message)
    receiver.feed(outcome(0, scales=[2.0], variants={"v": [1.0], "w": None}))
    assert receiver.outcomes[0].scales == (2.0,)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 200_000, "nested too deeply"),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "nested too deeply"),
        (b"x" * (MESSAGE_BYTES + 1), "over-long"),
        (b"not json", "malformed"),
        (b'{"event": "outcome"}', "malformed"),
        (b'{"event": "nonsense"}', "malformed"),
        (b"\xff\xfe", "malformed"),
        (b'{"event": "start", "index": 1e400}', "malformed"),
    ],
)
def test_hostile_lines_are_violations_not_crashes(raw: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolViolation, match=fragment):
        running(0).feed(raw)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    receiver = running(0)
    receiver.feed(line(event="start", index=0))
    error = {"type": "ValueError", "message": "[" * 500 + "]" * 500}
    receiver.feed(line(event="outcome", outcome={"index": 0, "kind": "raised", "error": error}))
    assert receiver.outcomes[0].error is not None


@pytest.mark.parametrize(
    "error",
    [
        {"type": "E", "message": "m" * 5001},
        {
            "type": "E",
            "message": "m",
            "frames": [{"file": "f", "line": 1, "function": "g", "source": ""}] * 51,
        },
        {"type": "E" * 201, "message": "m"},
    ],
    ids=["long message", "too many frames", "long type"],
)
def test_error_texts_and_frames_are_capped(error: dict[str, object]) -> None:
    receiver = running(0)
    receiver.feed(line(event="start", index=0))
    with pytest.raises(ProtocolViolation, match="malformed"):
        receiver.feed(line(event="outcome", outcome={"index": 0, "kind": "raised", "error": error}))


def test_a_flood_of_forged_outcomes_keeps_nothing() -> None:
    receiver = running(0, 1)
    receiver.feed(line(event="start", index=0))
    receiver.feed(outcome(0))
    for index in range(1000, 1200):
        with pytest.raises(ProtocolViolation):
            receiver.feed(line(event="start", index=index))
    assert list(receiver.outcomes) == [0]


@pytest.mark.parametrize(
    "raw",
    [
        line(event="done", peak_rss_kib=10**400),
        line(event="done", peak_rss_kib=-1),
        line(event="done", x64_enabled="yes"),
        line(event="done", x64_enabled=1),
        line(event="done", x64_enabled={"on": True}),
    ],
    ids=["peak beyond any float", "negative peak", "x64 as text", "x64 as 1", "x64 as object"],
)
def test_forged_numbers_in_done_are_violations(raw: bytes) -> None:
    receiver = running(0)
    receiver.feed(line(event="start", index=0))
    receiver.feed(outcome(0))
    with pytest.raises(ProtocolViolation, match="malformed"):
        receiver.feed(raw)


@pytest.mark.parametrize("seconds", ["Infinity", "NaN", "1e300", "-1"])
def test_forged_case_times_are_violations(seconds: str) -> None:
    receiver = running(0)
    receiver.feed(line(event="start", index=0))
    raw = (
        b'{"event": "outcome", "outcome": {"index": 0, "kind": "returned", "values": [1.0], '
        b'"seconds": ' + seconds.encode() + b"}}"
    )
    with pytest.raises(ProtocolViolation, match="malformed"):
        receiver.feed(raw)
