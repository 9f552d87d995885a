"""Data to evaluate on, made here with exact ground truth.

``pedestrians``: people walking across a 1920x1080 street scene seen from a raised camera: size grows towards the
bottom (nearer), walking speeds 1.0-1.8 m/s, some stop and go on, they enter and leave at the sides, cross each
other and the nearer one covers the farther (visibility is measured, as MOTChallenge's gt gives it), some walk in
groups side by side and some turn back near one of the scene's counting lines. Boxes only:
what the tracker needs. ``DetectionNoise`` turns that ground truth into what a CenterTrack-like detector reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..runtime.detections import Detections

WIDTH, HEIGHT, FPS = 1920, 1080, 30
PERSON_M = 1.75  # a person's height in metres, to turn walking speed into pixels
HORIZON_Y, NEAR_Y = 420.0, 1060.0  # foot line of the farthest and nearest walkers
SAMPLES = 12  # grid points per box side to measure the covered share
MIN_VISIBLE = 0.25  # less of a person in view: gt marks it "do not consider" (no detector is expected to see it)
# Where the scene's people cross, as counting lines in fractions of the frame: a doorway across the near pavement
# (short: people cross it near its ends too) and the whole walkway. ``make-data`` writes them beside each sequence.
DOOR_X, STREET_X = 0.3, 0.6
SCENE_LINES = (f"door:{DOOR_X},0.62,{DOOR_X},0.85", f"street:{STREET_X},0.38,{STREET_X},1")
GROUPS = 0.25  # share of arriving walkers who bring one or two others, side by side
TURNS = 0.1  # share of walkers who turn back once, within a metre of one of the lines' x


@dataclass
class Walker:
    start: int  # first frame (0-based)
    x: float  # foot centre
    y: float  # foot line: depth
    speed: float  # px per frame, signed
    drift: float  # vertical px per frame
    stops: tuple[tuple[int, int], ...]  # (from frame, frames stood)
    turn: float | None = None  # foot x where it turns back, once, if it gets there


def person_height(foot_y: np.ndarray | float) -> np.ndarray | float:
    """Pixels tall at this foot line: the camera looks down the street, nearer is lower and larger."""
    return 60.0 + (foot_y - HORIZON_Y) * 0.42


def make_walkers(length: int, rng: np.random.Generator, density: float = 14.0) -> list[Walker]:
    """About ``density`` people in view at once: some there from the start, the rest arriving at the sides."""
    walkers = []
    crossing_frames = WIDTH / (1.4 * float(person_height(740.0)) / PERSON_M / FPS)  # a typical walk across
    arrivals = rng.poisson(density / crossing_frames * length)
    starts = np.concatenate([np.zeros(int(density * 0.7), int), rng.integers(0, max(length - 10, 1), arrivals)])
    for start in starts:
        y = float(rng.uniform(HORIZON_Y + 40, NEAR_Y))
        rightward = rng.random() < 0.5
        mps = float(rng.uniform(1.0, 1.8))
        h = float(person_height(y))
        speed = mps * h / PERSON_M / FPS * (1 if rightward else -1)
        x = float(rng.uniform(0, WIDTH)) if start == 0 else (-0.3 * h if rightward else WIDTH + 0.3 * h)
        stops = tuple((int(start + rng.integers(10, max(length, 11))), int(rng.integers(15, 60)))
                      for _ in range(int(rng.random() < 0.25)))
        walkers.append(Walker(int(start), x, y, speed, float(rng.normal(0, 0.15)), stops))
    return walkers


def groups_and_turns(walkers: list[Walker], rng: np.random.Generator) -> list[Walker]:
    """Companions beside arriving walkers (a shoulder's width to a metre nearer or farther, up to half a metre ahead
    or behind, the same pace and stops: they partly cover each other as they go), then a few of everyone turning
    back near a line."""
    out = []
    for walker in walkers:
        out.append(walker)
        if walker.start == 0 or rng.random() >= GROUPS:
            continue
        metre = float(person_height(walker.y)) / PERSON_M
        for side in rng.permutation([-1, 1])[: int(rng.integers(1, 3))]:  # two companions: one on either side
            y = float(np.clip(walker.y + side * rng.uniform(0.5, 1.0) * metre, HORIZON_Y + 40, NEAR_Y))
            ahead = rng.uniform(-0.5, 0.5) * metre * np.sign(walker.speed)
            out.append(replace(walker, x=walker.x + float(ahead), y=y,
                               speed=walker.speed * float(person_height(y) / person_height(walker.y))))
    for walker in out:
        if rng.random() < TURNS:
            metre = float(person_height(walker.y)) / PERSON_M
            walker.turn = float(rng.choice([DOOR_X, STREET_X]) * WIDTH + rng.uniform(-1, 1) * metre)
    return out


def _positions(walker: Walker, length: int) -> np.ndarray:
    """[length, 2] foot positions (nan before the walker starts)."""
    out = np.full((length, 2), np.nan)
    moving = np.ones(length, bool)
    for begin, frames in walker.stops:
        moving[begin : begin + frames] = False
    steps = np.cumsum(moving[walker.start :]) - moving[walker.start]
    if walker.turn is not None and (walker.turn - walker.x) * walker.speed > 0:  # it gets there: back the way it came
        steps = steps - 2 * np.maximum(steps - (walker.turn - walker.x) / walker.speed, 0)
    out[walker.start :, 0] = walker.x + walker.speed * steps
    out[walker.start :, 1] = np.clip(walker.y + walker.drift * steps, HORIZON_Y + 20, NEAR_Y + 10)
    return out


def visibility(boxes: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Share of each xyxy box inside the image and not covered by a nearer (larger foot y) box."""
    grid = (np.arange(SAMPLES) + 0.5) / SAMPLES
    xs = boxes[:, 0, None] + grid[None, :] * (boxes[:, 2] - boxes[:, 0])[:, None]  # [N, S]
    ys = boxes[:, 1, None] + grid[None, :] * (boxes[:, 3] - boxes[:, 1])[:, None]
    px = np.broadcast_to(xs[:, None, :], (len(boxes), SAMPLES, SAMPLES))  # [N, S(y), S(x)]
    py = np.broadcast_to(ys[:, :, None], (len(boxes), SAMPLES, SAMPLES))
    seen = (px >= 0) & (px < WIDTH) & (py >= 0) & (py < HEIGHT)
    nearer = depth[None, :] > depth[:, None]  # [N, M]: M stands in front of N
    inside = ((px[:, None] >= boxes[None, :, 0, None, None]) & (px[:, None] < boxes[None, :, 2, None, None])
              & (py[:, None] >= boxes[None, :, 1, None, None]) & (py[:, None] < boxes[None, :, 3, None, None]))
    covered = (inside & nearer[:, :, None, None]).any(axis=1)
    return (seen & ~covered).mean(axis=(1, 2))


