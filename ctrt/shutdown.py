"""One way to stop: SIGINT, SIGTERM and SIGHUP all raise ``Interrupted`` in the main thread, once.

Deployments stop a process with SIGTERM (systemd, ``docker stop``, ``timeout``) and a closed terminal sends SIGHUP;
Python's default for both is to die on the spot, leaving an .mp4 without its index. Raising instead lets every
``finally`` finalise the outputs. Only the first signal raises: a second one arriving while the outputs are being
closed must not cut that short, so it is ignored. Inside ``signals_held()`` (one frame written to every sink) a
signal waits until the block ends, so all outputs stop after the same frame.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class _Stop:
    raised: bool = False
    held: int = 0
    pending: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.raised or self.pending is not None:
            return
        if self.held:
            self.pending = signum
            return
        self.raised = True
        raise Interrupted(signum)


_active: _Stop | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread; the caller's own handling stays
        return
    stop, outer = _Stop(), _active
    previous: dict[int, Any] = {sig: signal.signal(sig, stop.handler) for sig in SIGNALS}
    _active = stop
    try:
        yield
    finally:
        _active = outer
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Postpone a stop signal to the end of the block (no-op outside ``stop_on_signals`` or the main thread)."""
    stop = _active if threading.current_thread() is threading.main_thread() else None
    if stop is None:
        yield
        return
    stop.held += 1
    try:
        yield
    finally:
        stop.held -= 1
    if not stop.held and stop.pending is not None:
        signum, stop.pending, stop.raised = stop.pending, None, True
        raise Interrupted(signum)
