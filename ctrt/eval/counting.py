"""Counting accuracy: the counting rule (``ctrt.counting``) applied to the ground truth's boxes and to a tracker's,
line by line and direction by direction, scored as the AI City Challenge 2021 (Track 1) scores vehicle counts.

Each counted crossing is matched to a true one of the same line and direction within ``MATCH_S`` seconds (one to one,
in time order); what is left over is a miss (a true crossing not counted) or an extra count (a double count, or a
crossing that did not happen).

nwRMSE: the video cut into ``SEGMENTS`` equal parts, the cumulative counts at the end of each part compared,
weighted by the part's index (later parts weigh more: wRMSE = sqrt(sum_i w_i (counted_i - true_i)^2), w_i = i /
sum(1..k)); nwRMSE = 1 - wRMSE / true count, 0 when wRMSE exceeds it. A combined score weighs each line and
direction by its true count, as the challenge does.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Sequence as Seq

import numpy as np

from ..counting.counter import Counter
from ..counting.events import CountEvent
from ..counting.shapes import Line, Shape
from ..errors import CtrtError
from ..runtime.detections import Detections
from .mot import Sequence, read_ground_truth

SEGMENTS = 10
MATCH_S = 1.0  # a counted crossing this close in time to a true one is that crossing
FRAME_RATE = 30.0  # a sequence whose seqinfo.ini gives none
PEOPLE = (1, 2, 7)  # gt classes counted: pedestrian, person on vehicle, static person


def _seqinfo(sequence: Sequence, key: str, kind: type) -> float | None:
    """A positive number of seqinfo.ini's [Sequence] section, None where the file or the key is not there."""
    info = sequence.folder / "seqinfo.ini"
    parser = configparser.ConfigParser()
    if not info.is_file():
        return None
    parser.read(info)
    raw = parser.get("Sequence", key, fallback=None)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise CtrtError(f"{info}: {key} {raw!r}: give a {'whole ' if kind is int else ''}number") from None
    if not (math.isfinite(value) and value > 0):
        raise CtrtError(f"{info}: {key} {raw!r}: give a number above 0")
    return value


def frame_size(sequence: Sequence, shapes: Seq[Shape]) -> tuple[int, int]:
    """The sequence's frame size from its seqinfo.ini (imWidth, imHeight), which lines in fractions need."""
    width, height = _seqinfo(sequence, "imWidth", int), _seqinfo(sequence, "imHeight", int)
    if width and height:
        return int(width), int(height)
    points = np.array([point for shape in shapes for point in shape.points])
    if (points <= 1).all():
        raise CtrtError(f"{sequence.folder}: a line in fractions of the frame needs imWidth and imHeight in "
                        "seqinfo.ini; give it in pixels")
    return int(points[:, 0].max()) + 1, int(points[:, 1].max()) + 1


def frame_rate(sequence: Sequence) -> float:
    """The sequence's frames a second (seqinfo.ini's frameRate)."""
    return _seqinfo(sequence, "frameRate", float) or FRAME_RATE


def match_tolerance(frames_per_second: float, stride: int = 1) -> int:
    """``MATCH_S`` in tracked frames: camera frames a second over the frames between two tracked ones."""
    return max(1, round(frames_per_second * MATCH_S / stride))


def matched(true_frames: Seq[int], counted_frames: Seq[int], tolerance: int) -> int:
    """How many counted crossings pair with true ones at most ``tolerance`` frames apart, one to one: the most there
    can be (for points on a line, pairing in time order is optimal)."""
    truth, counted = sorted(true_frames), sorted(counted_frames)
    i = j = pairs = 0
    while i < len(truth) and j < len(counted):
        if abs(truth[i] - counted[j]) <= tolerance:
            pairs, i, j = pairs + 1, i + 1, j + 1
        elif counted[j] < truth[i]:
            j += 1
        else:
            i += 1
    return pairs


def no_crossings(shapes: Seq[Shape]) -> dict[str, list[int]]:
    """``"<line> <direction>"`` (``"<zone> enter|leave"``) -> an empty list, for every line and zone."""
    return {f"{s.name} {kind}": [] for s in shapes
            for kind in (("in", "out") if isinstance(s, Line) else ("enter", "leave"))}


def record(found: dict[str, list[int]], frame: int, events: Seq[CountEvent]) -> None:
    """Each event's frame under its line and direction (zone and event)."""
    for event in events:
        found[f"{event.name} {event.direction or event.event}"].append(frame)


