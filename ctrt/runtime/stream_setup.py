"""Setting up a run's streams: their names, a file of sources, where their files go, opening every source."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..counting.shapes import Shape
from ..errors import CtrtError
from ..inputs import read_text
from ..options import default
from .capture import drop_policy
from .scheduler import Stream
from .sinks import Sink
from .sources import FrameSource
from .tracker_protocol import TrackerSource

log = logging.getLogger("ctrt")


# A stream's name names its files and MQTT topics: a file-name component every file system takes (with room for
# a segment suffix), and nothing that reaches outside its folder or topic.
MAX_NAME = 100


def check_stream_name(name: object) -> str:
    """``name`` if it can name a stream's files and topics, else a ``CtrtError`` naming ``source``."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or name.startswith(".") \
            or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name):
        raise CtrtError(f"source: stream name {name!r}: use up to {MAX_NAME} ASCII letters, digits, '-', '_' and "
                        "'.', not first (it names files and MQTT topics)", option="source")
    return name


def stream_names(specs: list[str]) -> list[str]:
    """A short file-name-safe name per source (``cam0``, the video's stem, the URL's path), made unique."""
    names: list[str] = []
    for spec in specs:
        if spec.isdigit():
            base = f"cam{spec}"
        elif "://" in spec:
            base = spec.split("://", 1)[1].split("?")[0].strip("/").replace("/", "_").replace(":", "_") or "stream"
        elif "!" in spec:
            base = "gstreamer"
        else:
            path = Path(spec.rstrip("/*?"))
            base = path.stem or path.name or "images"
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)[:60] or "stream"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def read_sources_file(path: Path) -> list[str]:
    """One source spec a line; blank lines and lines starting with # are skipped."""
    lines = read_text(path, "sources").splitlines()
    specs = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not specs:
        raise CtrtError(f"sources {path} lists no source (one camera index, file, folder or URL a line)",
                        option="sources")
    return specs


def save_paths(save_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """Per stream under ``save_dir``: annotated video, MOTChallenge txt, JSON lines."""
    return save_dir / f"{name}.mp4", save_dir / f"{name}.txt", save_dir / f"{name}.jsonl"


@dataclass
class StreamPlan:
    """One stream of a run as planned: its name, source, tracker, drop policy, reconnects and outputs."""

    name: str
    source: str | FrameSource
    tracker: TrackerSource = None  # CenterTrack's when None
    drop: str | None = None  # None: by the source (latest for live ones, none for files)
    reconnects: int | str = default("reconnects")
    save_dir: Path | None = None  # <stem>.mp4, .txt and .jsonl there
    publish: bool = True  # its events to the run's broker, when it has one
    stem: str = ""  # its files' name under save_dir (the stream's name, or a dated one); "" is the name
    shapes: tuple[Shape, ...] = ()  # the lines and zones it counts with

    @property
    def counts_file(self) -> Path | None:
        """Where a service keeps the totals of its lines and zones across restarts: beside its dated recordings."""
        if self.shapes and self.save_dir is not None and self.stem:
            return self.save_dir / self.name / "counts.json"
        return None

    @property
    def files(self) -> tuple[Path, Path, Path] | None:
        """Its video, MOT and JSON-lines files in ``save_dir``, if it has one."""
        return save_paths(self.save_dir, self.stem or self.name) if self.save_dir is not None else None


def open_streams(plans: list[StreamPlan], sinks_for: Callable[[StreamPlan, FrameSource], list[Sink]]) -> list[Stream]:
    """Open every planned source; one that cannot open is skipped with a warning naming it, unless it is the only
    one or none opens at all."""
    streams, failures = [], []
    for plan in plans:
        def notify(text: str, name: str = plan.name) -> None:
            log.warning(f"{name}: {text}")

        try:
            source = plan.source if isinstance(plan.source, FrameSource) else FrameSource(
                plan.source, reconnects=plan.reconnects, notify=notify)
        except CtrtError as exc:
            if len(plans) == 1:
                raise
            failures.append(f"{plan.name}: {exc}")
            continue
        streams.append(Stream(plan.name, source, sinks_for(plan, source), drop_policy(plan.drop, source.live),
                              plan.tracker, plan.shapes, plan.counts_file))
    if not streams:
        raise CtrtError("no source could be opened: " + "; ".join(failures))
    for failure in failures:
        log.warning(f"skipping stream {failure}")
    return streams


def batch_note(model_batch: int, streams: int) -> str | None:
    """One line when the model's batch cannot hold every stream in one call (it still serves them, in turns)."""
    if model_batch == 0 or streams <= model_batch:
        return None
    return (f"this model has a fixed batch of {model_batch}, so the {streams} streams take "
            f"{math.ceil(streams / model_batch)} calls per tick; for one call export it with a dynamic batch (ONNX "
            f"Runtime) or a batch of {streams} (then build it for TensorRT)")
