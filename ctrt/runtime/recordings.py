"""Where a run's recordings go, and how long they stay.

``dated`` recordings (a site file's default) never replace an earlier run's: each run of a camera writes
``<save_dir>/<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4`` with its ``.txt`` and ``.jsonl`` (``-1``, ``-2`` ... after the
time when a run of the same second left files), so a restart, a crash or two runs never mix into one file or one
numbered series. ``Retention`` removes the oldest complete recordings first, by age (``keep_days``) and by total
size (``max_gb``), never a file the run is writing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..options import DAY_S

log = logging.getLogger("ctrt")
SUFFIXES = (".mp4", ".avi", ".txt", ".jsonl")
SWEEP_EVERY_S = 60.0


def dated_stem(save_dir: Path, camera: str, now: float | None = None) -> str:
    """``<camera>/<YYYY-MM-DD>/<HH-MM-SS>`` (relative to ``save_dir``) for a run starting ``now``, taken by no
    earlier run's file."""
    moment = time.localtime(time.time() if now is None else now)
    base = f"{camera}/{time.strftime('%Y-%m-%d', moment)}/{time.strftime('%H-%M-%S', moment)}"
    stem, n = base, 1
    while any((save_dir / stem).parent.glob(f"{Path(stem).name}.*")) or \
            any((save_dir / stem).parent.glob(f"{Path(stem).name}-[0-9][0-9][0-9][0-9][0-9].*")):
        stem, n = f"{base}-{n}", n + 1
    return stem


class Retention:
    """Keeps each camera folder's recordings within ``keep_days`` and the whole within ``max_gb``, on a thread of
    its own (deleting never waits on the tracking loop, nor it on deleting)."""

    def __init__(self, folders: list[Path], keep_days: float | None, max_gb: float | None,
                 writing: Callable[[], set[Path]]) -> None:
        self.folders, self.keep_days, self.max_gb, self.writing = folders, keep_days, max_gb, writing
        self.removed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctrt-retention", daemon=True)

    def start(self) -> Retention:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except OSError as exc:  # a folder gone or not ours to touch: said once a sweep, tracking goes on
                log.warning(f"retention: {exc}")
            if self._stop.wait(SWEEP_EVERY_S):
                return

    def sweep(self, now: float | None = None) -> list[Path]:
        """Remove what is too old, then the oldest until the total fits; the files removed, oldest first."""
        now = time.time() if now is None else now
        busy = {p.resolve() for p in self.writing()}
        files = sorted(((p.stat().st_mtime, p) for folder in self.folders if folder.is_dir()
                        for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()),
                       key=lambda item: item[0])
        total = sum(p.stat().st_size for _, p in files)
        removed = []
        for mtime, path in files:
            too_old = self.keep_days is not None and now - mtime > self.keep_days * DAY_S
            too_much = self.max_gb is not None and total > self.max_gb * 1e9
            if not (too_old or too_much):
                break
            if path.resolve() in busy:
                continue
            size = path.stat().st_size
            path.unlink()
            total -= size
            removed.append(path)
            if not any(path.parent.iterdir()):
                path.parent.rmdir()  # an emptied day folder
        self.removed += len(removed)
        return removed

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