def crossings(table: np.ndarray, length: int, shapes: Seq[Shape], size: tuple[int, int],
              gap: int = 1) -> dict[str, list[int]]:
    """The frames (from 1) of each crossing (entry, exit) the rule counts in the ground truth's MOTChallenge table
    (frame, id, x, y, w, h, consider, ...): exact identities, each held while it is there and seen where its box is
    to be considered. A box marked not to be considered (a person hidden behind others) keeps its person's place
    but moves nothing, as a tracker's hidden track: a crossing counts when the person was seen on one side, then
    the other, and one never seen before it is not in the truth, as TrackEval leaves such boxes out of MOTA."""
    counter = Counter(shapes, "eval")
    found = no_crossings(shapes)
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    starts = np.searchsorted(table[:, 0], np.arange(1, length + 2))
    for frame in range(1, length + 1):
        rows = table[starts[frame - 1]:starts[frame]]
        boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1).astype(np.float32)
        n = len(rows)
        tracks = Detections.create(boxes, np.ones(n, np.float32), np.ones(n, np.int32),
                                   np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32))
        tracks.ids[:] = rows[:, 1]
        tracks.shown[:] = rows[:, 6] > 0
        record(found, frame, counter.update(tracks, (size[1], size[0], 3), gap))
    return found


def truth_table(sequence: Sequence) -> np.ndarray:
    table = read_ground_truth(sequence.gt_file).table
    return table[np.isin(table[:, 7], PEOPLE)]


def mot_table(text: str) -> np.ndarray:
    """A tracker file's rows (frame, id, x, y, w, h, score, ...) as a table."""
    rows = [[float(v) for v in line.split(",")[:6]] for line in text.splitlines() if line.strip()]
    return np.array(rows, np.float64).reshape(-1, 6)


def nwrmse(true_frames: Seq[int], counted_frames: Seq[int], length: int, segments: int = SEGMENTS) -> float | None:
    """AI City's normalised weighted RMSE of cumulative counts over ``segments`` equal parts; None with no true
    crossing (1.0 if none was counted either)."""
    ends = np.ceil(np.arange(1, segments + 1) * length / segments)
    truth = np.searchsorted(np.sort(true_frames), ends, side="right")
    counted = np.searchsorted(np.sort(counted_frames), ends, side="right")
    weights = np.arange(1, segments + 1) / (segments * (segments + 1) / 2)
    error = math.sqrt(float((weights * (counted - truth) ** 2).sum()))
    total = int(truth[-1])
    if total == 0:
        return 1.0 if error == 0 else None
    return 1.0 - error / total if error <= total else 0.0


def count_scores(truth: dict[str, list[int]], counted: dict[str, list[int]], length: int,
                 tolerance: int) -> dict[str, dict]:
    """Per ``"<line> <direction>"``: true, counted, error (counted - true), relative error, missed and extra
    (crossings matched within ``tolerance`` frames), nwRMSE."""
    out = {}
    for key, frames in truth.items():
        got = counted.get(key, [])
        pairs = matched(frames, got, tolerance)
        out[key] = {"true": len(frames), "counted": len(got), "error": len(got) - len(frames),
                    "relative_error": (len(got) - len(frames)) / len(frames) if frames else None,
                    "missed": len(frames) - pairs, "extra": len(got) - pairs, "nwRMSE": nwrmse(frames, got, length)}
    return out


def combined(per_sequence: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Every sequence's rows summed per line and direction; nwRMSE weighted by true counts (AI City's overall)."""
    keys = sorted({key for rows in per_sequence.values() for key in rows})
    out = {}
    for key in keys:
        rows = [rows[key] for rows in per_sequence.values() if key in rows]
        true, counted = sum(r["true"] for r in rows), sum(r["counted"] for r in rows)
        weighted = [(r["true"], r["nwRMSE"]) for r in rows if r["true"] and r["nwRMSE"] is not None]
        out[key] = {"true": true, "counted": counted, "error": counted - true,
                    "relative_error": (counted - true) / true if true else None,
                    "missed": sum(r["missed"] for r in rows), "extra": sum(r["extra"] for r in rows),
                    "nwRMSE": sum(w * s for w, s in weighted) / sum(w for w, _ in weighted) if weighted else None}
    return out
