"""Stop requests: SIGINT, SIGTERM, SIGHUP or SIGUSR1 become a flag the trainer checks.

Why a module of its own (no numpy, no TensorFlow): a rank must catch a stop
from its first instant. ``l2run train`` forwards Ctrl-C to its ranks as
SIGUSR1, whose default action kills the process; a rank still importing
TensorFlow or building its env (the first ~10 s) would die with "signal 10"
instead of stopping. So the entry point installs a :class:`StopRequest` before
any heavy import and hands it to ``train(stop=...)``, which checks it once
before the first iteration ("stopped before the first iteration; nothing to
save") and after every iteration (save, then return).

A second SIGINT, SIGTERM or SIGHUP raises KeyboardInterrupt: the user insists.
SIGUSR1 never does (it is what mpirun forwards, possibly more than once), so it
is also what ``l2run stop`` sends to a job's rank 0 (:data:`SAVE_AND_STOP`):
sent twice, it still saves.
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Dict, Optional


#: The signal that asks a training process to save and stop, however often it is sent.
SAVE_AND_STOP = signal.SIGUSR1


def catches_stop(pid: int) -> Optional[bool]:
    """Whether process ``pid`` has a handler for :data:`SAVE_AND_STOP` (Linux
    /proc); None if it cannot be told (no /proc, no such process). A process
    without one would be killed by it, not stopped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return status_catches_stop(status)


def status_catches_stop(status: str) -> Optional[bool]:
    """:func:`catches_stop` from the text of /proc/PID/status already read (None: no SigCgt line)."""
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split(":", 1)[1].strip(), 16) & (1 << (SAVE_AND_STOP - 1)))
    return None


class StopRequest:
    """Turns stop signals into ``requested``, checked between iterations.

    Handlers are installed only from the main thread and restored on exit.
    ``request()`` sets the flag from code (e.g. a thread that saw the launcher die).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)

    def __init__(self):
        self.requested = False
        self._previous: Dict[int, Any] = {}

    def request(self) -> None:
        self.requested = True

    def _handle(self, signum, frame):
        if self.requested and signum != SAVE_AND_STOP:
            raise KeyboardInterrupt
        self.request()

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread() and not self._previous:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
