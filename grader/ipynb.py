"""Notebook submissions (.ipynb): which lines of a notebook run when it is graded.

Trusted side. The notebook's JSON is read here and the skeleton the grader uses is checked by
hand (never its metadata, and in linear time), and its code cells are turned into a Python file
by parsing only: nothing of the notebook runs in this process. Every step is bounded in time by
a bound in size: the code kept from a notebook, its statements, and the bytes parsed while
telling IPython's syntax from Python's (reading any notebook up to the size limit takes well
under a second).
The worker then compiles and runs that file cell by cell (as Jupyter does), so that a traceback
says `solution.ipynb, cell 4`, line 3.

What runs (the rule is also in the README and in every notebook's report, `RAN`): a notebook
carries demo code (prints, plots, training loops, calls of the function on test values,
`drive.mount(...)`), which Colab ran with the student watching but which has no place in a
grading. So of each code cell, in order, only the definitions run:

- imports, except Colab-only ones (`google.colab`) and modules the grader does not have
  (matplotlib, say, or `orbax.export` where `orbax` is installed without it: each submodule is
  looked up on its parent's path, without running the package), one by one: a notebook that
  imports them still works as long as the function does not need them;
- `def`, `class` and `jax.config.update(...)` with plain values;
- assignments (`x, y = jnp.ones(3), jnp.ones(2)`: a target is not a use);
- a try of imports (`try: from flax import nnx` / `except ImportError: !pip install flax` and
  the import again): its body only imports, its handlers only import (their magics dropped).

A definition runs code too: its decorators (each called with what it decorates), default
values, annotations, base classes (and a notebook base's `__init_subclass__`) and a class's
whole body. All that, and an assignment's value, is held to one rule: it is left out if it runs
something the notebook defines (`model = TwoLayer(...)`, `y = jax.jit(f)(x)`, `@my_decorator`,
`map(f, xs)`; `fast = jax.jit(f)` only wraps f and is kept, and calling `fast` later runs f),
calls or names `print`/`input`/`open`/..., writes to `sys.stdout`/`sys.stderr` or runs a shell
command (`os.system`, `os.popen`), reaches code by name (`globals()`, `__import__`, `getattr`,
`sys.modules`, dunder attributes, `operator.methodcaller`, and the modules that run code named in
a string or in bytes: `builtins`, `importlib`, `timeit`, `pydoc`, `pickle`, `runpy`,
`subprocess`, ... are left out as imports), or uses a name left out (a function decorated with
`@nnx.vmap(in_axes=(in_axes, None))` after `in_axes` was left out). A class whose body holds a
statement that would be left out at the top level (a loop, a call) is left out whole. So what
the report says ran is all that runs at load. What runs no code of the notebook is no call of
it: a lambda's body (it runs when the lambda is called: `build = lambda s: TwoLayer(...)` is
kept, and `build` counts as the notebook's), making an instance of a plain data class (an
`@dataclass` or NamedTuple of fields only, no methods, naming nothing of the notebook:
`CFG = Config()` is kept and `CFG.lr` may be read), and applying a decorator of the notebook
whose body only defines a wrapper and returns it (`@timed` with `@functools.wraps(fn) def
wrapper(...)`; a decorator that does anything else runs notebook code at load and is left out,
with what it decorates). An expression nested more than MAX_EXPRESSION_DEPTH levels (CPython
cannot compile it) is left out.

Everything else is left out and listed by cell and line: expressions and calls, `for`,
`while`, `if`, `with`, `try`, shell lines (`!pip install ...`), line magics (`%matplotlib
inline`, and IPython's automagic without the `%`: `pip install ...`, `cd /content`, taken for a
magic only where the cell does not parse with it as Python), help (`np.sum?`), cells run by a
cell magic other than `%%time`/`%%capture` (whose body is Python and runs in the kernel's
namespace), and a cell with a syntax error that defines nothing (a scratch line never finished:
Jupyter runs the other cells; a cell with a `def` or `class` and a syntax error is the verdict
syntax_error, as it may be the graded function's). The worker runs each cell statement by
statement, as IPython does; a kept assignment that fails there (it read a file of Colab's) is
skipped and said. A function that worked in the notebook therefore works here; one that reads a
global computed by demo code fails with a NameError naming it, and the report lists the line
that was left out.

Lines are Python's lines (ends \n, \r\n, \r), never str.splitlines()'s, which also breaks at
U+2028 and form feeds: a line split there would no longer be the line Python parsed.

This module only converts: it grades nothing and imports nothing of grading, packs or
renderers. The in-notebook check (`grader.notebook.check("graphdef_vs_state")` in a
Jupyter or Colab cell) is in notebook.py.
"""

from __future__ import annotations

import ast
import gc
import importlib.machinery
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.models import CellSpan, LeftOut, NotebookInfo, Status
from grader.run import LoadFailure
from grader.run.worker import describe_syntax_error

SUFFIX = ".ipynb"
# What a submission file may be: Python source, or a Jupyter/Colab notebook.
SUBMISSION_SUFFIXES = (".py", SUFFIX)
# Notebooks keep their cells' outputs (plots are base64 images), so they are larger than the
# code in them: the file may be this big, the code kept from it is bounded like a .py file.
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
# The code of its cells, and their statements outside functions (the top level and class
# bodies, which the rules below walk): a notebook is parsed here, in the trusted process, where
# ast.parse takes ~1.5 s per MiB (170,000 `x = 1` lines: 1.9 s). A tutorial's whole code is
# 10-40 KiB and a few hundred statements; the rules then walk each statement's expressions
# (5,000 assignments: ~0.2 s).
MAX_CODE_BYTES = 128 * 1024
MAX_STATEMENTS = 5_000
MAX_CODE_CELLS = 5000
MAX_LEFT_OUT_LISTED = 200
# An expression nested deeper than this is left out: CPython's compiler fails on a few
# thousand levels (RecursionError), honest code nests a few.
MAX_EXPRESSION_DEPTH = 200
# Lines that look like IPython syntax, put back one group at a time to see whether they were
# in a string: past this many, all are taken for IPython syntax (each try parses the cell).
MAX_MAGIC_TRIES = 20
# ... and all those tries of a notebook together parse at most this many bytes.
MAX_MAGIC_TRY_BYTES = 64 * 1024
MAX_CELLS = 20_000  # all cells, markdown included
# JSON objects and arrays (counted as `{` and `[` bytes, strings included, before json.loads):
# each costs ~60 bytes in Python, and 16 MiB of `[{},{},...]` took 467 MiB to read. A notebook
# has a few per cell and output (its images are base64, with none); past this, it is refused.
MAX_JSON_CONTAINERS = 1_000_000
_CELL_TYPES = ("code", "markdown", "raw")