def pedestrian_truth(length: int, seed: int) -> np.ndarray:
    """gt.txt rows ``frame,id,x,y,w,h,1,1,visibility`` for a generated street scene."""
    rng = np.random.default_rng(seed)
    # Groups and turns draw from their own stream: the walkers drawn first stay as a seed always made them.
    walkers = groups_and_turns(make_walkers(length, rng), np.random.default_rng([seed, 1]))
    feet = np.stack([_positions(w, length) for w in walkers], axis=1)  # [T, N, 2]
    rows = []
    for t in range(length):
        here = np.flatnonzero(~np.isnan(feet[t, :, 0]))
        x, y = feet[t, here, 0], feet[t, here, 1]
        h = np.asarray(person_height(y))
        w = 0.41 * h
        boxes = np.stack([x - w / 2, y - h, x + w / 2, y], axis=1)
        seen = visibility(boxes, y)
        keep = (boxes[:, 2] > 0) & (boxes[:, 0] < WIDTH)  # MOTChallenge keeps boxes partly outside the image
        for i in np.flatnonzero(keep):  # under a quarter in view: marked not to be considered, as annotators do
            rows.append((t + 1, here[i] + 1, *boxes[i, :2], w[i], h[i], int(seen[i] >= MIN_VISIBLE), 1, seen[i]))
    return np.array(rows, np.float64)


