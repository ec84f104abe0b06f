"""The untrusted side: load one file, call its function on the cases, write plain data back.

Started by the runner as `python -I -u -m grader.run.worker REQUEST_FD RESULT_FD`, or forked
from the preloaded zygote (grader/run/zygote.py), in a process of its own. It reads a
`RunRequest` (JSON) from REQUEST_FD, confines itself and says `confined` (or
`sandbox_failed`), then writes one JSON object per line to RESULT_FD: `loaded` or
`load_failed`, then `start` and `outcome` for every case, then `done` (see protocol.py).
The submission's own prints go to stdout and stderr, which the trusted side keeps only as text
to show; nothing printed there can change a grade.

Everything here runs next to student code, which can patch or bypass any of it. That is why the
trusted side re-checks every message and computes the score itself: the worst a submission can
do through this channel is claim outputs, which are then compared with the reference's.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import difflib
import importlib.util
import inspect
import json
import linecache
import os
import resource
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from grader.models import ArrayArg, Case, ErrorInfo, Frame, RunRequest, ScalarArg

MESSAGE_LIMIT = 2000  # characters of an exception message kept
# Compiler flags of the `from __future__` features, carried from one notebook cell to the next.
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag
FRAME_LIMIT = 20  # traceback frames kept (the innermost ones)

_write = os.write  # bound before student code runs, so patching os.write does not reach us
# Names of Python's own exceptions: a submission's class of the same name is reported with its
# module, so that `class MemoryError(Exception)` cannot pass for running out of memory.
_BUILTIN_EXCEPTIONS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


class Channel:
    """Newline-delimited JSON to the trusted side."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, allow_nan=True) + "\n").encode()
        while data:
            written = _write(self.fd, data)
            data = data[written:]


def main(argv: list[str]) -> int:
    serve(int(argv[1]), int(argv[2]), reaper=True)
    return 0


def serve(request_fd: int, result_fd: int, *, reaper: bool = False) -> None:
    """Read the request, confine this process, run the cases; ends the process.

    The request's first line holds everything but the cases. The cases follow one line at a
    time: the trusted side writes the first once the file has loaded, and each next one only
    after the outcome of the last, so that while the submission runs it holds no input of a
    case it has not been given yet (what it says about a visible case, run first, cannot
    carry a hidden case's inputs). The end of the stream ends the run.

    `reaper`: started as a fresh interpreter, which no subreaper of the grader's watches over:
    without full isolation, fork first and stay behind as one (see `_stay_as_reaper`).
    """
    stream = os.fdopen(request_fd, "rb")
    request = RunRequest.model_validate_json(stream.readline())
    confinement = request.confinement
    if reaper and confinement is not None and confinement.isolation != "full":
        _stay_as_reaper(result_fd)  # returns in the child only
    channel = Channel(result_fd)
    if request.confinement is not None:
        from grader.run.jail import JailError, confine

        try:
            path = confine(request.confinement, request.path)
        except (JailError, OSError) as exc:
            channel.send({"event": "sandbox_failed", "message": str(exc)})
            os._exit(0)
        request = request.model_copy(update={"path": path})
    # The last message the trusted side accepts as the grader's own: student code runs next.
    channel.send({"event": "confined"})
    function, scale_function = load(request, channel)
    if function is not None:
        run_cases(request, function, scale_function, channel, streamed_cases(stream))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        channel.send({"event": "done", "peak_rss_kib": peak, "x64_enabled": x64_enabled()})
    # Do not wait for threads the submission may have left running: the answer is complete.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _stay_as_reaper(result_fd: int) -> None:
    """Fork; the child returns to run the submission, this process stays trusted.

    It is a child subreaper, as the zygote's per-run child is (grader/run/zygote.py): the
    run's orphans are re-parented to it and reaped by it, so their CPU time stays in the tree
    the grader measures (cutime/cstime), and it ends as its child ended (the same exit code or
    signal), so the grader's view of the run is unchanged. Nothing of the submission runs here.
    """
    import signal

    from grader.run.linux import PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, libc, reap_until

    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(70)  # the reaper was killed before the parent-death signal was set
        return
    # Only the child writes to the grader: its pipes close when it ends.
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.close(result_fd)
    status = reap_until(child)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:  # end by the same signal (SIGKILL's action cannot be set, nor need be)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if number not in {signal.SIGKILL, signal.SIGSTOP}:
                signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
            os.kill(os.getpid(), number)
        finally:
            os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)