RAN = (
    "Graded as a notebook: of its code cells, in order, only imports (and a try of imports), "
    "function and class definitions (with their decorators, default values and class bodies) "
    "and assignments ran, and none that calls a function or class of the notebook (but a plain "
    "dataclass or NamedTuple of settings, a decorator of the notebook that only defines a "
    "wrapper, or a lambda, whose body runs when called), calls print/input/open, writes to "
    "sys.stdout, runs a shell command (os.system), or reaches code by name (globals(), "
    "__import__, getattr, importlib, timeit, pydoc, pickle, runpy, subprocess, ...); everything "
    "else (calls, prints, loops, plots, shell commands (!), magics (%, or without it: pip "
    "install ...), cells with a syntax error that define nothing, Colab-only imports and modules "
    "not installed) was left out and is listed."
)

# Cell magics whose body is Python that the kernel runs: the magic line is dropped, the body
# kept. Any other cell magic (%%bash, %%writefile, %%html, ...) drops its whole cell.
# (Not %%timeit: IPython runs its body in a namespace of its own, so it defines nothing.)
_PYTHON_CELL_MAGICS = {"time", "capture"}
# Builtins whose call in an assignment needs a person or a file: left out.
_INTERACTIVE = {"print", "input", "open", "breakpoint", "help", "exec", "eval", "display"}
# Names that reach code by name (`globals()["f"](x)`, `__import__("builtins").print`,
# `getattr(m, "f")`): an expression using them is left out whether it calls them there or
# keeps them for later (`p = getattr`), since what they reach cannot be read from the code.
_INDIRECT = {
    "globals", "locals", "vars", "__import__", "getattr", "setattr", "delattr", "compile",
    "__builtins__", "__loader__", "__spec__", "exec", "eval",
}  # fmt: skip
# Attributes that do the same: `sys.modules["__main__"]`, `f.__globals__`, `sys._getframe()`.
_INDIRECT_ATTRIBUTES = {
    "modules", "_getframe", "f_globals", "f_locals", "f_back", "attrgetter", "methodcaller",
    "resolve_name",
}  # fmt: skip
_SAFE_DUNDERS = {"__name__", "__qualname__", "__doc__", "__version__", "__module__"}
# Modules whose import gives the same reach: left out like a module the grader lacks.
# Modules that run code named in a string or in bytes (`timeit.timeit("import submission;
# submission.train()")`, `pydoc.locate("submission.train")()`, `pickle.loads(...)`) or in
# another process (`subprocess.run(...)`), which no rule read from the code can follow.
_INDIRECT_MODULES = {
    "builtins", "__main__", "importlib", "inspect", "gc", "ctypes", "timeit", "pydoc",
    "pickle", "_pickle", "pickletools", "copyreg", "marshal", "shelve", "dill", "cloudpickle",
    "joblib", "runpy", "code", "codeop", "pdb", "bdb", "trace", "cProfile", "profile",
    "doctest", "subprocess", "multiprocessing", "concurrent", "pty", "pkgutil", "zipimport",
    "atexit",
}  # fmt: skip
# Calls that are demo code wherever they stand: output, shell commands, ending the process.
_DEMO_CALLS = {
    "sys.stdout.write", "sys.stderr.write", "sys.stdout.writelines", "sys.stderr.writelines",
    "sys.stdout.flush", "sys.stderr.flush", "sys.exit", "os.system", "os.popen",
    "os.startfile", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.abort", "os._exit",
    "exit", "quit", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename",
    "os.replace", "os.chdir", "shutil.rmtree", "shutil.move",
}  # fmt: skip
_DEMO_CALL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "sys.stdout.", "sys.stderr.")
# Transforms that wrap a function without calling it: `jax.jit(f)` passes f on; any other
# call given f (`map(f, xs)`, `functools.reduce(f, xs)`, `jax.lax.scan(f, ...)`) runs it.
_WRAPPERS = {
    "jit", "grad", "value_and_grad", "vmap", "pmap", "jacfwd", "jacrev", "hessian",
    "checkpoint", "remat", "custom_jvp", "custom_vjp", "named_call", "make_jaxpr",
    "partial", "Partial", "wraps", "cache", "lru_cache", "cached_property",
    "staticmethod", "classmethod", "property", "filter_jit", "filter_grad",
    "filter_value_and_grad", "shard_map",
}  # fmt: skip
# An assignment from a shell command or magic: `files = !ls`, `t = %timeit -o f()`.
# (One character class, so that a long line fails in linear time.)
_MAGIC_ASSIGNMENT = re.compile(r"[\w.,\s]+=\s*[!%]")
# IPython's automagic: a line magic without its `%` (`pip install -q flax`, `cd /content`), a
# name then a space and an argument that is not an operator. Taken for a magic only when the
# cell does not parse with it as Python (as every line here that looks like IPython's syntax).
_AUTOMAGIC = re.compile(
    r"\s*(?:pip|conda|mamba|cd|ls|pwd|env|set_env|time|timeit|matplotlib|load_ext|reload_ext"
    r"|autoreload|pylab|mkdir|rmdir|cat|cp|mv|rm|less|more|man|who|whos|reset|run|config"
    r"|alias|unalias|pushd|popd|dirs|bookmark|sx|system|history|precision|xmode"
    r"|tensorflow_version|pdb|debug|prun)[ \t]+(?!-=)[-\w./~'\"$]"
)
# A line that starts a definition: a cell with one and a syntax error is not graded.
_DEFINES = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)\b", re.MULTILINE)
# IPython's help: `math.sqrt?`, `??np.sum`.
_HELP = re.compile(r"\s*(?:\?{1,2}[\w.]+|[\w.]+\?{1,2})\s*$")
# Python's own line ends. (str.splitlines() also breaks at \x0b, \x0c, \x1c-\x1e, \x85,
# U+2028 and U+2029, which Python does not: lines split so would no longer be Python's lines.)
_LINE_END = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The text's lines as Python counts them, without their ends (like str.splitlines())."""
    lines = _LINE_END.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def is_notebook(name: str | Path) -> bool:
    return str(name).lower().endswith(SUFFIX)


@dataclass(frozen=True)
class Converted:
    """A notebook as the Python file that runs, and what the report says about it."""

    source: str
    cells: tuple[CellSpan, ...]
    info: NotebookInfo


