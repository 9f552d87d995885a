"""``ctrt eval --mot``: the full tracker loop per sequence for every model (or, ``--tracker-only``, noisy ground
truth straight into the tracker), tracker files in MOTChallenge format, scored by TrackEval side by side."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CtrtError
from ..runtime.backends.base import Backend
from ..runtime.detections import Detections
from ..runtime.pipeline import TrackingPipeline
from ..runtime.runner import run_stream
from ..runtime.sinks import mot_rows
from ..runtime.sources import FrameSource
from ..runtime.streams import Stream, run_streams
from ..runtime.tracker import PRESETS, Tracker, TrackerConfig
from .mot import Sequence, read_ground_truth
from .scores import score
from .synthetic import DetectionNoise

PERSON = 1  # CenterTrack numbers COCO's 80 classes from 1
PEOPLE = (1, 2, 7)  # MOTChallenge gt classes a person detector reports: pedestrian, person on vehicle, static person


@dataclass(frozen=True)
class Entry:
    """One column of the comparison: a model (None: tracker only) with a tracker setting."""

    label: str
    model: str | None
    tracker: TrackerConfig


@dataclass
class MotEvaluation:
    labels: list[str]
    sequences: list[str]
    scores: dict[str, dict[str, dict[str, float]]]  # label -> sequence or "combined" -> metric
    files: dict[str, dict[str, str]]  # label -> sequence -> tracker file text (MOTChallenge format)


def parse_tracker(spec: str, track_thresh: float = 0.3) -> TrackerConfig:
    """``centertrack``, ``robust``, or options on a preset: ``max_age=30,coast``, ``robust,low_thresh=0.2``."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    preset = parts.pop(0) if parts and parts[0] in PRESETS else "centertrack"
    options: dict[str, object] = {}
    for part in parts:
        key, _, value = part.partition("=")
        key = key.replace("-", "_")
        try:
            if key in ("coast", "hungarian"):
                options[key] = value.lower() not in ("0", "false", "no") if value else True
            elif key in ("max_age", "min_hits"):
                options[key] = int(value)
            elif key in ("low_thresh", "gate"):
                options[key] = float(value)
            else:
                raise ValueError
        except ValueError:
            raise CtrtError(f"--tracker {spec!r}: {part!r} is not one of max_age=N, min_hits=N, low_thresh=S, gate=G, "
                            f"coast, hungarian (after an optional preset: {', '.join(PRESETS)})") from None
    return TrackerConfig.from_options(track_thresh, preset=preset, **options)  # type: ignore[arg-type]


def comparison(models: list[str], trackers: list[str] | None, track_thresh: float = 0.3) -> list[Entry]:
    """Every model with every tracker setting (no models: the settings alone, on noisy ground truth). Without
    settings: CenterTrack's for models, CenterTrack's against the robust preset for the tracker alone."""
    specs = trackers or (["centertrack"] if models else ["centertrack", "robust"])
    configs = [parse_tracker(spec, track_thresh) for spec in specs]
    if not models:
        return [Entry(spec, None, config) for spec, config in zip(specs, configs)]
    return [Entry(Path(model).name + (f" / {spec}" if len(specs) > 1 else ""), model, config)
            for model in models for spec, config in zip(specs, configs)]


def parse_classes(spec: str) -> np.ndarray | None:
    """``person`` (default), ``all``, or CenterTrack class numbers ``1,3``."""
    if spec == "all":
        return None
    if spec == "person":
        return np.array([PERSON])
    try:
        return np.array([int(c) for c in spec.split(",")])
    except ValueError:
        raise CtrtError(f"--classes {spec!r}: person, all, or class numbers (COCO's 80 from 1) like 1,3") from None


def noisy_detections(sequence: Sequence, noise: DetectionNoise, seed: int) -> list[Detections]:
    """Per frame, what a CenterTrack-like detector would report for the ground truth; seeded per sequence, so
    every tracker setting sees the same detections."""
    truth = read_ground_truth(sequence.gt_file)
    table = truth.table[np.isin(truth.table[:, 7], PEOPLE)]
    rng = np.random.default_rng([seed, zlib.crc32(sequence.name.encode())])
    previous: dict[int, np.ndarray] = {}
    return [noise.detections(table[table[:, 0] == frame], previous, rng) for frame in range(1, sequence.length + 1)]


