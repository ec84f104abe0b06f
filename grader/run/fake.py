"""A runner that answers in-process from a Python function: for tests above the process layer.

It calls the function on each case's arguments as the worker would build them and converts
what it returns with the worker's own code, so grading, comparison, feedback and rendering see
exactly the data shapes a real run produces, in milliseconds. Never used for submissions.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from grader.models import CaseOutcome, ErrorInfo, Isolation, Limits, RunRequest, Status
from grader.run.protocol import LoadFailure
from grader.run.runner import RunLimits, RunResult


class FakeRunner:
    """Runs `function` on every case in this process, or reports `load_failure`."""

    def __init__(
        self,
        function: Callable[..., Any] | None = None,
        *,
        load_failure: LoadFailure | None = None,
        stdout: str = "",
        stderr: str = "",
        isolation: Isolation = "full",
        run_limits: RunLimits = "cgroup",
    ) -> None:
        self.function = function
        self.load_failure = load_failure
        self.stdout = stdout
        self.stderr = stderr
        self._isolation = isolation
        self.run_limits = run_limits
        self.requests: list[RunRequest] = []

    def isolation(self) -> Isolation:
        return self._isolation

    def cancel(self) -> None:
        pass  # runs are in-process and finish at once

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        self.requests.append(request)
        result = RunResult(
            stdout=self.stdout,
            stderr=self.stderr,
            isolation=self._isolation,
            run_limits=self.run_limits,
            own_uid=self._isolation == "full",  # as a real root grader with namespaces
        )
        if self.load_failure is not None or self.function is None:
            result.load_failure = self.load_failure or LoadFailure(
                status=Status.MISSING_FUNCTION,
                message=f"no function named {request.function!r}",
            )
            return result
        # Imported here: importing the worker module with the package would make
        # `python -m grader.run.worker` warn that it was already imported.
        from grader.run.worker import build_args, error_info, to_numbers

        for case in request.cases:
            try:
                values, problem = to_numbers(self.function(*build_args(case)), request.output_count)
            except Exception as exc:
                error = error_info(exc, request.display_name)
                outcome = CaseOutcome(index=case.index, kind="raised", error=error)
            else:
                if values is None:
                    outcome = CaseOutcome(index=case.index, kind="invalid", problem=problem)
                else:
                    outcome = CaseOutcome(index=case.index, kind="returned", values=tuple(values))
            result.outcomes[case.index] = outcome
        return result


class InProcessRunner:
    """Runs the file a request names in this process, with the worker's own loading and case
    code: the same load failures, outcomes, scales and variants a sandboxed worker reports,
    without starting a process. For tests above the process layer, on files the test suite
    wrote (never a submission: nothing here is contained). Runs one at a time."""

    _lock = threading.Lock()

    def __init__(self, *, isolation: Isolation = "full", run_limits: RunLimits = "cgroup") -> None:
        self._isolation = isolation
        self.run_limits = run_limits
        self.requests: list[RunRequest] = []

    def isolation(self) -> Isolation:
        return self._isolation

    def cancel(self) -> None:
        pass  # runs are in-process and finish at once

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        from grader.run import worker  # see FakeRunner.run

        self.requests.append(request)
        channel = _Collected()
        out, err = io.StringIO(), io.StringIO()
        with self._lock, _this_thread_writes_to(out, err):
            saved = sys.modules.get("submission")
            x64 = _x64()
            try:
                function, scale = worker.load(request, channel)  # type: ignore[arg-type]
                if function is not None:
                    worker.run_cases(request, function, scale, channel, request.cases)  # type: ignore[arg-type]
            finally:
                if saved is None:
                    sys.modules.pop("submission", None)
                else:
                    sys.modules["submission"] = saved
                if x64 is not None and _x64() != x64:
                    # A file that turned x64 on (as a sandboxed worker would, for itself alone)
                    # must not change every later JAX computation of this process.
                    result_x64 = _x64()
                    sys.modules["jax"].config.update("jax_enable_x64", x64)
                    x64_claim = result_x64
                else:
                    x64_claim = _x64()
        result = RunResult(
            stdout=out.getvalue(),
            stderr=err.getvalue(),
            isolation=self._isolation,
            run_limits=self.run_limits,
            own_uid=self._isolation == "full",
            x64_enabled=x64_claim,
        )
        for message in channel.messages:
            if message["event"] == "load_failed":
                error = message["error"]
                result.load_failure = LoadFailure(
                    Status(message["status"]),
                    message["message"],
                    ErrorInfo.model_validate(error) if error else None,
                )
            elif message["event"] == "outcome":
                outcome = CaseOutcome.model_validate(message["outcome"])
                result.outcomes[outcome.index] = outcome
        return result


@contextlib.contextmanager
def _this_thread_writes_to(out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    """sys.stdout and sys.stderr captured for this thread only: another thread printing
    meanwhile (a batch's progress lines) still reaches the real streams, not the file's."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PerThread(saved[0], out), _PerThread(saved[1], err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class _PerThread(io.TextIOBase):
    def __init__(self, original: Any, captured: io.StringIO) -> None:
        self._original = original
        self._captured = captured
        self._thread = threading.get_ident()

    def _target(self) -> Any:
        return self._captured if threading.get_ident() == self._thread else self._original

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _x64() -> bool | None:
    """jax_enable_x64 in this process (None if jax was never imported)."""
    jax = sys.modules.get("jax")
    return None if jax is None else bool(jax.config.jax_enable_x64)


class _Collected:
    """The worker's channel, kept in a list instead of written to a pipe."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        # Through JSON, as the pipe would carry it (tuples become lists, floats stay exact).
        self.messages.append(json.loads(json.dumps(message)))