def load(
    request: RunRequest, channel: Channel
) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """Compile and import the file, find the function and check its parameters."""

    def fail(status: str, message: str, error: ErrorInfo | None = None) -> tuple[None, None]:
        channel.send(
            {
                "event": "load_failed",
                "status": status,
                "message": message,
                "error": error.model_dump() if error else None,
            }
        )
        return None, None

    with open(request.path, "rb") as stream:  # noqa: PTH123  (os-level file, no pathlib import)
        raw = stream.read()
    source = importlib.util.decode_source(raw)
    name = request.display_name
    # A notebook runs cell by cell, as Jupyter runs it, each compiled under its own name
    # ("solution.ipynb, cell 4") so that tracebacks and line numbers are the cell's.
    pieces = [(name, source)]
    if request.cells:
        # The trusted side ended every line with "\n" (and only lines: a U+2028 in a string
        # is not a line end, which str.splitlines() would take for one).
        lines = [line + "\n" for line in source.split("\n")]
        pieces = [
            (cell_name(name, span.cell), "".join(lines[span.first_line - 1 :][: span.lines]))
            for span in request.cells
        ]
    units: list[tuple[types.CodeType, bool]] = []  # (code, whether a failure is tolerated)
    future_flags = 0  # `from __future__ import annotations` in one cell holds in the next
    for piece_name, piece in pieces:
        linecache.cache[piece_name] = (len(piece), None, piece.splitlines(True), piece_name)
        try:
            if not request.cells:
                units.append((compile(piece, piece_name, "exec", dont_inherit=True), False))
                continue
            # Statement by statement, as IPython does: a top-level assignment that fails here
            # (a file of Colab's, say) is skipped, not the end of loading.
            for statement in ast.parse(piece, piece_name).body:
                tree = ast.Module(body=[statement], type_ignores=[])
                code = compile(tree, piece_name, "exec", flags=future_flags, dont_inherit=True)
                future_flags |= code.co_flags & _FUTURE_FLAGS
                tolerated = isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign)
                units.append((code, tolerated))
        except SyntaxError as exc:
            cell = cell_of(piece_name, name)
            return fail("syntax_error", *describe_syntax_error(exc, piece_name, cell))
        except (ValueError, RecursionError, MemoryError) as exc:
            return fail("syntax_error", f"Python cannot compile {piece_name}: {exc}")

    module = types.ModuleType("submission")
    module.__file__ = name
    sys.modules["submission"] = module
    try:
        for code, tolerated in units:
            try:
                exec(code, module.__dict__)  # noqa: S102  (this is the untrusted process)
            except Exception as exc:
                if not tolerated:
                    raise
                error = described(exc, name)
                print(
                    f"[grader] {code.co_filename}, line {error.line or code.co_firstlineno}: "
                    f"this assignment raised {error.type} while the notebook was loaded and "
                    f"was skipped ({error.message[:200]})"
                )
    except ImportError as exc:
        error = error_info(exc, name)
        missing = exc.name or str(exc)
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            message = (
                f"{name} imports {missing!r}, which is not installed where the grader runs. "
                f"Use only the course's libraries (jax, flax, numpy)."
            )
        else:
            message = f"An import in {name} failed: {exc}"
        return fail("import_error", where_line(message, error), error)
    except SystemExit as exc:
        error = error_info(exc, name)
        message = (
            f"{name} called exit({exc.code!r}) while being loaded. Code at the top level of "
            f"the file runs when it is imported: keep it inside functions."
        )
        return fail("import_error", where_line(message, error), error)
    except BaseException as exc:
        error = error_info(exc, name)
        message = f"{name} raised {type(exc).__name__} while being loaded: {error.message}"
        return fail("import_error", where_line(message, error), error)

    function = module.__dict__.get(request.function)
    if function is None:
        # What the file itself defines (not what it imported), so the student sees the typo.
        defined = [
            key
            for key, value in module.__dict__.items()
            if isinstance(value, types.FunctionType) and value.__module__ == "submission"
        ]
        close = difflib.get_close_matches(request.function, defined, n=1)
        hint = f" Did you mean to call yours {close[0]!r}?" if close else ""
        listed = ", ".join(defined[:10]) + (", ..." if len(defined) > 10 else "")
        found = f" It defines: {listed}." if defined else " It defines no function at all."
        return fail(
            "missing_function",
            f"{name} does not define a function named {request.function!r}.{hint}{found}",
        )
    if not callable(function):
        return fail(
            "missing_function",
            f"{request.function!r} in {name} is a {type(function).__name__}, not a function.",
        )
    wanted = ", ".join(request.parameter_names)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(*request.parameter_names)
        except TypeError:
            return fail(
                "bad_signature",
                f"{request.function}{signature} cannot be called with the "
                f"{len(request.parameter_names)} arguments ({wanted}) the exercise passes. "
                f"Define it as def {request.function}({wanted}):",
            )

    scale_function = None
    if request.scale_function:
        scale_function = module.__dict__[request.scale_function]
    channel.send({"event": "loaded"})
    return function, scale_function


