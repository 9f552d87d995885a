"""``ctrt eval --mot``: the full tracker loop per sequence for every model (or, ``--tracker-only``, noisy ground
truth straight into the tracker), tracker files in MOTChallenge format, scored by TrackEval side by side.

``--stride N`` (tracker alone) plays a loop slower than the camera: it tracks every Nth frame, the detections'
offsets reach back to the frame tracked before, the tracker is told the N frames between, and the score is taken
on the frames tracked."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import CtrtError
from ..api import Model
from ..counting.counter import Counter
from ..counting.shapes import Line, Shape, Zone
from ..runtime.detections import Detections
from ..runtime.results import mot_rows
from ..runtime.sources import FrameSource
from ..runtime.tracker import TRACK_THRESH, Tracker, TrackerConfig, parse_tracker
from .counting import (combined, count_scores, crossings, frame_rate, frame_size, match_tolerance, no_crossings,
                       record, truth_table)
from .mot import Sequence, read_ground_truth, strided_sequences
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
    stride: int = 1  # tracker alone: every stride-th camera frame tracked


@dataclass
class MotEvaluation:
    labels: list[str]
    sequences: list[str]
    scores: dict[str, dict[str, dict[str, float]]]  # label -> sequence or "combined" -> metric
    files: dict[str, dict[str, str]]  # label -> sequence -> tracker file text (MOTChallenge format)
    # with lines: label -> sequence or "combined" -> "<line> <direction>" -> true, counted, error, nwRMSE ...
    counts: dict[str, dict[str, dict[str, dict]]] = field(default_factory=dict)


def comparison(models: list[str], trackers: list[str] | None, track_thresh: float = TRACK_THRESH) -> list[Entry]:
    """Every model with every tracker setting (no models: the settings alone, on noisy ground truth). Without
    settings: CenterTrack's for models, CenterTrack's against the robust preset for the tracker alone."""
    specs = trackers or (["centertrack"] if models else ["centertrack", "robust"])
    configs = [parse_tracker(spec, track_thresh) for spec in specs]
    if not models:
        return [Entry(spec, None, config) for spec, config in zip(specs, configs)]
    return [Entry(Path(model).name + (f" / {spec}" if len(specs) > 1 else ""), model, config)
            for model in models for spec, config in zip(specs, configs)]


def at_strides(entries: list[Entry], strides: tuple[int, ...]) -> list[Entry]:
    """Every entry at every stride, labelled ``<entry> @<stride>`` (one stride of 1: the entries as they are)."""
    if strides == (1,):
        return entries
    if any(entry.model is not None for entry in entries):
        raise CtrtError("--stride plays a slower loop on --tracker-only's detections; a model tracks every frame")
    return [replace(entry, label=f"{entry.label} @{stride}", stride=stride) for entry in entries for stride in strides]


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


def track_detections(frames: list[Detections], config: TrackerConfig, gap: int = 1, shapes: tuple[Shape, ...] = (),
                     size: tuple[int, int] = (0, 0)) -> tuple[str, dict[str, list[int]]]:
    """Every frame's detections through one tracker, ``gap`` camera frames apart: MOTChallenge rows, and with
    ``shapes`` (on a ``size`` frame) the crossings counted as a run counts them, from every track the tracker
    holds."""
    tracker = Tracker(config)
    counter = Counter(shapes, "eval") if shapes else None
    found = no_crossings(shapes)
    lines: list[str] = []
    for index, dets in enumerate(frames):  # the decoder's threshold, as a network's detections would have
        tracks = tracker.step(dets[dets.scores > config.decode_floor], gap)
        lines.append(mot_rows(index, tracks))
        if counter is not None:
            record(found, index + 1, counter.update(tracks, (size[1], size[0], 3), gap))
    return "".join(lines), found


def track_sequences(model: Model, sequences: list[Sequence], config: TrackerConfig, k: int,
                    classes: np.ndarray | None, shapes: tuple[Shape, ...] = ()
                    ) -> tuple[dict[str, str], dict[str, dict[str, list[int]]]]:
    """Every sequence through the full tracker loop, as streams batched on the model (each stream tracks exactly
    as it would alone): the MOTChallenge rows of the chosen classes per sequence, and with ``shapes`` the crossings
    of those classes the run counted."""
    for sequence in sequences:
        if sequence.frames is None:
            raise CtrtError(f"{sequence.folder} has no img1/ folder or video to run a model on "
                            "(--tracker-only needs none)")
    texts: dict[str, list[str]] = {sequence.name: [] for sequence in sequences}
    found = {sequence.name: no_crossings(shapes) for sequence in sequences}
    counting = {"lines": [s for s in shapes if isinstance(s, Line)], "zones": [s for s in shapes if isinstance(s, Zone)]}
    with model.track({s.name: FrameSource(str(s.frames), reconnects=0) for s in sequences}, tracker=config,
                     topk=k, **(counting if shapes else {})) as run:
        for r in run:
            texts[r.stream].append(r.to_mot() if classes is None else r[np.isin(r.classes, classes)].to_mot())
            if r.events:
                record(found[r.stream], r.index + 1, [e for e in r.events if classes is None or e.cls in classes])
    failed = next((s for s in run.report.streams if s.error), None)
    if failed:
        raise CtrtError(f"{failed.name}: {failed.error}")
    return {name: "".join(lines) for name, lines in texts.items()}, found


def write_tracker_files(folder: Path, entries: list[Entry], files: dict[str, dict[str, str]]) -> None:
    """TrackEval's layout: TRACKERS_FOLDER/<entry number>/data/<sequence>.txt."""
    for index, entry in enumerate(entries):
        (folder / str(index) / "data").mkdir(parents=True)
        for name, text in files[entry.label].items():
            (folder / str(index) / "data" / f"{name}.txt").write_text(text)


