"""One way to stop: SIGINT, SIGTERM and SIGHUP all raise ``Interrupted`` in the main thread, once.

Deployments stop a process with SIGTERM (systemd, ``docker stop``, ``timeout``) and a closed terminal sends SIGHUP;
Python's default for both is to die on the spot, leaving an .mp4 without its index. Raising instead lets every
``finally`` finalise the outputs. Only the first signal raises: a second one arriving while the outputs are being
closed must not cut that short, so it is noted and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread; the caller's own handling stays
        return
    raised: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not raised:
            raised.append(signum)
            raise Interrupted(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
