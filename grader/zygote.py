"""A preloaded parent for workers: jax, flax and the worker imported once, each run forked.

Started by the sandbox as `python -I -u -m grader.zygote SOCKET_FD`, trusted, with the
workers' environment. It imports everything a worker needs but never starts a JAX backend
(forking after one exists deadlocks), then serves requests on a Unix socket: each brings the
run's pipes (stdout, stderr, request, result, status) as file descriptors, and for each the
zygote forks a child that

1. starts a session of its own and, for full isolation, enters new mount, network, IPC, UTS
   and PID namespaces (what `unshare` does on the other path);
2. forks the worker, which is PID 1 of the new namespace, dies with the child
   (PR_SET_PDEATHSIG), takes the pipes as stdin (/dev/null), stdout and stderr, confines
   itself (grader/jail.py) and runs the cases (grader/worker.py);
3. waits for it and writes its exit code to the status pipe.

The zygote replies with the child's pid. It handles no student data: only file descriptors
and a small JSON header cross its socket.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
FD_COUNT = 5  # stdout, stderr, request, result, status

_libc = ctypes.CDLL(None, use_errno=True)


def preload() -> None:
    """Import what every worker needs, without starting a JAX backend."""
    import flax.nnx  # noqa: F401
    import jax
    import jax.numpy
    import numpy  # noqa: F401

    import grader.jail
    import grader.worker  # noqa: F401

    backends = getattr(getattr(getattr(jax, "_src", None), "xla_bridge", None), "_backends", {})
    if backends:
        raise SystemExit("a JAX backend started while preloading: forking would deadlock")


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[1]))
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    channel.sendall(b"ready\n")
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(channel, 4096, FD_COUNT)
        except OSError:
            return 0
        if not message:
            return 0  # the grader is gone
        if len(fds) != FD_COUNT:
            for fd in fds:
                os.close(fd)
            channel.sendall(b"error\n")
            continue
        header = json.loads(message)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                channel.close()
                _child(fds, full=bool(header["full"]), cwd=str(header["cwd"]))
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        channel.sendall(f"{pid}\n".encode())


def _child(fds: list[int], *, full: bool, cwd: str) -> None:
    stdout, stderr, request, result, status = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    if (
        full
        and _libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
        != 0
    ):
        os.write(status, f"unshare failed: {os.strerror(ctypes.get_errno())}\n".encode())
        os._exit(71)
    worker = os.fork()
    if worker == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.close(status)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (devnull, stdout, stderr):
            os.close(fd)
        os.chdir(cwd)
        from grader.worker import serve

        serve(request, result)  # ends the process
    for fd in (stdout, stderr, request, result):
        os.close(fd)
    while True:
        try:
            _, wait_status = os.waitpid(worker, 0)
            break
        except InterruptedError:
            continue
    with contextlib.suppress(OSError):
        os.write(status, f"{os.waitstatus_to_exitcode(wait_status)}\n".encode())
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
