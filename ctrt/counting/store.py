"""A camera's running totals on disk, so a restarted service goes on counting from them.

``<save_dir>/<camera>/counts.json`` beside the camera's dated recordings holds ``Session.counts``' form (each line's
crossings by direction and class, each zone's enters and leaves). It is read once when the run starts and
rewritten after every frame that counted something, on a thread of its own (the tracking loop never waits on the
disk; writes coalesce to the latest totals), each time whole: a temporary file renamed over it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import CtrtError
from ..inputs import read_text
from ..outputs import partial_prefix

log = logging.getLogger("ctrt")
LIMIT = 1 << 20  # a few lines and zones of a few classes: a few KiB
Totals = dict[str, dict[str, dict[str, int]]]


def read_counts(path: Path, camera: str) -> Totals:
    """The totals a previous run left, or none; a file that is not such totals is said in one line and set aside
    (renamed ``.bad``), never a reason for a service not to start."""
    if not path.exists():
        return {}
    try:
        data = json.loads(read_text(path, limit=LIMIT))
        if not (isinstance(data, dict) and all(
                isinstance(kinds, dict) and all(isinstance(per, dict) and all(
                    isinstance(c, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
                    for c, n in per.items()) for per in kinds.values()) for kinds in data.values())):
            raise ValueError("not counts by line or zone, kind and class")
        return data
    except (CtrtError, ValueError) as exc:
        log.warning(f"{camera}: {path} unreadable ({exc}); counting starts from zero, the file kept as "
                    f"{path.name}.bad")
        os.replace(path, path.with_name(path.name + ".bad"))
        return {}


class CountsStore:
    """Writes a camera's latest totals to ``path`` whenever told, beside the tracking loop."""

    def __init__(self, path: Path, camera: str) -> None:
        self.path, self.camera = path, camera
        self._latest: Any = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"ctrt-counts {camera}", daemon=True)
        self._thread.start()

    def save(self, totals: Totals) -> None:
        with self._wake:
            self._latest = totals
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._latest is None and not self._closed:
                    self._wake.wait()
                totals, self._latest = self._latest, None
                closed = self._closed
            if totals is not None:
                self._write(totals)
            if closed:
                return

    def _write(self, totals: Totals) -> None:
        temporary = self.path.with_name(f"{partial_prefix(self.path)}partial")  # swept if a crash leaves it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(totals, sort_keys=True))
            os.replace(temporary, self.path)
        except OSError as exc:  # a full disk: said, and tried again with the next count
            temporary.unlink(missing_ok=True)
            log.warning(f"{self.camera}: cannot write {self.path}: {exc.strerror or exc}")

    def close(self) -> None:
        """Write what is pending, then stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(10.0)