@dataclass
class _Selection:
    """Statements kept and left out while walking the notebook's cells in order."""

    defined: set[str] = field(default_factory=set)  # functions and classes of the notebook
    graders: set[str] = field(default_factory=set)  # names imports of the grader itself bind
    hooked: set[str] = field(default_factory=set)  # classes whose subclassing runs their code
    left_out_names: set[str] = field(default_factory=set)  # names only demo code assigns
    plain: set[str] = field(default_factory=set)  # data classes whose call runs no notebook code
    # Decorators of the notebook whose body only defines a wrapper and returns it (`@timed`),
    # with the names its inner definitions' decorators, defaults and annotations read.
    wrappers: dict[str, set[str]] = field(default_factory=dict)
    missing: dict[tuple[str, tuple[str, ...]], str | None] = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)  # the first MAX_LEFT_OUT_LISTED
    count: int = 0  # all that was left out

    def leave_out(self, cell: int, line: int, text: str, why: str) -> None:
        first = split_lines(text.strip())[0] if text.strip() else text
        if len(self.left_out) < MAX_LEFT_OUT_LISTED:
            item = LeftOut(
                cell=cell, line=max(line, 1), text=_clip(first, 120), why=_clip(why, 300)
            )
            self.left_out.append(item)
        self.count += 1


