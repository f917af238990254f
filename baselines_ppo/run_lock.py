"""One training job per run directory: an exclusive lock on ``run_dir/.lock``.

Why: resuming tidies the run directory (``checkpoint.clean_abandoned`` deletes
``.tmp-*`` save directories and moves checkpoints newer than the resume point
aside, the logger trims progress.csv and TensorBoard events). Run against the directory of a LIVE
job, that would delete the job's saves in progress, and both jobs would then
write the same files. The trainer's rank 0 therefore holds this lock for the
whole training, taken before any cleaning or checkpoint lookup.

Why ``flock``: the kernel drops the lock when the holding process exits, however
it exits (kill -9, MPI_Abort, a crash), so a stale lock file never blocks a
resume and needs no removal. The file itself stays; it is never deleted (a
deleted lock file would let two processes each lock a different inode). The
holder writes its pid, host and start time into the file for the error message.
A lock is held per open file: two ``RunLock`` objects of ONE process exclude each
other too. Over NFS, Linux emulates ``flock`` with POSIX byte-range locks, which
the server arbitrates across hosts.

No MPI, no TensorFlow: ``l2run train`` checks the lock before starting mpirun.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import fcntl
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Optional

LOCK_FILE = ".lock"


class RunDirBusy(RuntimeError):
    """Another process (a live training job) holds the run directory's lock."""


class RunDirUnwritable(OSError):
    """The run directory (or its lock file) cannot be created or written."""


def lock_path(run_dir) -> Path:
    return Path(run_dir) / LOCK_FILE


class RunLock:
    """The exclusive, non-blocking lock of one run directory.

        with RunLock(run_dir):   # RunDirBusy if another job holds it
            ...train...
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = lock_path(run_dir)
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        """Take the lock (creating run_dir if needed) or raise RunDirBusy naming the holder."""
        if self._fd is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._fd = _lock_or_raise(self.run_dir)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, _holder_line(os.getpid(), socket.gethostname()).encode())
        return self

    def release(self) -> None:
        """Drop the lock (closing the file releases it); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def busy_message(run_dir) -> str:
    """What to tell the user when ``run_dir``'s lock is held."""
    path = lock_path(run_dir)
    try:
        holder = path.read_text().strip()
    except OSError:
        holder = ""
    held_by = f", held by {holder}" if holder else ""
    return (f"another training job is using {run_dir} (lock file {path}{held_by}); "
            f"stop it (l2run stop {run_dir}) or choose another --run-dir")


def _holder_line(pid: int, host: str) -> str:
    """What the holder writes into the lock file; :data:`_HOLDER_PATTERN` reads it back."""
    return f"pid {pid} on {host} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"


_HOLDER_PATTERN = re.compile(r"pid (\d+) on (\S+) since ")


@dataclasses.dataclass(frozen=True)
class Holder:
    """The process holding a run directory's lock (a job's rank 0), as it named itself."""

    pid: int
    host: str

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()


def holder_of(run_dir, settle: float = 2.0) -> Optional[Holder]:
    """The live process holding ``run_dir``'s lock, or None when no job holds it.

    Probes the lock as :func:`check_unlocked` does. A job that took the lock an
    instant ago may not have written its name yet (``acquire`` truncates, then
    writes): the file is read again for up to ``settle`` seconds. RunDirBusy if
    the holder still names nobody (not a lock file this module wrote).
    """
    try:
        check_unlocked(run_dir)
        return None
    except RunDirBusy:
        pass
    deadline = time.monotonic() + settle
    while True:
        try:
            text = lock_path(run_dir).read_text()
        except OSError:
            text = ""
        match = _HOLDER_PATTERN.match(text)
        if match:
            return Holder(pid=int(match.group(1)), host=match.group(2))
        if time.monotonic() > deadline:
            raise RunDirBusy(f"{lock_path(run_dir)} is locked by a process that does not name itself "
                             f"(it reads {text.strip()!r})")
        time.sleep(0.05)


def is_held(run_dir) -> Optional[bool]:
    """Whether a process on this host holds ``run_dir``'s lock, read without taking it.

    Why not probe it as :func:`check_unlocked` does: a watcher that asks again and
    again (``experiments/scripts/keep_line.sh``) would hold the lock for an instant
    each time, and a job starting at that instant would find its own directory busy.
    The kernel lists every lock in ``/proc/locks`` by device and inode; this reads
    that. False when there is no lock file; None where the list cannot be read (not
    Linux). A holder on another host (NFS) is not listed here.
    """
    try:
        stat = lock_path(run_dir).stat()
    except FileNotFoundError:
        return False
    try:
        listed = Path("/proc/locks").read_text()
    except OSError:
        return None
    key = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    return any(key in line.split() and "FLOCK" in line for line in listed.splitlines())


def check_unlocked(run_dir) -> None:
    """RunDirBusy if a live job holds ``run_dir``'s lock; takes and drops it at once.

    For a launcher's preflight: it must not keep the lock, or its own ranks could
    not take it. Creates nothing when run_dir does not exist (nobody can hold it).
    """
    if lock_path(run_dir).is_file():
        os.close(_lock_or_raise(run_dir))


def _lock_or_raise(run_dir) -> int:
    """An fd of run_dir/.lock holding the exclusive lock; RunDirBusy if another holds it."""
    # O_CLOEXEC (also Python's default): an exec'd child such as mpirun does not inherit the lock
    fd = os.open(lock_path(run_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunDirBusy(busy_message(run_dir)) from None
        raise
    return fd


def main(argv=None) -> int:
    """``python -m baselines_ppo.run_lock RUN_DIR``: :func:`is_held` as an exit
    status for shell scripts (``keep_line.sh``, ``continue_line.sh``): 0 while a
    process on this host holds the lock, 1 when none does, 2 when it cannot be told
    (argparse's usage error is 2 as well: a script then does nothing on a guess)."""
    parser = argparse.ArgumentParser(
        prog="python -m baselines_ppo.run_lock",
        description="Exit 0 while a process on this host holds RUN_DIR's lock, 1 when none does, "
                    "2 when it cannot be told; the lock is read from /proc/locks, never taken.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    held = is_held(parser.parse_args(argv).run_dir)
    return 2 if held is None else 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