def track_detections(frames: list[Detections], config: TrackerConfig) -> str:
    tracker = Tracker(config)
    floor = config.track_thresh if config.low_thresh is None else min(config.low_thresh, config.track_thresh)
    lines: list[str] = []
    for index, dets in enumerate(frames):  # the decoder's threshold, as a network's detections would have
        lines.extend(mot_rows(index, tracker.step(dets[dets.scores > floor])))
    return "".join(lines)


class MotText:
    """A sink that keeps a sequence's MOTChallenge rows in memory, of the chosen classes only."""

    def __init__(self, classes: np.ndarray | None) -> None:
        self.classes = classes
        self.lines: list[str] = []

    def write(self, index: int, frame: np.ndarray, tracks: Detections) -> None:
        if self.classes is not None:
            tracks = tracks[np.isin(tracks.classes, self.classes)]
        self.lines.extend(mot_rows(index, tracks))

    def close(self) -> None:
        return None


def track_sequences(backend: Backend, sequences: list[Sequence], config: TrackerConfig, k: int,
                    classes: np.ndarray | None) -> dict[str, str]:
    """Every sequence through the full tracker loop: as streams batched on the model where it takes a batch (each
    stream tracks exactly as it would alone), else one sequence after another."""
    for sequence in sequences:
        if sequence.frames is None:
            raise CtrtError(f"{sequence.folder} has no img1/ folder or video to run a model on "
                            "(--tracker-only needs none)")
    texts = {sequence.name: MotText(classes) for sequence in sequences}
    if backend.meta.batch == 1 or len(sequences) == 1:
        for sequence in sequences:
            pipeline = TrackingPipeline(backend, k, config.track_thresh, config)
            run = run_stream(pipeline, FrameSource(str(sequence.frames), reconnects=0), [texts[sequence.name]])
            if run.interrupted:
                raise run.interrupted
    else:
        streams = [Stream(s.name, FrameSource(str(s.frames), reconnects=0), [texts[s.name]], "none")
                   for s in sequences]
        summary = run_streams(backend, streams, k, config.track_thresh, config)
        if summary.interrupted:
            raise summary.interrupted
        failed = next((s for s in summary.streams if s.error), None)
        if failed:
            raise CtrtError(f"{failed.name}: {failed.error}")
    return {name: "".join(text.lines) for name, text in texts.items()}


def evaluate_mot(sequences: list[Sequence], entries: list[Entry], open_model: Callable[[str], Backend],
                 k: int = 100, classes: np.ndarray | None = None, noise: DetectionNoise | None = None,
                 seed: int = 0, progress: Callable[[str], None] = lambda _: None) -> MotEvaluation:
    files: dict[str, dict[str, str]] = {entry.label: {} for entry in entries}
    noisy = {}
    if any(entry.model is None for entry in entries):
        for sequence in sequences:
            noisy[sequence.name] = noisy_detections(sequence, noise or DetectionNoise(), seed)
    for entry in entries:
        if entry.model is None:
            for sequence in sequences:
                progress(f"{entry.label}: {sequence.name}")
                files[entry.label][sequence.name] = track_detections(noisy[sequence.name], entry.tracker)
            continue
        with open_model(entry.model) as backend:
            progress(f"{entry.label}: {len(sequences)} sequence(s)")
            files[entry.label] = track_sequences(backend, sequences, entry.tracker, k, classes)
    progress("scoring with TrackEval")
    with tempfile.TemporaryDirectory(prefix="ctrt-eval-") as tmp:
        for index, entry in enumerate(entries):
            folder = Path(tmp) / str(index) / "data"
            folder.mkdir(parents=True)
            for name, text in files[entry.label].items():
                (folder / f"{name}.txt").write_text(text)
        scores = score(sequences, Path(tmp), [entry.label for entry in entries])
    return MotEvaluation([e.label for e in entries], [s.name for s in sequences], scores, files)
