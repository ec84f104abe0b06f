"""Grading on other machines through a Redis queue (Dramatiq): `grader serve --queue`,
`grader worker` and `grader batch --queue`.

Why Dramatiq (the README says more): a message is acknowledged only after its actor returns,
so a worker killed mid-grading leaves it unacknowledged, and Dramatiq's Redis broker gives it
back to the queue once that worker's heartbeat is `heartbeat_timeout` old; its workers are
threads in one long-lived process (no fork per job to fight the sandbox's zygote); and a
message is plain JSON, so the job is data, never a pickled function.

Two kinds of message, both JSON:

- a job, on the queue `grader-submissions`: the submission's bytes (base64), suffix, label,
  problem id and spec version, seed, and `reply_to`, the queue its result goes to;
- a result, on `reply_to`: `started`, then `done` with the staff report (the server's own
  queue per data folder, or one per `grader batch --queue` run).

Delivery is at least once: a job may be graded twice (a worker died after sending its result
but before the acknowledgement), and a result may arrive twice. The server's `Store.finish`
keeps the first report and ignores the second, so each submission is finished exactly once.

Anyone who reaches Redis can write to it, so nothing read from it is believed unless it is
signed: every job and result travels as `{"v": 1, "kind", "body", "mac"}`, the MAC an
HMAC-SHA256 under the queue's secret (`$GRADER_QUEUE_SECRET` or the file named by
`$GRADER_QUEUE_SECRET_FILE`, the same on the server and its workers) over the kind and the
body's canonical JSON. A result also names the job it answers (`job`: a digest of the job's
id, content, seed and reply queue), and the receiver checks that against the job it sent, so a
valid result cannot be replayed onto another job, nor an old batch's result onto a new one.
Anything unsigned, mis-signed or bound to another job is dropped and logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Retries
from pydantic import Field

from grader.cases import random_seed
from grader.engine import Catalog, Grader, Setup
from grader.errors import GraderError, UsageError
from grader.grading import read_limit
from grader.ipynb import SUBMISSION_SUFFIXES
from grader.models import Frozen, Report
from grader.problems import Problem, check_problem_id
from grader.service.pool import record
from grader.service.store import Store
from grader.storage import read_regular

log = logging.getLogger("grader.serve")

JOBS = "grader-submissions"
GRADE_ACTOR = "grader_grade"
RESULT_ACTOR = "grader_result"
# A worker whose heartbeat is older than this is dead: its unacknowledged jobs go back to the
# queue. Heartbeats come every second from a live worker, whatever it is grading.
HEARTBEAT_ENV = "GRADER_QUEUE_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30.0
SECRET_ENV = "GRADER_QUEUE_SECRET"  # noqa: S105 (the variable's name)
SECRET_FILE_ENV = "GRADER_QUEUE_SECRET_FILE"  # noqa: S105
MIN_SECRET_CHARS = 32
ENVELOPE_VERSION = 1


class Job(Frozen):
    """One submission to grade, as it travels through Redis."""

    id: str = Field(description="The submission's id (or a batch's student id).")
    problem: str = Field(description="Problem id.")
    version: str = Field(description="The spec version the sender expects.")
    suffix: str = Field(description="'.py' or '.ipynb'.")
    file_name: str = Field(description="The upload's name: a label shown in the report.")
    content: str = Field(description="The file's bytes, base64.")
    seed: int = Field(description="Grading seed.")
    reply_to: str = Field(description="Queue for the result.")


class Result(Frozen):
    """What a worker sends back: that it started, then the staff report."""

    id: str = Field(description="The job's id.")
    job: str = Field(description="`job_binding` of the job answered (id, content, seed, queue).")
    kind: Literal["started", "done"] = Field(description="Started grading, or finished.")
    report: str | None = Field(None, description="The staff report as JSON, when done.")


def job_binding(job_id: str, content_sha256: str, seed: int, reply_to: str) -> str:
    """What a result is bound to: a digest of the job's id, content, seed and reply queue."""
    fields = {"id": job_id, "sha256": content_sha256, "seed": seed, "reply_to": reply_to}
    return hashlib.sha256(_canonical(fields)).hexdigest()