def evaluate_mot(sequences: list[Sequence], entries: list[Entry], open_model: Callable[[str], Model],
                 k: int = 100, classes: np.ndarray | None = None, noise: DetectionNoise | None = None,
                 seed: int = 0, progress: Callable[[str], None] = lambda _: None,
                 lines: tuple[Shape, ...] = ()) -> MotEvaluation:
    """Every entry on every sequence (at its stride), scored by TrackEval; with ``lines``, their counts too."""
    files: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    counts: dict[str, dict[str, dict[str, dict]]] = {}
    sizes = {sequence.name: frame_size(sequence, lines) for sequence in sequences} if lines else {}
    rates = {sequence.name: frame_rate(sequence) for sequence in sequences} if lines else {}
    with tempfile.TemporaryDirectory(prefix="ctrt-eval-") as tmp:
        for stride in sorted({entry.stride for entry in entries}):
            group = [entry for entry in entries if entry.stride == stride]
            played = sequences if stride == 1 else strided_sequences(sequences, stride, Path(tmp) / f"stride{stride}")
            done, counted = _evaluate_entries(played, group, open_model, k, classes, noise, seed, progress, lines,
                                              sizes)
            progress("scoring with TrackEval")
            folder = Path(tmp) / f"trackers{stride}"
            write_tracker_files(folder, group, done)
            scores.update(score(played, folder, [entry.label for entry in group]))
            files.update(done)
            if lines:
                progress("counting")
                truth = {s.name: crossings(truth_table(s), s.length, lines, sizes[s.name], stride) for s in played}
                for entry in group:
                    per = {s.name: count_scores(truth[s.name], counted[entry.label][s.name], s.length,
                                                match_tolerance(rates[s.name], stride))
                           for s in played}
                    counts[entry.label] = {**per, "combined": combined(per)}
    return MotEvaluation([e.label for e in entries], [s.name for s in sequences], scores, files, counts)


def _evaluate_entries(sequences: list[Sequence], entries: list[Entry], open_model: Callable[[str], Model], k: int,
                      classes: np.ndarray | None, noise: DetectionNoise | None, seed: int,
                      progress: Callable[[str], None], shapes: tuple[Shape, ...],
                      sizes: dict[str, tuple[int, int]]) -> tuple[dict[str, dict[str, str]],
                                                                  dict[str, dict[str, dict[str, list[int]]]]]:
    """label -> sequence -> tracker file text; with ``shapes``, label -> sequence -> the crossings counted."""
    files: dict[str, dict[str, str]] = {entry.label: {} for entry in entries}
    counted: dict[str, dict[str, dict[str, list[int]]]] = {entry.label: {} for entry in entries}
    noisy = {}
    if any(entry.model is None for entry in entries):
        for sequence in sequences:
            noisy[sequence.name] = noisy_detections(sequence, noise or DetectionNoise(), seed)
    for entry in entries:
        if entry.model is None:
            for sequence in sequences:
                progress(f"{entry.label}: {sequence.name}")
                files[entry.label][sequence.name], counted[entry.label][sequence.name] = track_detections(
                    noisy[sequence.name], entry.tracker, entry.stride, shapes, sizes.get(sequence.name, (0, 0)))
            continue
        with open_model(entry.model) as model:
            progress(f"{entry.label}: {len(sequences)} sequence(s)")
            files[entry.label], counted[entry.label] = track_sequences(model, sequences, entry.tracker, k, classes,
                                                                       shapes)
    return files, counted
