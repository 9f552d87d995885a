"""MOTChallenge sequences on disk: ``SEQ/img1/*.jpg`` (or one video in ``SEQ/``), ``SEQ/gt/gt.txt``,
``SEQ/seqinfo.ini``; and tracker files in MOTChallenge's format."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CtrtError
from ..inputs import read_text
from ..runtime.sources import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
LINES_FILE = "lines.txt"  # a sequence's counting lines, one NAME:X1,Y1,X2,Y2 a line (ctrt make-data writes them)


@dataclass(frozen=True)
class GroundTruth:
    """gt.txt as one [N, 9] table in MOTChallenge's columns: frame (from 1), id, x, y, w, h, consider, class,
    visibility."""

    table: np.ndarray

    @property
    def last_frame(self) -> int:
        return int(self.table[:, 0].max(initial=0))


@dataclass(frozen=True)
class Sequence:
    name: str
    folder: Path
    length: int
    frames: Path | None  # img1/ folder or a video: what a model runs on (tracker-only needs none)

    @property
    def gt_file(self) -> Path:
        return self.folder / "gt" / "gt.txt"


# The longest sequence read (about 9 hours at 30 FPS): a seqLength beyond it is a typo, not a recording.
MAX_SEQUENCE_FRAMES = 1_000_000


def read_ground_truth(path: Path) -> GroundTruth:
    """Every line ``frame,id,x,y,w,h[,consider,class,visibility]``; a bad line is an error naming file, line and
    field: frame and id positive integers, sizes not negative, every number finite."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise CtrtError(f"{path}:{number}: not numbers separated by commas: {line[:60]!r}") from None
        if len(values) < 6 or not np.isfinite(values).all() or values[4] < 0 or values[5] < 0:
            raise CtrtError(f"{path}:{number}: expected frame (from 1),id,x,y,w,h[,consider,class,visibility], "
                            f"got {line[:60]!r}")
        for field, value, top in (("frame", values[0], MAX_SEQUENCE_FRAMES), ("id", values[1], 2**31 - 1)):
            if not 1 <= value <= top or value != int(value):
                raise CtrtError(f"{path}:{number}: {field} {value:g} is not an integer from 1 to {top}")
        rows.append((values + [1.0, 1.0, 1.0])[:9])
    return GroundTruth(np.array(rows, np.float64).reshape(-1, 9))


def _sequence(folder: Path) -> Sequence:
    gt = folder / "gt" / "gt.txt"
    if not gt.is_file():
        raise CtrtError(f"{folder} has no gt/gt.txt: a MOTChallenge sequence needs its ground truth")
    info = folder / "seqinfo.ini"
    length, image_dir = 0, "img1"
    if info.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(info)
            length = parser.getint("Sequence", "seqLength")
            image_dir = parser.get("Sequence", "imDir", fallback="img1")
        except (configparser.Error, ValueError) as exc:
            raise CtrtError(f"{info}: {str(exc).splitlines()[0]}") from None
    if info.is_file() and not 1 <= length <= MAX_SEQUENCE_FRAMES:
        raise CtrtError(f"{info}: seqLength {length} is not a frame count from 1 to {MAX_SEQUENCE_FRAMES}")
    last = read_ground_truth(gt).last_frame  # read in any case: a malformed gt.txt is refused before any work
    if length and last > length:
        raise CtrtError(f"{gt}: frame {last} is beyond seqLength {length} in {info}")
    length = length or last
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    frames = folder / image_dir if (folder / image_dir).is_dir() else videos[0] if videos else None
    if info.is_file() and frames is not None and frames.is_dir():
        images = sum(1 for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images != length:
            raise CtrtError(f"{info}: seqLength {length}, but {frames} holds {images} images")
    return Sequence(folder.name, folder, length, frames)


def find_sequences(root: Path) -> list[Sequence]:
    """``root`` is one sequence (it has gt/) or a folder of them (MOT17/train)."""
    if not root.is_dir():
        raise CtrtError(f"--mot {root}: not a folder")
    if (root / "gt").is_dir():
        return [_sequence(root)]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise CtrtError(f"--mot {root}: no sequence folders (SEQ/gt/gt.txt) in it")
    return [_sequence(folder) for folder in folders]


def sequence_lines(sequences: list[Sequence]) -> list[str]:
    """The counting lines the sequences carry in ``SEQ/lines.txt``: the same for every sequence, or none."""
    carried = {s.name: tuple(line.strip() for line in read_text(s.folder / LINES_FILE).splitlines() if line.strip())
               for s in sequences if (s.folder / LINES_FILE).exists()}
    if not carried:
        return []
    if len(carried) < len(sequences) or len(set(carried.values())) > 1:
        without = [s.name for s in sequences if s.name not in carried]
        why = f"none in {', '.join(without)}" if without else "they differ"
        raise CtrtError(f"--mot: the sequences' {LINES_FILE} files do not agree ({why}); give the lines with --line")
    return list(next(iter(carried.values())))


def strided_sequences(sequences: list[Sequence], stride: int, root: Path) -> list[Sequence]:
    """Each sequence as a loop that tracks every ``stride``-th camera frame sees it: frames 1, 1+stride, ...
    numbered 1, 2, ... in new sequence folders under ``root`` (ground truth and seqinfo.ini, no images)."""
    out = []
    for sequence in sequences:
        table = read_ground_truth(sequence.gt_file).table
        kept = table[(table[:, 0] - 1) % stride == 0].copy()
        kept[:, 0] = (kept[:, 0] - 1) // stride + 1
        length = (sequence.length - 1) // stride + 1
        folder = root / sequence.name
        (folder / "gt").mkdir(parents=True)
        np.savetxt(folder / "gt" / "gt.txt", kept, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%d", "%d", "%.3f"],
                   delimiter=",")
        (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={sequence.name}\nseqLength={length}\n")
        out.append(Sequence(sequence.name, folder, length, None))
    return out