def binding_of(job: Job) -> str:
    content = hashlib.sha256(base64.b64decode(job.content)).hexdigest()
    return job_binding(job.id, content, job.seed, job.reply_to)


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def load_secret() -> bytes:
    """The queue's secret: $GRADER_QUEUE_SECRET, else the file $GRADER_QUEUE_SECRET_FILE names.
    UsageError saying how to make one when there is none or it is too short."""
    how = (
        f"make one with `python3 -c 'import secrets; print(secrets.token_hex(32))' > "
        f"/etc/grader/queue-secret` (readable by the grader only) and set "
        f"${SECRET_FILE_ENV}=/etc/grader/queue-secret (or ${SECRET_ENV} to the text itself) "
        f"on the server and on every worker: it signs jobs and results, so that no one else "
        f"who reaches Redis can forge them"
    )
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret and os.environ.get(SECRET_FILE_ENV):
        path = Path(os.environ[SECRET_FILE_ENV])
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the queue's secret from {path}: {exc}") from None
    if not secret:
        raise UsageError(f"the queue needs a shared secret and none is set: {how}")
    if len(secret) < MIN_SECRET_CHARS:
        raise UsageError(
            f"the queue's secret is {len(secret)} characters; use at least {MIN_SECRET_CHARS}: "
            + how
        )
    return secret.encode()


class Signer:
    """Signs and checks the queue's messages with the shared secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = secret

    def _mac(self, kind: str, body: dict[str, Any]) -> str:
        data = f"grader-queue-v{ENVELOPE_VERSION}\0{kind}\0".encode() + _canonical(body)
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def seal(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"v": ENVELOPE_VERSION, "kind": kind, "body": body, "mac": self._mac(kind, body)}

    def open(self, kind: str, payload: Any) -> dict[str, Any] | None:
        """The body, if payload is a `kind` message signed with this secret; else None."""
        if not isinstance(payload, dict):
            return None
        body, mac = payload.get("body"), payload.get("mac")
        if payload.get("v") != ENVELOPE_VERSION or payload.get("kind") != kind:
            return None
        if not isinstance(body, dict) or not isinstance(mac, str):
            return None
        try:
            expected = self._mac(kind, body)
        except (TypeError, ValueError):  # not JSON-serialisable as sent (it came as JSON)
            return None
        if not hmac.compare_digest(expected, mac):
            return None
        return body


def shown_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "(the --queue URL)"


def make_broker(url: str) -> RedisBroker:
    """A Dramatiq broker on the Redis at url; a clear error when it cannot be reached."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(
            f"--queue must be a redis://, rediss:// (TLS) or unix:// URL "
            f"(e.g. rediss://grader:PASSWORD@queue.example:6380/0), not {shown_url(url)!r}"
        )
    heartbeat = float(os.environ.get(HEARTBEAT_ENV) or DEFAULT_HEARTBEAT_SECONDS)
    # RedisBroker.__init__ has no annotations; its arguments are as documented.
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=url,
        # Retries: an exception outside grading (Redis gone while replying, the database
        # locked) makes the message come back later instead of being acknowledged and lost.
        middleware=[Retries(max_retries=10_000, min_backoff=1_000, max_backoff=30_000)],
        heartbeat_timeout=int(heartbeat * 1000),
        # Dead workers are looked for at every fetch (Dramatiq's default, 1 in 1,000 commands,
        # can leave a killed worker's job waiting many minutes on a quiet queue); the look is
        # a range query on a set of one entry per worker process.
        maintenance_chance=MAINTENANCE_SCALE,
    )
    try:
        broker.client.ping()
    except Exception as exc:
        shown = str(exc)
        with contextlib.suppress(ValueError):
            shown = shown.replace(urlsplit(url).password or "\0", "***")
        raise UsageError(f"cannot reach the queue at {shown_url(url)}: {shown}") from None
    return broker


def _send(broker: RedisBroker, queue_name: str, actor: str, payload: dict[str, Any]) -> None:
    broker.enqueue(
        dramatiq.Message(
            queue_name=queue_name, actor_name=actor, args=(payload,), kwargs={}, options={}
        )
    )


def _register(
    broker: RedisBroker, function: Callable[[dict[str, Any]], None], name: str, queue_name: str
) -> None:
    dramatiq.actor(actor_name=name, queue_name=queue_name, broker=broker)(function)


def _consumer(broker: RedisBroker, queue_name: str, threads: int) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, queues={queue_name}, worker_threads=threads)
    # Take no more jobs than can run at once: the rest stay in Redis for other machines.
    worker.queue_prefetch = threads
    return worker


