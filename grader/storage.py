"""Reading submissions safely, and writing files so that no reader sees half of one."""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from pathlib import Path

from grader.errors import SubmissionNotFound

_KINDS = {
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
    stat.S_ISDIR: "a folder",
}


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file (symlinks followed); anything else is refused.

    A FIFO would block forever and /dev/zero would never end: the file is opened without
    blocking, checked with fstat on the open descriptor (so it cannot be swapped after the
    check), and read up to the limit only.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise SubmissionNotFound(f"{path} does not exist: check the path and try again") from None
    except OSError as exc:
        raise SubmissionNotFound(f"cannot read {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS.items() if test(mode)), "not a file")
            raise SubmissionNotFound(
                f"{path} is {kind}, not a regular file: give the path of a saved .py file"
            )
        os.set_blocking(fd, True)
        chunks = []
        left = limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@functools.cache
def _umask() -> int:
    """The process's umask (read once: reading it means setting it, which is not atomic)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace a file's content all at once (write a temporary file, then rename it): text
    as UTF-8, bytes as they are. `private`: readable by its owner only, from the start (for
    secrets); else what any new file would get under the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short fixed prefix: the name itself may be near the 255-byte limit of a file name.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        # mkstemp makes 0600 files; outputs get what any new file would (0644 under the usual
        # umask), so a TA's account can read a gradebook written by a batch run as root.
        if not private:
            os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