def describe_syntax_error(
    exc: SyntaxError, name: str, cell: int | None = None
) -> tuple[str, ErrorInfo]:
    """A syntax error as a student reads it: where, what, and the offending line (`name` is
    the file, or a notebook's cell: `solution.ipynb, cell 4`)."""
    line = exc.lineno or 0
    where = f"line {line}" + (f", column {exc.offset}" if exc.offset else "")
    text = (exc.text or "").rstrip()
    shown = f"\n    {text.strip()}" if text.strip() else ""
    error = ErrorInfo(
        type=type(exc).__name__,
        message=clean(str(exc.msg), MESSAGE_LIMIT),
        line=line or None,
        cell=cell,
    )
    return f"Python cannot parse {name}, {where}: {exc.msg}{shown}", error


def streamed_cases(stream: BinaryIO) -> Iterator[Case]:
    """The cases the trusted side sends, one per line, until it closes the stream."""
    while line := stream.readline():
        yield Case.model_validate_json(line)


def run_cases(
    request: RunRequest,
    function: Callable[..., Any],
    scale_function: Callable[..., Any] | None,
    channel: Channel,
    cases: Iterable[Case],
) -> None:
    """Call the function on every case and report what each call produced."""
    count = request.output_count
    module = sys.modules["submission"].__dict__
    variants = {name: module[name] for name in request.variant_functions}
    for case in cases:
        channel.send({"event": "start", "index": case.index})
        outcome: dict[str, Any] = {"index": case.index}
        started = time.perf_counter()
        try:
            result = function(*build_args(case))
            values, problem = to_numbers(result, count)
        except BaseException as exc:
            outcome.update(kind="raised", error=described(exc, request.display_name).model_dump())
        else:
            if values is None:
                outcome.update(kind="invalid", problem=problem)
            else:
                outcome.update(kind="returned", values=values)
        outcome["seconds"] = time.perf_counter() - started
        if scale_function is not None and outcome["kind"] == "returned":
            scales, problem = to_numbers(scale_function(*build_args(case)), count)
            if scales is None:
                raise RuntimeError(f"scale function returned an invalid value: {problem}")
            outcome["scales"] = scales
        if variants:
            outcome["variants"] = {
                name: run_variant(variant, case, count) for name, variant in variants.items()
            }
        channel.send({"event": "outcome", "outcome": outcome})


def x64_enabled() -> bool | None:
    """Whether the submission left jax_enable_x64 on (None if jax was never imported)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    try:
        return bool(jax.config.jax_enable_x64)
    except Exception:
        return None


def run_variant(variant: Callable[..., Any], case: Case, count: int) -> list[float] | None:
    """A mistaken variant's outputs on a case (reference only), None if it fails."""
    try:
        values, _ = to_numbers(variant(*build_args(case)), count)
    except Exception:
        return None
    return values


def build_args(case: Case) -> list[Any]:
    """The case's arguments as the function receives them (fresh objects every call)."""
    args: list[Any] = []
    for arg in case.args:
        if isinstance(arg, ScalarArg):
            args.append(int(arg.value) if arg.kind == "int" else float(arg.value))
        elif isinstance(arg, ArrayArg):
            args.append(build_array(arg))
    return args


def build_array(arg: ArrayArg) -> Any:
    if arg.kind == "list":
        return list(arg.values)
    import numpy as np

    array = np.asarray(arg.values, dtype=arg.dtype)
    if arg.kind == "numpy":
        return array
    import jax.numpy as jnp

    return jnp.asarray(array)