def write_sequence(folder: Path, rows: np.ndarray, length: int, size: tuple[int, int] = (WIDTH, HEIGHT),
                   fps: int = FPS, images: str = "img1") -> None:
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    text = "".join(f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{int(r[6])},{int(r[7])},"
                   f"{r[8]:.3f}\n" for r in rows)
    (folder / "gt" / "gt.txt").write_text(text)
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={folder.name}\nimDir={images}\nframeRate={fps}\n"
                                        f"seqLength={length}\nimWidth={size[0]}\nimHeight={size[1]}\nimExt=.jpg\n")


@dataclass(frozen=True)
class DetectionNoise:
    """What a CenterTrack-like detector reports for ground-truth boxes: misses that grow with occlusion, scores
    that fall with it (a half-covered person scores about 0.5, a mostly covered one under 0.3), box jitter, an
    imperfect ``tracking`` offset, and false positives of low score."""

    miss: float = 0.015  # chance to miss a fully visible person in a frame (blur, pose)
    box_jitter: float = 0.02  # std of each edge, as a share of the box size
    offset_noise_px: float = 1.5  # std of the tracking offset's error
    false_positives: float = 0.5  # per frame, Poisson mean
    score_noise: float = 0.08

    def detections(self, truth: np.ndarray, previous: dict[int, np.ndarray], rng: np.random.Generator) -> Detections:
        """``truth``: this frame's gt rows of people, those marked not to be considered too (they are never
        detected, but a later detection's ``tracking`` offset knows where they were); ``previous``: id -> centre in
        the last frame (updated here)."""
        vis = truth[:, 8]
        p_detect = np.clip((vis - 0.1) / 0.15, 0.0, 1.0) * (1 - self.miss) * (truth[:, 6] > 0)
        found = truth[rng.random(len(truth)) < p_detect]
        vis = found[:, 8]
        x, y, w, h = found[:, 2], found[:, 3], found[:, 4], found[:, 5]
        centers = np.stack([x + w / 2, y + h / 2], axis=1)
        offsets = np.array([previous.get(int(i), c) - c for i, c in zip(found[:, 1], centers)]).reshape(-1, 2)
        previous.clear()
        previous.update({int(r[1]): np.array([r[2] + r[4] / 2, r[3] + r[5] / 2]) for r in truth})
        size = np.stack([w, h, w, h], axis=1)
        boxes = np.stack([x, y, x + w, y + h], axis=1) + rng.normal(0, self.box_jitter, (len(found), 4)) * size
        scores = np.clip(0.15 + 0.75 * vis + rng.normal(0, self.score_noise, len(found)), 0.01, 0.99)
        offsets = offsets + rng.normal(0, self.offset_noise_px, offsets.shape)
        fp = rng.poisson(self.false_positives)
        fh = rng.uniform(60, 300, fp)
        fx, fy = rng.uniform(0, WIDTH, fp), rng.uniform(HORIZON_Y, HEIGHT, fp)
        fboxes = np.stack([fx - 0.2 * fh, fy - fh, fx + 0.2 * fh, fy], axis=1)
        boxes = np.concatenate([boxes, fboxes]).astype(np.float32)
        scores = np.concatenate([scores, rng.uniform(0.05, 0.45, fp)]).astype(np.float32)
        offsets = np.concatenate([offsets, rng.normal(0, 3.0, (fp, 2))]).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        return Detections.create(boxes[order], scores[order], np.ones(len(order), np.int32), centers[order],
                                 offsets[order])