# --------------------------------------------------------------------------------------------
# The server's side


class QueueSender:
    """`grader serve --queue`: sends each stored submission as a job, records the results.

    Sending is an outbox: the submission is committed first and marked sent after the job is
    in Redis, so a kill in between sends it again (a duplicate result is ignored).
    """

    def __init__(
        self,
        store: Store,
        url: str,
        problems: dict[str, Problem],
        *,
        secret: bytes | None = None,
    ) -> None:
        self.store = store
        self.url = url
        self.problems = problems
        self.signer = Signer(secret if secret is not None else load_secret())
        self.broker = make_broker(url)
        self.reply_to = "grader-results-" + store.meta("server_id", uuid.uuid4().hex)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: dramatiq.Worker | None = None

    def seed_for(self, problem_id: str) -> int:
        """A fresh seed (the workers, elsewhere, run the reference when they grade it)."""
        return random_seed()

    def seed_unused(self, problem_id: str, seed: int) -> None:
        """Nothing to give back: the seed was fresh."""

    def start(self) -> None:
        _register(self.broker, self._on_result, RESULT_ACTOR, self.reply_to)
        self.broker.declare_queue(JOBS)
        self._worker = _consumer(self.broker, self.reply_to, threads=2)
        self._worker.start()
        self._thread = threading.Thread(target=self._outbox, name="grader-outbox", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.broker.close()

    def _outbox(self) -> None:
        while not self._stop.is_set():
            try:
                for submission in self.store.unsent():
                    job = Job(
                        id=submission.id,
                        problem=submission.problem,
                        version=self.problems[submission.problem].spec.version,
                        suffix=submission.suffix,
                        file_name=submission.file_name,
                        content=base64.b64encode(self.store.content(submission.id)).decode(),
                        seed=submission.seed,
                        reply_to=self.reply_to,
                    )
                    sealed = self.signer.seal("job", job.model_dump())
                    _send(self.broker, JOBS, GRADE_ACTOR, sealed)
                    self.store.mark_sent(submission.id)
            except Exception:
                log.exception("could not send submissions to the queue; retrying")
            self._wake.wait(timeout=2.0)
            self._wake.clear()

    def _on_result(self, payload: Any) -> None:
        result = _open_result(self.signer, payload, self.reply_to)
        if result is None:
            return
        submission = self.store.get(result.id)
        if submission is None:
            log.warning("dropped a signed result for %r: no such submission here", result.id)
            return
        expected = job_binding(submission.id, submission.sha256, submission.seed, self.reply_to)
        if not hmac.compare_digest(result.job, expected):
            log.warning(
                "dropped a result for submission %s that answers another job (a replay)",
                submission.id,
            )
            return
        if result.kind == "started":
            self.store.mark_running(result.id)
            return
        if result.report is None:
            return
        report = Report.model_validate_json(result.report)
        if record(self.store, result.id, report):
            log.info("graded submission %s: %s", result.id, report.status.value)


def _open_result(signer: Signer, payload: Any, queue_name: str) -> Result | None:
    """The result, if it is signed with the queue's secret; else None, logged."""
    body = signer.open("result", payload)
    if body is None:
        log.warning(
            "dropped a message on %s that is not a result signed with this queue's secret "
            "(forged by someone who reaches Redis, or sent by a worker with another "
            "$%s)",
            queue_name,
            SECRET_ENV,
        )
        return None
    try:
        return Result.model_validate(body)
    except ValueError as exc:
        log.error("dropped a signed result that is malformed (%s)", exc)
        return None


# --------------------------------------------------------------------------------------------
# The worker's side


def run_worker(
    url: str,
    *,
    setup: Setup,
    threads: int,
    catalog: Catalog,
    stop: threading.Event,
    secret: bytes | None = None,
) -> None:
    """`grader worker`: grade jobs from the queue until `stop` is set (the queue's secret from
    the environment unless given)."""
    signer = Signer(secret if secret is not None else load_secret())
    broker = make_broker(url)
    grader = Grader(setup)
    problems: dict[str, Problem] = {}
    lock = threading.Lock()

    def problem_for(job: Job) -> Problem:
        with lock:
            if job.problem not in problems:
                problems[job.problem] = catalog.problem(job.problem)
            return problems[job.problem]

    def reply(job: Job, kind: Literal["started", "done"], report: Report | None = None) -> None:
        result = Result(
            id=job.id,
            job=binding_of(job),
            kind=kind,
            report=None if report is None else report.model_dump_json(),
        )
        _send(broker, job.reply_to, RESULT_ACTOR, signer.seal("result", result.model_dump()))

    def grade(payload: Any) -> None:
        body = signer.open("job", payload)
        if body is None:
            # Acknowledged and gone: no worker with this secret would take it either.
            log.warning(
                "dropped a job that is not signed with this queue's secret (forged by someone "
                "who reaches Redis, or sent by a server with another $%s)",
                SECRET_ENV,
            )
            return
        try:
            job = Job.model_validate(body)
            check_problem_id(job.problem)
            base64.b64decode(job.content, validate=True)
        except (ValueError, GraderError) as exc:  # (binascii.Error is a ValueError)
            log.error("dropped a signed job that is malformed: %s", exc)
            return
        reply(job, "started")
        try:
            problem = problem_for(job)
        except GraderError as exc:
            # Not this worker's job to lose: raising makes it come back (for a worker that
            # has the problem), and staff see why in this worker's log.
            log.error("cannot grade %s here: %s", job.problem, exc)
            raise
        content = base64.b64decode(job.content)
        if problem.spec.version != job.version or job.suffix not in SUBMISSION_SUFFIXES:
            error = RuntimeError(
                f"this worker has version {problem.spec.version} of {job.problem}'s spec, the "
                f"server {job.version}: give the workers the server's problems/ folder"
            )
            graded = grader.fault_bytes(
                content, problem, file_name=job.file_name, seed=job.seed, error=error
            )
        else:
            graded = grader.grade_bytes(
                content, problem, suffix=job.suffix, file_name=job.file_name, seed=job.seed
            )
        report = graded.staff
        reply(job, "done", report)
        log.info("graded %s: %s", job.id, report.status.value)

    _register(broker, grade, GRADE_ACTOR, JOBS)
    worker = _consumer(broker, JOBS, threads)
    worker.start()
    try:
        stop.wait()
    finally:
        setup.cancel()
        worker.stop()
        broker.close()


# --------------------------------------------------------------------------------------------
# A batch through the queue


class QueueGrader:
    """`grader batch --queue`: grade a batch's files on the queue's workers.

    Each file is a job with the batch's seed (every worker computes the reference's outcomes
    for that seed once and caches them); results come back on a queue of this run's own.
    """

    def __init__(self, url: str, *, secret: bytes | None = None) -> None:
        self.signer = Signer(secret if secret is not None else load_secret())
        self.broker = make_broker(url)

    def grade_all(
        self, files: Sequence[tuple[str, Path]], *, problem: Problem, seed: int
    ) -> Iterator[tuple[str, Report]]:
        """(key, staff report) for each (key, path), in the order they finish."""
        reply_to = f"grader-batch-{uuid.uuid4().hex}"
        results: queue.Queue[Result] = queue.Queue()

        def on_result(payload: Any) -> None:
            result = _open_result(self.signer, payload, reply_to)
            if result is not None:
                results.put(result)

        _register(self.broker, on_result, RESULT_ACTOR, reply_to)
        self.broker.declare_queue(JOBS)
        consumer = _consumer(self.broker, reply_to, threads=1)
        consumer.start()
        try:
            waiting: dict[str, str] = {}  # key -> the binding its result must carry
            for key, path in files:
                job = Job(
                    id=key,
                    problem=problem.spec.id,
                    version=problem.spec.version,
                    suffix=path.suffix.lower(),
                    file_name=path.name,
                    content=base64.b64encode(read_regular(path, read_limit(path.name))).decode(),
                    seed=seed,
                    reply_to=reply_to,
                )
                _send(self.broker, JOBS, GRADE_ACTOR, self.signer.seal("job", job.model_dump()))
                waiting[key] = binding_of(job)
            while waiting:
                result = results.get()
                if result.kind != "done" or result.report is None or result.id not in waiting:
                    continue  # a start, or a duplicate of a result already taken
                if not hmac.compare_digest(result.job, waiting[result.id]):
                    log.warning("dropped a result for %s that answers another job", result.id)
                    continue
                del waiting[result.id]
                yield result.id, Report.model_validate_json(result.report)
        finally:
            consumer.stop()
            self.broker.flush(reply_to)
            self.broker.close()