def to_numbers(value: Any, count: int) -> tuple[list[float] | None, str | None]:
    """Exactly `count` floats from an array-like, or why not. Finiteness is checked later."""
    expected = f"a list, tuple or 1-D array of {count} numbers"
    if value is None:
        return None, f"returned None; return {expected}"
    if isinstance(value, str | bytes):
        return None, f"returned a {type(value).__name__} ({short(repr(value))}); return {expected}"
    if isinstance(value, dict):
        return None, f"returned a dict; return {expected}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        try:
            dims = tuple(int(d) for d in shape)
        except Exception:
            kind = type(value).__name__
            return None, f"returned a {kind} with an unusable shape; return {expected}"
        if dims != (count,):
            return None, f"returned an array of shape {dims}; expected shape ({count},)"
    elif isinstance(value, list | tuple):
        if len(value) != count:
            kind = type(value).__name__
            return None, f"returned a {kind} of {len(value)} items; expected {count}"
    else:
        return None, f"returned a {type(value).__name__}; return {expected}"
    try:
        import numpy as np

        array = np.asarray(value)
        if array.dtype.kind == "c":
            return None, "returned complex numbers; the outputs are real numbers"
        if array.shape != (count,):
            return None, f"returned items that form an array of shape {array.shape}, not ({count},)"
        numbers = [float(item) for item in array]
    except Exception as exc:
        why = short(str(exc))
        return None, f"returned {expected[2:]}, but they could not be read as numbers: {why}"
    return numbers, None


def error_info(exc: BaseException, display_name: str) -> ErrorInfo:
    """The exception with the submission's own frames (outermost first), then the innermost
    library frame, where the exception was raised; library paths shortened to the package
    (`.../flax/nnx/rnglib.py`), so no path of the grading machine is shown."""
    summary = traceback.extract_tb(exc.__traceback__)
    kind = type(exc)
    name = kind.__name__
    if name in _BUILTIN_EXCEPTIONS and _BUILTIN_EXCEPTIONS[name] is not kind:
        name = f"{kind.__module__}.{name}"

    def own(filename: str) -> bool:
        return filename == display_name or filename.startswith(cell_name(display_name, ""))

    first = next((i for i, f in enumerate(summary) if own(f.filename)), len(summary))
    chosen = [frame for frame in summary[first:] if own(frame.filename)]
    chosen = chosen[-(FRAME_LIMIT - 1) :]
    if summary[first:] and not own(summary[-1].filename):
        chosen.append(summary[-1])
    frames = [
        Frame(
            file=clean(
                frame.filename if own(frame.filename) else short_library_path(frame.filename),
                1000,
            ),
            line=frame.lineno or 0,
            function=clean(frame.name, 1000),
            source=clean((frame.line or "").strip(), 1000),
        )
        for frame in chosen
    ]
    student_frames = [f for f in frames if own(f.file)]
    try:
        message = str(exc)
    except Exception:
        message = "<the exception's message could not be shown>"
    last = student_frames[-1] if student_frames else None
    return ErrorInfo(
        type=clean(name, 200),
        message=clean(message, MESSAGE_LIMIT),
        frames=tuple(frames),
        line=last.line if last else None,
        cell=cell_of(last.file, display_name) if last else None,
    )


def cell_name(display_name: str, cell: int | str) -> str:
    """The name a notebook's cell is compiled under: `solution.ipynb, cell 4`."""
    return f"{display_name}, cell {cell}"


def cell_of(filename: str, display_name: str) -> int | None:
    prefix = cell_name(display_name, "")
    number = filename[len(prefix) :] if filename.startswith(prefix) else ""
    digits = number.isascii() and number.isdigit() and 0 < len(number) < 7
    return int(number) if digits and int(number) > 0 else None


def short_library_path(path: str) -> str:
    """A library file's path from its package on (`.../flax/nnx/rnglib.py`), or from the
    standard library's folder; other paths by their file name only."""
    if path.startswith("<"):
        return path  # <frozen importlib._bootstrap>, <string>: no path at all
    parts = path.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            at = len(parts) - 1 - parts[::-1].index(marker)
            return ".../" + "/".join(parts[at + 1 :])
    for at in range(len(parts) - 1, -1, -1):
        if parts[at].startswith("python3"):
            return ".../" + "/".join(parts[at + 1 :])
    return ".../" + parts[-1]


def described(exc: BaseException, display_name: str) -> ErrorInfo:
    """error_info, or a plain description when the exception defeats even that."""
    try:
        return error_info(exc, display_name)
    except Exception:
        return ErrorInfo(type="Exception", message="<the exception could not be described>")


def where_line(message: str, error: ErrorInfo) -> str:
    return f"{message} ({error.location})" if error.location else message


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clean(text: str, limit: int) -> str:
    """Text the channel can carry: lone surrogates written as escapes, then shortened."""
    return short(text.encode("utf-8", "backslashreplace").decode("utf-8"), limit)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