def _clip(text: str, limit: int) -> str:
    """Text cut to a limit (names in it are the student's, of any length), lone surrogates
    spelt out (a report holds only text that can be written as UTF-8)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read(
    raw: bytes, name: str, *, validate: bool = True
) -> tuple[list[str], str | None] | LoadFailure:
    """The sources of a notebook's code cells, in order, and a note when the notebook breaks
    nbformat 4's layout somewhere that does not stop grading; or why the file is not one.

    Only the skeleton the grader uses is checked, by hand and in linear time: the format's
    version, the list of cells, each cell's type and source, a code cell's outputs and
    execution count. Metadata (tags, widgets, Colab's own) is never looked at: nbformat's
    schema check walked it, and `"tags": [0, 1, ..., {}]` made its uniqueItems check quadratic
    (a 23 KB notebook took 80 s). `validate` False skips the note."""

    def invalid(message: str) -> LoadFailure:
        return LoadFailure(Status.INVALID_NOTEBOOK, message)

    if len(raw) > MAX_NOTEBOOK_BYTES:
        return LoadFailure(
            Status.FILE_TOO_LARGE,
            f"{name} is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB, the most a "
            f"notebook may be. Clear its outputs (Edit > Clear all outputs) and save it again.",
        )
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        return LoadFailure(
            Status.FILE_TOO_LARGE,
            f"{name} holds more than {MAX_JSON_CONTAINERS:,} JSON objects and lists ({{ and [), "
            f"more than a notebook needs (its outputs or metadata, most likely). Clear its "
            f"outputs (Edit > Clear all outputs) and save it again.",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return invalid(
            f"{name} is not a notebook: byte {exc.start} is not UTF-8 text. Download it again "
            f"from Jupyter or Colab (File > Download > Download .ipynb)."
        )
    collecting = gc.isenabled()
    gc.disable()  # each list made is tracked: 1,000,000 `[1, 2]` took 0.83 s with gc, 0.19 s off
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return invalid(
            f"{name} is not a notebook: it is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}). Was it saved by hand or cut short? Download it again from "
            f"Jupyter or Colab (File > Download > Download .ipynb)."
        )
    except RecursionError:
        return invalid(
            f"{name} is not a notebook: its JSON is nested too deeply (a notebook nests a few "
            f"levels). Download it again from Jupyter or Colab (File > Download > Download .ipynb)."
        )
    except ValueError as exc:  # a number too long to convert, say
        return invalid(
            f"{name} is not a notebook: its JSON cannot be read ({_clip(str(exc), 200)})."
        )
    finally:
        if collecting:
            gc.enable()
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        major = data.get("nbformat") if isinstance(data, dict) else None
        if isinstance(major, int) and major < 4:
            return invalid(
                f"{name} is an nbformat {major} notebook (from IPython 3 or older); the grader "
                f"reads nbformat 4. Open it in Jupyter and save it: Jupyter converts it."
            )
        return invalid(
            f"{name} is not a notebook: a .ipynb file is a JSON object with a list of 'cells'."
        )
    major = data.get("nbformat")
    if major != 4 or isinstance(major, bool | float):
        shown = _clip(repr(major), 40)
        return invalid(
            f"{name} says it is an nbformat {shown} notebook; the grader reads nbformat 4 (what "
            f"Jupyter and Colab save). Open it in Jupyter and save it again."
        )
    cells: list[Any] = data["cells"]
    if len(cells) > MAX_CELLS:
        return invalid(
            f"{name} has {len(cells)} cells, more than the {MAX_CELLS} a notebook "
            f"submission may have."
        )
    problems: list[str] = []  # where the notebook breaks nbformat 4's layout, in order
    if not isinstance(data.get("nbformat_minor"), int) or isinstance(data["nbformat_minor"], bool):
        problems.append("nbformat_minor (not a whole number)")
    if not isinstance(data.get("metadata"), dict):
        problems.append("metadata (not an object)")
    sources: list[str] = []
    size = 0
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or "cell_type" not in cell:
            return invalid(f"{name}: cell {number} of the notebook is not a cell object.")
        where = f"cells/{number - 1}"
        kind = cell["cell_type"]
        if kind not in _CELL_TYPES:  # a list, say: a cell nothing can run
            problems.append(f"{where}/cell_type (not code, markdown or raw): not run")
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if kind != "code":
            if not isinstance(source, str):
                problems.append(f"{where}/source (not text)")
            continue  # markdown and raw cells are text for people
        if not isinstance(source, str):
            return invalid(f"{name}: the source of cell {number} is not text.")
        if not isinstance(cell.get("outputs"), list):
            problems.append(f"{where}/outputs (a code cell needs a list of outputs)")
        count = cell.get("execution_count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            problems.append(f"{where}/execution_count (not a whole number or null)")
        if not isinstance(cell.get("metadata", {}), dict):
            problems.append(f"{where}/metadata (not an object)")
        sources.append(source)
        size += len(source.encode(errors="replace"))
        if len(sources) > MAX_CODE_CELLS:
            return invalid(
                f"{name} has more than {MAX_CODE_CELLS} code cells, the most a notebook "
                f"submission may have."
            )
        if size > MAX_CODE_BYTES:
            return LoadFailure(
                Status.FILE_TOO_LARGE,
                f"The code cells of {name} hold more than {MAX_CODE_BYTES // 1024} KiB of code, "
                f"the most a notebook submission may hold. Delete the cells your function does "
                f"not need (old attempts, experiments, pasted data) and save it again.",
            )
    if not sources:
        return invalid(
            f"{name} has no code cells, so there is no function to grade. Write your function "
            f"in a code cell, run it, and save the notebook."
        )
    note = None
    if validate and problems:
        more = f" and {len(problems) - 1} more place(s)" if len(problems) > 1 else ""
        note = _clip(
            f"The notebook breaks nbformat 4's layout at {problems[0]}{more}; graded anyway.",
            400,
        )
    return sources, note


def convert(raw: bytes, name: str, *, validate: bool = True) -> Converted | LoadFailure:
    """A notebook file as the Python file that runs, or why it cannot be graded (`validate`:
    note where it breaks nbformat 4's layout, for the report)."""
    try:
        read_result = read(raw, name, validate=validate)
        if isinstance(read_result, LoadFailure):
            return read_result
        sources, note = read_result
        return convert_cells(sources, name, note=note)
    except (RecursionError, MemoryError) as exc:
        return LoadFailure(
            Status.INVALID_NOTEBOOK,
            f"{name} could not be read: {type(exc).__name__} (is it nested or repeated beyond "
            f"what a notebook needs?).",
        )


def convert_cells(
    sources: Sequence[str],
    name: str,
    *,
    note: str | None = None,
) -> Converted | LoadFailure:
    """Code cells (their sources, in order) as the Python file that runs; a cell that is not
    Python once its shell lines and magics are dropped is a syntax error located by cell."""
    selection = _Selection()
    chunks: list[str] = []
    spans: list[CellSpan] = []
    line = 1
    budget = _ParseBudget()
    statements = 0
    for number, source in enumerate(sources, start=1):
        label = f"{name}, cell {number}"
        python, dropped_lines, tree = _without_ipython(source, budget)
        for at, text, why in dropped_lines:
            selection.leave_out(number, at, text, why)
        try:
            if tree is None:
                tree = ast.parse(python, filename=label)
        except SyntaxError as exc:
            if _DEFINES.search(python):  # the graded function's cell, maybe: not graded
                return _syntax_failure(exc, label, number)
            # A scratch cell (`state.` never finished) that defines nothing: Jupyter runs the
            # other cells, and so does the grader, saying so.
            at = exc.lineno or 1
            lines = split_lines(python)
            text = lines[at - 1] if 0 < at <= len(lines) else ""
            selection.leave_out(
                number, at, text, f"this cell has a syntax error ({exc.msg}) and was left out"
            )
            count = len(lines)
            chunks.append("\n" * count)
            spans.append(CellSpan(cell=number, first_line=line, lines=count))
            line += count
            continue
        except (ValueError, RecursionError, MemoryError) as exc:
            why = _clip(str(exc), 200) or "it is nested too deeply or too long"
            return LoadFailure(
                Status.SYNTAX_ERROR, f"Python cannot parse {label}: {type(exc).__name__}: {why}"
            )
        statements += _statements_at_load(tree.body)
        if statements > MAX_STATEMENTS:
            return LoadFailure(
                Status.FILE_TOO_LARGE,
                f"The code cells of {name} hold more than {MAX_STATEMENTS} statements outside "
                f"functions (counted up to cell {number}), the most a notebook submission may "
                f"hold. Delete the cells your function does not need and save it again.",
            )
        kept = _kept_source(python, tree, number, selection)
        count = kept.count("\n")
        chunks.append(kept)
        spans.append(CellSpan(cell=number, first_line=line, lines=count))
        line += count
    info = NotebookInfo(
        code_cells=len(sources),
        ran=RAN,
        left_out=tuple(selection.left_out),
        left_out_count=selection.count,
        note=note,
    )
    return Converted(source="".join(chunks), cells=tuple(spans), info=info)


def _statements_at_load(body: list[ast.stmt]) -> int:
    """The statements the rules below look at: the top level's and class bodies' (a function's
    body is not looked at). `pass` is not counted: each shell line and magic becomes one."""
    count = 0
    stack = [body]
    while stack:
        for statement in stack.pop():
            if isinstance(statement, ast.Import | ast.ImportFrom):
                count += len(statement.names)  # each name is looked up: `import q, q, ...`
            elif not isinstance(statement, ast.Pass):
                count += 1
            if isinstance(statement, ast.ClassDef):
                stack.append(statement.body)
    return count


def _syntax_failure(exc: SyntaxError, label: str, cell: int) -> LoadFailure:
    return LoadFailure(Status.SYNTAX_ERROR, *describe_syntax_error(exc, label, cell))


@dataclass
class _ParseBudget:
    """Bytes a notebook's cells may still parse while telling magics from strings."""

    left: int = MAX_MAGIC_TRY_BYTES

    def spend(self, text: str) -> bool:
        """Whether `text` may be parsed once more (and take it from the budget)."""
        if len(text) > self.left:
            return False
        self.left -= len(text)
        return True


def _without_ipython(
    source: str, budget: _ParseBudget | None = None
) -> tuple[str, list[tuple[int, str, str]], ast.Module | None]:
    """The cell as Python, with IPython's own syntax (shell lines, magics) blanked out, line
    numbers kept; what was dropped, as (line, text, why); and the cell's tree when it was
    parsed as it is (plain Python), else None.

    A line that looks like a magic may be inside a string: each is put back and the cell
    parsed again, at most MAX_MAGIC_TRIES times per cell and MAX_MAGIC_TRY_BYTES parsed in all
    (`budget`, which the cell's first parse as it is also spends when it has such lines),
    after which what looks like a magic is taken for one: each try parses the whole cell, and
    a cell of 60,000 `!` lines would otherwise be parsed 60,000 times."""
    budget = budget or _ParseBudget()
    lines = split_lines(source)
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split(maxsplit=1)
        magic_name = magic[0] if magic else ""
        if magic_name not in _PYTHON_CELL_MAGICS:
            why = f"cell magic %%{magic_name}: the cell is not run"
            return "\n" * len(lines), [(first + 1, lines[first], why)], None
        dropped = [(first + 1, lines[first], f"cell magic %%{magic_name} (its Python body runs)")]
        lines[first] = ""
        python = "\n".join(lines)
    else:
        dropped, python = [], source
    original = split_lines(python)
    lines = list(original)
    candidates: list[list[int]] = []  # each: a magic's line, then its continuation lines
    for at, text in enumerate(original):
        stripped = text.lstrip()
        if candidates and candidates[-1][-1] == at - 1 and original[at - 1].rstrip().endswith("\\"):
            candidates[-1].append(at)  # a magic's continuation line
            lines[at] = ""
            continue
        if (
            stripped.startswith(("!", "%"))
            or _MAGIC_ASSIGNMENT.match(text)
            or _HELP.match(text)
            or _AUTOMAGIC.match(text)
        ):
            candidates.append([at])
            # `pass` keeps an indented block valid.
            lines[at] = f"{text[: len(text) - len(stripped)]}pass"
    # Plain Python (a `%` or `!` at a line's start is in a string) parses as it is. With lines
    # that look like magics, that parse is a try like the others below (past the budget, a
    # cell of 30,000 `x=1;` and a `!ls` is parsed once, not twice).
    if not candidates or budget.spend(python):
        tree = _parse(python)
        if tree is not None:
            return python, dropped, tree
    # A line that looks like a magic may be inside a string: put back each one whose removal
    # the cell does not need in order to parse.
    for number, group in enumerate(candidates):
        if number < MAX_MAGIC_TRIES and budget.spend(python):
            restored = list(lines)
            for at in group:
                restored[at] = original[at]
            if _parse("\n".join(restored)) is not None:
                lines = restored
                continue
        text = original[group[0]]
        shell = text.lstrip().startswith("!") or text.split("=")[-1].lstrip().startswith("!")
        kind = (
            "shell command" if shell else "IPython help" if _HELP.match(text) else "IPython magic"
        )
        dropped.append((group[0] + 1, text, f"{kind}: not run when grading"))
    return "\n".join(lines), dropped, None


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _kept_source(python: str, tree: ast.Module, cell: int, selection: _Selection) -> str:
    """The cell's text with only its kept top-level statements, each on its own lines."""
    lines = split_lines(python)
    out = [""] * len(lines)
    encoded: dict[int, bytes] = {}  # a line shared by statements after `;` is encoded once
    for statement in tree.body:
        segment = list(_segment(lines, statement, encoded))
        start = segment[0][0] + 1 if segment else statement.lineno
        if isinstance(statement, ast.Import) and len(statement.names) > 1:
            statement, segment = _import_in_part(statement, segment, cell, selection)
            if not segment:
                continue
        why = _why_left_out(statement, selection)
        if why is not None:
            if why:  # "" leaves out silently (a string used as a comment, `pass`)
                selection.leave_out(cell, start, segment[0][1] if segment else "", why)
            continue
        for at, text in segment:
            out[at] = f"{out[at]}; {text}" if out[at] else text
    return "".join(f"{text}\n" for text in out)


def _import_in_part(
    statement: ast.Import, segment: list[tuple[int, str]], cell: int, selection: _Selection
) -> tuple[ast.Import, list[tuple[int, str]]]:
    """`import jax, jax.numpy as jnp, matplotlib.pyplot as plt`: the modules the grader has
    are imported, the others left out one by one (not the whole line for one of them)."""
    kept = []
    for alias in statement.names:
        alone = ast.Import(names=[alias])
        why = _why_import_left_out(alone, selection)
        if why is None:
            kept.append(alias)
        else:
            selection.leave_out(cell, segment[0][0] + 1, f"import {alias.name}", why)
    if len(kept) == len(statement.names):
        return statement, segment
    if not kept:
        return statement, []
    rewritten = ast.Import(names=kept)
    ast.copy_location(rewritten, statement)
    text = ast.unparse(rewritten)  # one line where the statement began; its other lines blank
    return rewritten, [(segment[0][0], text), *((at, "") for at, _ in segment[1:])]


def _segment(
    lines: list[str], statement: ast.stmt, encoded: dict[int, bytes] | None = None
) -> Iterable[tuple[int, str]]:
    """The statement's own text, line by line (0-based line index, text). Columns are UTF-8
    byte offsets in ast; a statement sharing a line with others after `;` is cut out of it."""
    decorators: list[ast.expr] = getattr(statement, "decorator_list", None) or []
    start_line, start_col = statement.lineno, statement.col_offset
    if decorators:
        # ast gives the decorator's expression, not its `@` (`@ dataclass`, `@(d)`, `@\`):
        # the `@` is the first thing on the nearest line at or above it that starts with one.
        first = min(d.lineno for d in decorators)
        at = first - 1
        while at > 0 and not lines[at].lstrip().startswith("@"):
            at -= 1
        start_line, start_col = at + 1, 0
    end_line = statement.end_lineno or start_line
    end_col = statement.end_col_offset
    for at in range(start_line - 1, end_line):
        line = encoded.get(at) if encoded is not None else None
        if line is None:
            line = lines[at].encode("utf-8", "surrogatepass")
            if encoded is not None:
                encoded[at] = line
        begin = start_col if at == start_line - 1 else 0
        end = end_col if at == end_line - 1 and end_col is not None else len(line)
        text = line[begin:end].decode("utf-8", "surrogatepass")
        if at == start_line - 1:
            text = text.lstrip()
        yield at, text


def _why_left_out(statement: ast.stmt, selection: _Selection) -> str | None:
    """None to keep the statement; else why it is left out ("" to leave it out unlisted)."""
    match statement:
        case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
            why = _why_definition_left_out(statement, selection)
            selection.wrappers.pop(statement.name, None)
            if why is None and isinstance(statement, ast.FunctionDef):
                uses = _wrapper_uses(statement, selection)
                if uses is not None:
                    selection.wrappers[statement.name] = uses
            if why is None:
                selection.defined.add(statement.name)
                selection.left_out_names.discard(statement.name)
                if isinstance(statement, ast.ClassDef) and _has_hooks(statement, selection):
                    selection.hooked.add(statement.name)
            else:
                selection.left_out_names.add(statement.name)
            if (
                why is None
                and isinstance(statement, ast.ClassDef)
                and _plain_class(statement)
                and not _names([*statement.body, *statement.bases, *statement.decorator_list])
                & selection.defined
            ):
                selection.plain.add(statement.name)
            else:
                selection.plain.discard(statement.name)
            return why
        case ast.Import() | ast.ImportFrom():
            return _why_import_left_out(statement, selection)
        case ast.Assign() | ast.AnnAssign() | ast.AugAssign():
            reads: set[str] = set()
            why = _why_assignment_left_out(statement, selection, reads)
            targets = _assigned_names(statement)
            selection.plain -= targets
            for target in targets:
                selection.wrappers.pop(target, None)
            if why is None:
                selection.left_out_names -= targets
                if reads & (selection.defined - selection.plain):
                    selection.defined |= targets  # `fast = jax.jit(f)`: calling fast runs f
                else:
                    selection.defined -= targets
            else:
                selection.left_out_names |= targets
            return why
        case ast.Expr(value=ast.Constant(value=str())) | ast.Pass():
            return ""
        case ast.Try() if _guarded_imports(statement, selection) is not None:
            imports = _guarded_imports(statement, selection) or []
            for inner in imports:
                why = _why_import_left_out(inner, selection, record=False)
                if why is not None:
                    return f"a try of imports: {why}"
            for inner in imports:
                _why_import_left_out(inner, selection)  # the names it binds
            return None
        case ast.Expr(value=ast.Call(func=func, args=args, keywords=[])) if _dotted(
            func
        ) == "jax.config.update" and all(isinstance(arg, ast.Constant) for arg in args):
            return None  # jax.config.update("jax_enable_x64", True): part of the set-up
    return _why_demo(statement)


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception"}


def _guarded_imports(
    statement: ast.Try, selection: _Selection
) -> list[ast.Import | ast.ImportFrom] | None:
    """The imports of a guarded import (`try: from flax import nnx` / `except ImportError:
    !pip install flax` then the import again), which is kept: its body only imports, its
    handlers catch an ImportError and hold only imports and `pass` (what a shell line or magic
    became); else None."""
    if statement.finalbody or statement.orelse:
        return None
    imports: list[ast.Import | ast.ImportFrom] = []
    for inner in statement.body:
        if not isinstance(inner, ast.Import | ast.ImportFrom):
            return None
        imports.append(inner)
    for handler in statement.handlers:
        caught = handler.type
        kinds = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if caught is None or handler.name is not None:
            return None
        if not all(isinstance(kind, ast.Name) and kind.id in _IMPORT_ERRORS for kind in kinds):
            return None
        if any(kind.id in selection.defined for kind in kinds if isinstance(kind, ast.Name)):
            return None
        for inner in handler.body:
            if isinstance(inner, ast.Import | ast.ImportFrom):
                imports.append(inner)
            elif not isinstance(inner, ast.Pass):
                return None
    return imports


def _why_demo(statement: ast.stmt) -> str:
    match statement:
        case ast.Expr():
            return "demo code: a call or expression at the top level"
        case ast.For() | ast.AsyncFor() | ast.While():
            return "demo code: a loop at the top level"
        case ast.If():
            return "demo code: an if at the top level"
        case ast.Try() | ast.TryStar():
            return "demo code: a try at the top level"
        case ast.With() | ast.AsyncWith():
            return "demo code: a with block at the top level"
    return "not a definition: only imports, definitions and assignments run"


def _why_definition_left_out(
    statement: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, selection: _Selection
) -> str | None:
    """A `def` or `class` runs code when it runs: its decorators (each is called with what it
    decorates), default values, annotations, base classes and `metaclass=`, and a class's whole
    body. What runs there is held to the rule of an assignment's value; a class body to the
    rule of a cell. None keeps the definition."""
    for decorator in statement.decorator_list:
        wrapper = decorator.id if isinstance(decorator, ast.Name) else ""
        uses = selection.wrappers.get(wrapper)
        if uses is not None and not uses & (selection.defined | selection.left_out_names):
            continue  # `@timed`: its body only defines a wrapper (of what it is given)
        if any(isinstance(node, ast.Lambda) for node in ast.walk(decorator)):
            return "its decorator is a lambda: it would call what it decorates at load"
        # `@d` calls d with the definition: written as that call, the usual rule applies.
        why = _why_expressions_left_out([_called(decorator)], selection, bound=False)
        if why is not None:
            return f"its decorator @{_clip(ast.unparse(decorator), 60)}: {why}"
    if isinstance(statement, ast.ClassDef):
        metaclasses = [_called(k.value) for k in statement.keywords if k.arg == "metaclass"]
        others = [k.value for k in statement.keywords if k.arg != "metaclass"]
        why = _why_expressions_left_out(
            [*statement.bases, *metaclasses, *others], selection, bound=False
        )
        if why is not None:
            return f"its base classes: {why}"
        hooked = sorted(_names(statement.bases) & selection.hooked)
        if hooked:
            return f"demo code: subclassing {hooked[0]} runs its __init_subclass__"
        return _why_class_body_left_out(statement, selection)
    arguments = statement.args
    defaults = [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
    why = _why_expressions_left_out(defaults, selection, bound=False)
    if why is not None:
        return f"a default value: {why}"
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    annotations = [arg.annotation for arg in every if arg.annotation is not None]
    if statement.returns is not None:
        annotations.append(statement.returns)
    why = _why_expressions_left_out(annotations, selection, bound=False)
    if why is not None:
        return f"an annotation: {why}"
    return None


def _why_class_body_left_out(statement: ast.ClassDef, selection: _Selection) -> str | None:
    """A class body runs when the class is defined: each of its statements must be one that
    would run at the top level (the class is left out whole otherwise; a method's body is
    not run, only its decorators and defaults)."""
    for inner in statement.body:
        match inner:
            case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
                why = _why_definition_left_out(inner, selection)
            case ast.Assign() | ast.AnnAssign() | ast.AugAssign():
                why = _why_assignment_left_out(inner, selection)
            case ast.Expr(value=ast.Constant()) | ast.Pass():
                why = None  # a docstring, `...`
            case ast.Import() | ast.ImportFrom():
                why = _why_import_left_out(inner, selection, record=False)
            case _:
                why = _why_demo(inner).replace("at the top level", "in the class body")
        if why is not None:
            decorators = getattr(inner, "decorator_list", [])
            line = min([inner.lineno, *(decorator.lineno for decorator in decorators)])
            return f"in its body, line {line}: {why}"
    return None


# What a plain data class may be made with: no base, or one that adds no code of the notebook.
_PLAIN_BASES = {"NamedTuple", "typing.NamedTuple", "TypedDict", "typing.TypedDict"}
_PLAIN_DECORATORS = {"dataclass", "dataclasses.dataclass"}


def _plain_class(statement: ast.ClassDef) -> bool:
    """Whether making an instance of this (kept) class, and using it, runs no code of the
    notebook, so that `CFG = Config()` may run at load and `CFG.lr` be read: a plain
    `@dataclass` or NamedTuple of settings. Its body is only fields, none a dunder (annotations
    and values, already held to the rule of a class body, so a `field(default_factory=...)`
    that runs notebook code left the class out; and the caller checks that they name nothing of
    the notebook), no methods (no `__init__`, `__post_init__`, `__eq__`, `@property`: nothing
    that making or using the instance would call), no keywords (`metaclass=`), and a base and
    decorator of the standard library only."""
    if statement.keywords or len(statement.bases) > 1:
        return False
    if any(_dotted(base) not in _PLAIN_BASES for base in statement.bases):
        return False
    if not statement.bases and not statement.decorator_list:
        return False  # `class Model: pass` then `model = Model()`: demo code as ever
    for decorator in statement.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if _dotted(func) not in _PLAIN_DECORATORS:
            return False
    for inner in statement.body:
        match inner:
            case ast.AnnAssign() | ast.Assign() | ast.Expr(value=ast.Constant()) | ast.Pass():
                if any(name.startswith("__") for name in _assigned_names(inner)):
                    return False
            case _:
                return False
    return True


def _wrapper_uses(statement: ast.FunctionDef, selection: _Selection) -> set[str] | None:
    """When this function is a decorator that only wraps what it is given (its body defines
    functions and returns one of them or its argument, `def timed(fn): @functools.wraps(fn)
    def wrapper(*a): ...; return wrapper`), the names that applying it reads (its inner
    definitions' decorators, defaults and annotations, but its own parameters), which must
    still be none of the notebook's where it is applied; else None. Applying it then runs only
    those definitions, held to the usual rule here."""
    arguments = statement.args
    own = {
        arg.arg
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        + [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    }
    uses: set[str] = set()
    for inner in statement.body:
        match inner:
            case ast.Expr(value=ast.Constant(value=str())) | ast.Pass():
                continue
            case ast.Return(value=ast.Name(id=name)) if name in own:
                continue
            case ast.FunctionDef() | ast.AsyncFunctionDef():
                if _why_definition_left_out(inner, selection) is not None:
                    return None
                own.add(inner.name)
                every = [*inner.args.posonlyargs, *inner.args.args, *inner.args.kwonlyargs]
                every += [arg for arg in (inner.args.vararg, inner.args.kwarg) if arg]
                parts: list[ast.expr] = [
                    *inner.decorator_list,
                    *inner.args.defaults,
                    *(default for default in inner.args.kw_defaults if default is not None),
                    *(arg.annotation for arg in every if arg.annotation is not None),
                    *([inner.returns] if inner.returns is not None else []),
                ]
                uses |= _names(parts)
            case _:
                return None
    return uses - own


def _called(node: ast.expr) -> ast.Call:
    """`node(...)`: what a decorator or a metaclass does with what it is given."""
    call = ast.Call(func=node, args=[], keywords=[])
    return ast.copy_location(call, node)


def _has_hooks(statement: ast.ClassDef, selection: _Selection) -> bool:
    """Whether subclassing this class runs its code (`__init_subclass__`, its own or a base's
    of the notebook)."""
    own = {
        inner.name
        for inner in statement.body
        if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {name for inner in statement.body for name in _assigned_names(inner)}
    return "__init_subclass__" in own or bool(_names(statement.bases) & selection.hooked)


def _why_import_left_out(
    statement: ast.Import | ast.ImportFrom, selection: _Selection, *, record: bool = True
) -> str | None:
    """None to keep an import; else why it is left out. `record`: remember the names it binds
    (at the top level, not in a class body)."""
    if isinstance(statement, ast.ImportFrom):
        modules = [statement.module or ""] if statement.level == 0 else []
        names = [alias.asname or alias.name for alias in statement.names]
    else:
        modules = [alias.name for alias in statement.names]
        names = [alias.asname or alias.name.split(".")[0] for alias in statement.names]
    if not record:  # a scratch copy: a class body's names are its own
        selection = _Selection(graders=set(selection.graders), missing=selection.missing)
    why = None
    for module in modules:
        if module == "grader" or module.startswith("grader."):
            selection.graders.update(names)  # kept: but a call of it runs no check here
            continue
        if module == "__future__":
            continue
        if module == "google.colab" or module.startswith("google.colab."):
            why = "Colab-only import: not needed for grading"
            break
        if module.split(".")[0] in _INDIRECT_MODULES:
            why = f"imports {module.split('.')[0]}, which reaches code by name"
            break
        if module.split(".")[0] in sys.stdlib_module_names:
            continue
        froms = (
            [alias.name for alias in statement.names]
            if isinstance(statement, ast.ImportFrom)
            else []
        )
        key = (module, tuple(froms))
        if key not in selection.missing:  # `import q, q, q, ...`: each module looked up once
            selection.missing[key] = _missing_module(module, froms)
        missing = selection.missing[key]
        if missing is not None:
            why = f"{missing} is not installed where grading runs: your function must not need it"
            break
    if why is not None:
        selection.left_out_names.update(names)
        selection.plain.difference_update(names)
        return why
    selection.left_out_names.difference_update(names)
    selection.defined.difference_update(names)
    selection.plain.difference_update(names)
    for name in names:
        selection.wrappers.pop(name, None)
    return None


def _missing_module(module: str, froms: Sequence[str] = ()) -> str | None:
    """The first part of a dotted module path that is not installed here, or None when it is.
    Found as Python's import system would find it, without importing anything: the top-level
    package by its finders, each submodule on its parent's path (`orbax` installed does not
    make `orbax.export` so). A name imported from a namespace package (a folder without
    __init__.py, which cannot define names) must be a submodule too."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing runs
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return parts[0]
    for depth in range(1, len(parts)):
        name = ".".join(parts[: depth + 1])
        spec = _submodule(spec, name)
        if spec is None:
            return name
    if spec.submodule_search_locations is not None and spec.origin in (None, "namespace"):
        for item in froms:
            if item != "*" and _submodule(spec, f"{module}.{item}") is None:
                return f"{module}.{item}"
    return None


def _submodule(parent: importlib.machinery.ModuleSpec, name: str) -> Any:
    locations = parent.submodule_search_locations
    if not locations:
        return None
    try:
        return importlib.machinery.PathFinder.find_spec(name, list(locations))
    except (ImportError, ValueError):
        return None


def _why_assignment_left_out(
    statement: ast.stmt, selection: _Selection, reads: set[str] | None = None
) -> str | None:
    """None to keep an assignment; else why it is left out. What runs is its value, its
    annotation (`x: T = v` at the top level evaluates T) and the parts of its targets that are
    read (`d[key] = v` reads d and key). A target's own name is not a use."""
    value = getattr(statement, "value", None)
    parts: list[ast.expr] = [] if value is None else [value]
    annotation = getattr(statement, "annotation", None)
    if annotation is not None:
        parts.append(annotation)
    targets: list[ast.expr] = (
        list(statement.targets)
        if isinstance(statement, ast.Assign)
        else [statement.target]
        if isinstance(statement, ast.AnnAssign | ast.AugAssign)
        else []
    )
    value_reads: set[str] = set()
    why = _why_expressions_left_out(parts[:1], selection, value_reads)
    why = why or _why_expressions_left_out([*parts[1:], *targets], selection)
    if why is not None:
        return why
    if reads is not None:
        reads |= value_reads
    read = statement.target if isinstance(statement, ast.AugAssign) else None  # `x += 1` reads x
    if isinstance(read, ast.Name) and read.id in selection.left_out_names:
        return f"uses {read.id}, which is left out"
    stored = [target for target in targets if not isinstance(target, ast.Name | ast.Tuple)]
    if stored and value_reads & selection.defined:
        name = sorted(value_reads & selection.defined)[0]
        return f"stores {name} in an attribute or item, where the grader cannot follow it"
    return None


def _why_expressions_left_out(
    expressions: Sequence[ast.expr],
    selection: _Selection,
    reads: set[str] | None = None,
    *,
    bound: bool = True,
) -> str | None:
    """Why evaluating these expressions at load would run what a notebook's demo code runs,
    or None. Left out: calling the notebook's own functions and classes (or a name bound to
    one, `fast = jax.jit(f)`), but not passing them to a transform that only wraps them
    (`jax.jit(f)`, `functools.partial(f, 2)`); `print`/`input`/`open`/...; reaching code by
    name (`globals()`, `__import__`, `getattr`, `builtins`, `sys.modules`), whether called
    there or kept for later; the grader's own check; and reading a name that was left out.
    `reads` gets the names the expressions read. `bound`: the value may be kept under a name
    (an assignment: `show = print` is left out, `show(x)` would call print); else (a default
    value, an annotation, a base class) what reaches code by name counts only where it is called
    (`def log(x, out=print)` runs nothing at load). One walk of each expression (a notebook may
    hold 5,000 statements)."""
    for expression in expressions:
        # Per node, found top-down in the one walk: whether it is in or under a call
        # (`under`), whether it runs where it stands (`runs`: in or under a call, or the value
        # subscripted, `Model[int]`), and whether it is in the body of a lambda that is the
        # whole expression (`build = lambda: Model()`), which runs only when called later
        # (`deferred`; a lambda inside an expression may be called there: `[g() for g in
        # (lambda: f(),)]`). Each is a constant-time step from its
        # parent's: walking up from each name was quadratic (a 2,900-deep expression of
        # 62,000 names took 34 s).
        state: dict[int, tuple[bool, bool, bool]] = {id(expression): (False, False, False)}
        depth: dict[int, int] = {id(expression): 0}
        parents: dict[int, ast.AST] = {}
        notebook_names: list[ast.Name] = []
        names: set[str] = set()
        queue: list[ast.AST] = [expression]
        for node in queue:  # breadth first, as ast.walk
            under, runs, deferred = state[id(node)]
            is_call = isinstance(node, ast.Call)
            level = depth[id(node)] + 1
            if level > MAX_EXPRESSION_DEPTH:  # breadth first: reached after few nodes
                return (
                    f"nested more than {MAX_EXPRESSION_DEPTH} levels deep, more than Python "
                    f"compiles"
                )
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
                depth[id(child)] = level
                if isinstance(node, ast.Lambda) and node is expression and child is node.body:
                    state[id(child)] = (under or is_call, runs, True)
                else:
                    here = is_call or (isinstance(node, ast.Subscript) and child is node.value)
                    state[id(child)] = (under or is_call, runs or (here and not deferred), deferred)
                queue.append(child)
            if isinstance(node, ast.Call):
                callee = _dotted(node.func)
                if callee.split(".")[0] in selection.graders:
                    return "the grader's own check: not run when grading"
                if callee in _INTERACTIVE:
                    return f"demo code: calls {callee}"
                if callee in _DEMO_CALLS or callee.startswith(_DEMO_CALL_PREFIXES):
                    return f"demo code: calls {callee}"
            elif (
                isinstance(node, ast.Attribute)
                and (
                    node.attr in _INDIRECT_ATTRIBUTES
                    or (node.attr.startswith("__") and node.attr not in _SAFE_DUNDERS)
                )
                and (bound or under)
            ):
                return f"reaches code by name through .{_clip(node.attr, 40)}"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                reaches = node.id in _INDIRECT or node.id in _INTERACTIVE
                if reaches and (bound or under):
                    if node.id in _INDIRECT:
                        return f"reaches code by name through {node.id}"
                    return f"demo code: uses {node.id}"
                names.add(node.id)
                if node.id in selection.defined and state[id(node)][1]:
                    notebook_names.append(node)
        for name in notebook_names:
            if _runs(name, parents, state, selection):
                return f"demo code: runs {name.id}, defined in the notebook"
        needs = sorted(names & selection.left_out_names)
        if needs:
            return f"uses {needs[0]}, which is left out"
        if reads is not None:
            reads |= names
    return None


def _runs(
    name: ast.Name,
    parents: dict[int, ast.AST],
    state: dict[int, tuple[bool, bool, bool]],
    selection: _Selection,
) -> bool:
    """Whether a name of the notebook's code, in or under a call or subscripted, runs there:
    not when passed straight to a transform that only wraps it, itself under no call
    (`jax.jit(f)`, not `jax.jit(f)(x)` nor `map(jax.jit(f), xs)`), nor when it is a plain
    data class of the notebook called to make an instance (`Config()`, see _plain_class)."""
    parent = parents.get(id(name))
    if isinstance(parent, ast.keyword):
        parent = parents.get(id(parent))
    if not isinstance(parent, ast.Call):
        return True
    if parent.func is name:
        return name.id not in selection.plain or state[id(parent)][1]
    wraps = _dotted(parent.func).split(".")[-1] in _WRAPPERS
    return not wraps or state[id(parent)][1]


def _names(node: ast.AST | Sequence[ast.AST]) -> set[str]:
    """The names an expression reads (a target's own names are stored, not read)."""
    nodes = node if isinstance(node, Sequence) else [node]
    return {
        inner.id
        for item in nodes
        for inner in ast.walk(item)
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load)
    }


def _assigned_names(statement: ast.stmt) -> set[str]:
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    else:
        return set()
    return {
        node.id
        for target in targets
        for node in ast.walk(target)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }


def _dotted(node: ast.expr) -> str:
    """`jax.config.update` for that attribute chain; '' for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def parses_as_ipython(cell: str) -> bool:
    """Whether a cell as typed in a kernel is Python or IPython (magics, shell lines)."""
    python, _, tree = _without_ipython(cell)
    return tree is not None or _parse(python) is not None
