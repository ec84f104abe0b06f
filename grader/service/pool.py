"""The local workers of `grader serve`: threads that claim queued submissions and grade them.

Each thread loops: claim the oldest queued submission (a transaction marks it running), grade
it in the sandbox (`engine.Grader.grade_bytes`; the work happens in the sandbox's processes,
so threads are enough), record the report (`Store.finish`, once). A kill of the server leaves the
submission `running`; the next start puts it back in the queue (`Store.requeue_running`). A
file that stopped the grader `MAX_ATTEMPTS` times in a row (say it makes the machine kill the
server) is not tried again: it gets a `crashed` report saying so, rather than being lost or
taking the service down at every restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from grader.engine import Grader, SeedPool
from grader.models import Report
from grader.problems import Problem
from grader.run import Cancelled
from grader.safe_text import json_for_log
from grader.service.store import Store, Submission

MAX_ATTEMPTS = 3
log = logging.getLogger("grader.serve")


def record(store: Store, submission_id: str, report: Report) -> bool:
    """Store a staff report as the submission's result; False when it already had one."""
    return store.finish(
        submission_id,
        report_json=json_for_log(report.model_dump_json()),
        score=report.score,
        max_score=report.max_score,
        status=report.status.value,
    )


class LocalPool:
    """`workers` threads grading what the store holds."""

    def __init__(
        self,
        store: Store,
        problems: dict[str, Problem],
        *,
        grader: Grader,
        workers: int,
        ready_seeds: int = 32,
    ) -> None:
        self.store = store
        self.problems = problems
        self.grader = grader
        self.workers = workers
        # Seeds whose reference ran while the queue was empty: an upload graded on one runs
        # only the submission (see `seed_for` and `_prepare`).
        self.seeds = SeedPool(grader, size=ready_seeds)
        # Room in the grader's memory for every ready seed's outcomes, and the ones in use.
        grader.keep = max(grader.keep, ready_seeds * len(problems) + 4 * workers)
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        # Seeds are readied only when nothing is being graded, by one worker fewer than there
        # are (one stays free for the next upload), so that readying never slows a grading.
        self._busy = 0
        self._fillers = threading.BoundedSemaphore(max(1, workers - 1))

    def start(self) -> None:
        requeued = self.store.requeue_running()
        if requeued:
            log.warning("%d grading(s) cut short by the last stop: queued again", requeued)
        for number in range(self.workers):
            thread = threading.Thread(
                target=self._loop, name=f"grader-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A submission was queued: wake a worker."""
        with self._wake:
            self._wake.notify()

    def stop(self) -> None:
        """Stop the running gradings (they go back to the queue) and the threads."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self.grader.setup.cancel()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                submission = self.store.claim(tuple(self.problems))
            except Exception:
                log.exception("the database could not be read; retrying")
                self._stop.wait(1.0)
                continue
            if submission is None:
                if self._prepare():
                    continue  # one reference run done: look at the queue again first
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            with self._wake:
                self._busy += 1
            try:
                self._grade(submission)
            except Exception:
                # Even the fallback report failed (out of file descriptors or disk, say): the
                # grading goes back to the queue, not counted against the file, and this
                # worker goes on (a dead thread would be one worker fewer until a restart).
                log.exception("grading submission %s failed; queued again", submission.id)
                with contextlib.suppress(Exception):
                    self.store.requeue(submission.id)
                self._stop.wait(1.0)
            finally:
                with self._wake:
                    self._busy -= 1

    def seed_for(self, problem_id: str) -> int:
        """The seed an upload is graded on: one made ready while idle if there is one (each
        handed out once, so no two students share a seed)."""
        return self.seeds.take(self.problems[problem_id])

    def seed_unused(self, problem_id: str, seed: int) -> None:
        """The upload `seed_for` was for was refused: the seed goes back (see SeedPool)."""
        self.seeds.give_back(self.problems[problem_id], seed)

    def _prepare(self) -> bool:
        """With the queue empty, ready one more seed of a problem short of them; True when a
        reference ran. A failure here is logged, not fatal: the upload's own grading says it."""
        if not self._fillers.acquire(blocking=False):
            return False
        try:
            return self._ready_one()
        finally:
            self._fillers.release()

    def _ready_one(self) -> bool:
        for problem in self.problems.values():
            with self._wake:
                if self._busy:
                    return False
            try:
                if self.seeds.fill(problem):
                    if self.seeds.ready(problem) == self.seeds.size:
                        log.info("%d seeds of %s ready", self.seeds.size, problem.spec.id)
                    return True
            except Cancelled:
                return False
            except Exception:
                log.exception("readying a seed of %s failed", problem.spec.id)
                self._stop.wait(5.0)
                return False
        return False

    def _grade(self, submission: Submission) -> None:
        problem = self.problems[submission.problem]
        content = self.store.content(submission.id)
        if submission.attempts > MAX_ATTEMPTS:
            error = RuntimeError(
                f"grading this file was cut short {MAX_ATTEMPTS} times (the grader stopped "
                f"or was killed while grading it); it is not tried again"
            )
            graded = self.grader.fault_bytes(
                content, problem, file_name=submission.file_name, seed=submission.seed, error=error
            )
            record(self.store, submission.id, graded.staff)
            return
        try:
            graded = self.grader.grade_bytes(
                content,
                problem,
                suffix=submission.suffix,
                file_name=submission.file_name,
                seed=submission.seed,
            )
        except Cancelled:
            self.store.requeue(submission.id)  # the service is stopping: graded after restart
            return
        if record(self.store, submission.id, graded.staff):
            log.info("graded submission %s: %s", submission.id, graded.staff.status.value)
