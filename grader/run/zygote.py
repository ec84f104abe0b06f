"""A preloaded parent for workers: jax, flax and the worker imported once, each run forked.

Started by the runner as `python -I -u -m grader.run.zygote SOCKET_FD`, trusted, with the
workers' environment. It imports everything a worker needs but never starts a JAX backend
(forking after one exists deadlocks), then serves requests on a Unix socket: each brings the
run's pipes (stdout, stderr, request, result, status) as file descriptors, and for each the
zygote forks a child that

1. joins the run's cgroups (their `cgroup.procs` files come in the header), starts a session
   of its own and, for full isolation, enters new mount, network, IPC, UTS and PID namespaces
   (what `unshare` does on the other path);
2. becomes a child subreaper (so that the run's orphans, a double fork's grandchild say, are
   re-parented to it rather than to the zygote or the machine's init, and stay in the run's
   tree), forks the worker, which is PID 1 of the new namespace, and writes `pid N` (the
   worker's pid as the grader sees it) to the status pipe, so that the grader can kill the
   namespace's init itself: the worker may clear its parent-death signal, but it cannot
   survive that;
3. the worker takes the pipes as stdin (/dev/null), stdout and stderr, confines itself
   (grader/run/jail.py) and runs the cases (grader/run/worker.py);
4. the child reaps every process re-parented to it (their CPU time then counts in its own
   cutime/cstime, which the grader reads: grader/run/cputime.py) until the worker ends, and
   writes `exit C` to the status pipe.

The zygote replies with the child's pid. It handles no student data: only file descriptors
and a small JSON header cross its socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys

from grader.run.linux import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUTS,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    errno_text,
    libc,
    reap_until,
)

FD_COUNT = 5  # stdout, stderr, request, result, status


def preload() -> None:
    """Import what every worker needs, without starting a JAX backend."""
    import flax.nnx  # noqa: F401
    import jax
    import jax.numpy
    import numpy  # noqa: F401

    import grader.run.jail
    import grader.run.worker  # noqa: F401

    backends = getattr(getattr(getattr(jax, "_src", None), "xla_bridge", None), "_backends", {})
    if backends:
        raise SystemExit("a JAX backend started while preloading: forking would deadlock")


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[1]))
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    # A worker whose parent was killed before it could reap it is re-parented here (and so
    # reaped too), not to the machine's PID 1, which may never reap it.
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
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
                _child(
                    fds,
                    full=bool(header["full"]),
                    cwd=str(header["cwd"]),
                    cgroups=[str(path) for path in header.get("cgroups", [])],
                )
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        channel.sendall(f"{pid}\n".encode())


def _child(fds: list[int], *, full: bool, cwd: str, cgroups: list[str]) -> None:
    stdout, stderr, request, result, status = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for procs in cgroups:
        try:
            with open(procs, "w") as stream:  # noqa: PTH123
                stream.write(str(os.getpid()))
        except OSError as exc:
            os.write(status, f"error cannot join cgroup {procs}: {exc}\n".encode())
            os._exit(72)
    os.setsid()
    if full and libc.unshare(
        CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    ):
        os.write(status, f"error unshare failed: {errno_text()}\n".encode())
        os._exit(71)
    # Orphans of the run (without full isolation; with it they go to the namespace's init)
    # are re-parented here, reaped below, and so counted in this process's cutime/cstime.
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    worker = os.fork()
    if worker == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.close(status)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (devnull, stdout, stderr):
            os.close(fd)
        os.chdir(cwd)
        from grader.run.worker import serve

        serve(request, result)  # ends the process
    with contextlib.suppress(OSError):
        os.write(status, f"pid {worker}\n".encode())
    for fd in (stdout, stderr, request, result):
        os.close(fd)
    wait_status = reap_until(worker)
    with contextlib.suppress(OSError):
        os.write(status, f"exit {os.waitstatus_to_exitcode(wait_status)}\n".encode())
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
