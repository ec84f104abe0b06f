"""The grader's caches: JAX's compiled programs, and the reference's outcomes.

Both live under one folder ($GRADER_CACHE_DIR, else $XDG_CACHE_HOME/grader, else
~/.cache/grader), in sub-folders keyed by the versions that produced them, so an upgrade
never reads a stale entry. Only trusted processes (the grader, the reference) write here;
fully isolated submissions see the compilation cache read-only, as another user.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from pathlib import Path

from grader.errors import UsageError

CACHE_ENV = "GRADER_CACHE_DIR"
MAX_COMPILATION_CACHE_BYTES = 1024**3


def cache_root() -> Path:
    """The grader's cache folder (not created)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "grader"


def library_versions() -> str:
    """jax, jaxlib and flax versions, as part of cache keys."""
    parts = []
    for name in ("jax", "jaxlib", "flax"):
        try:
            parts.append(f"{name}-{importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name}-none")
    return "_".join(parts)


def compilation_cache_dir() -> Path:
    """JAX's persistent compilation cache for these library versions, created if missing.

    Readable by everyone (isolated submissions load programs from it) and writable only by
    the grader's user, so a submission cannot plant a program the reference would then run.
    """
    return _prepared(cache_root() / f"jax-{library_versions()}")


@functools.cache
def _prepared(folder: Path) -> Path:
    """Create and prune a cache folder once per process, not once per submission."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # the jail binds this folder itself: its parents may stay private
    except OSError as exc:
        raise UsageError(
            f"the grader cannot create its cache folder {folder} ({exc.strerror}). Point "
            f"{CACHE_ENV} at a folder you can write, for example "
            f"`export {CACHE_ENV}=/tmp/grader-cache-$USER`."
        ) from None
    prune(folder, MAX_COMPILATION_CACHE_BYTES)
    return folder


def prune(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used files until the folder fits in max_bytes."""
    entries = []
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                entries.append((stat.st_atime, stat.st_size, path))
        except FileNotFoundError:
            continue  # removed by a concurrent writer
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            return
        path.unlink(missing_ok=True)
        total -= size


def digest(*parts: str | bytes) -> str:
    """A short stable key for cache entries."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:32]
