"""Every option of a run once: its model, tracker, outputs, MQTT and HTTP settings, with type, default, bounds, the
words that refuse a bad value, the command-line flag, the site-file key and the help text.

The command line's options, the Python API's checks, the site file's schema, ``ctrt run --check`` and the docs read
this table; no default or bound is written anywhere else. A value is checked by ``check(name, value)``, which names
the option as the Python API spells it; each face spells it its own way (``Option.flag``, ``Option.site``)::

    >>> check("topk", 0)
    Traceback (most recent call last):
    ctrt.errors.CtrtError: topk 0: give 1 to 3840 (TensorRT's TopK limit)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from numbers import Integral, Real
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import CtrtError
from .trt_rules import TOPK_MAX_K

DAY_S = 86_400
FOREVER = "forever"  # reconnects: as long as the run lasts
# Intra-op threads beyond a few per core only contend for the cores (100000 of them never reach a first frame).
THREADS_PER_CORE = 4
SCORE = (0.0, 1.0)
KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", Path: "a path"}


def _max_threads() -> float:
    return THREADS_PER_CORE * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Option:
    """One option. ``default`` None means "not set" (the value is optional); ``high`` may be computed (threads)."""

    name: str  # the Python keyword (ctrt.load, Model.track, TrackerConfig)
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | Callable[[], float] | None = None
    open_low: bool = False  # the low bound itself is refused
    unit: str = ""  # what the bounds count, in the refusal
    why: str = ""  # why the bounds are where they are
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # strings a number option also takes ("forever")
    flag: str | None = None  # its command-line flag where not "--" + the name
    short: str | None = None
    site: str | None = None  # its key in a site file: "section.key"

    @property
    def cli(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def upper(self) -> float | None:
        return self.high() if callable(self.high) else self.high

    def expect(self) -> str:
        """What a good value is, as the refusal says it."""
        if self.words:
            return f"give {' or '.join(self.words)} or " + replace(self, words=()).expect().removeprefix("give ")
        if self.choices:
            return "choose " + " or ".join([", ".join(self.choices[:-1]), self.choices[-1]] if len(self.choices) > 1
                                           else self.choices)
        if self.low is None and self.upper is None:
            return f"give {KINDS[self.kind]}"
        unit = f" {self.unit}" if self.unit else ""
        why = f" ({self.why})" if self.why else ""
        low, high = (_shown(v) if v is not None else None for v in (self.low, self.upper))
        if high is None:
            return f"give {low} or more{unit}{why}"
        if self.open_low:
            return f"give more than {low}, up to {high}{unit}{why}"
        return f"give {low} to {high}{unit}{why}"

    def refuse(self, value: Any, expect: str | None = None) -> CtrtError:
        return CtrtError(f"{self.name} {_shown(value)}: {expect or self.expect()}", option=self.name)

    def check(self, value: Any) -> Any:
        """``value`` as a run takes it (an int given for a float becomes a float), or a ``CtrtError``."""
        if value is None and self.default is None:
            return None
        if isinstance(value, str) and value in self.words:
            return value
        if isinstance(value, str) and self.words and value.lstrip("-").isdigit():  # a number as a flag gives it
            value = int(value)
        if self.kind is bool:
            if not isinstance(value, bool):
                raise self.refuse(value, "give true or false")
            return value
        if self.kind is Path:
            if not isinstance(value, (str, Path)) or not str(value) or "\0" in str(value):
                raise self.refuse(value, "give a path")
            return Path(value)
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise self.refuse(value)
            return value
        number = isinstance(value, (Integral if self.kind is int else Real)) and not isinstance(value, bool)
        if not number:
            if self.words:
                raise self.refuse(value)
            bounds = self.expect().removeprefix("give ") if self.low is not None else ""
            raise self.refuse(value, f"give {KINDS[self.kind]}" + (f", {bounds}" if bounds else ""))
        if not math.isfinite(value):
            raise self.refuse(value)
        value = self.kind(value)
        low, high = self.low, self.upper
        if low is not None and (value < low or (self.open_low and value == low)) or high is not None and value > high:
            raise self.refuse(value)
        return value


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _table(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


_TRACK_THRESH = Option("track_thresh", float, 0.3, "score threshold for output, new tracks and pre_hm", *SCORE,
                       unit="", why="a score", site="tracker.track_thresh")

OPTIONS: dict[str, Option] = _table(
    # ctrt.load
    Option("device", str, "auto", "auto, cpu, cuda (ONNX Runtime also: tensorrt)",
           choices=("auto", "cpu", "cuda", "tensorrt"), site="model.device"),
    Option("threads", int, 0, "ONNX Runtime intra-op threads (0 = all cores)", 0, _max_threads,
           why=f"0 is all cores; at most {THREADS_PER_CORE} per core", site="model.threads"),
    Option("input_size", str, None, "HxW for a .pth checkpoint (default 512x512; an exported model carries its own)",
           site="model.input_size"),
    Option("transport", str, None, "a stateful Triton model (ctrt triton --stateful): send frames raw (uint8, "
           "default) or as jpeg[:QUALITY] (1-100, default 90)", site="model.transport"),
    Option("allow_partial", bool, False, "load a checkpoint whose keys do not all match"),
    Option("cuda_graph", bool, False, "replay a TensorRT engine as a CUDA graph"),
    Option("shm", bool, False, "Triton on this host: pass tensors through system shared memory"),
    Option("reconnects", int, FOREVER, "reopen attempts when a live source or the Triton server drops, with "
           "back-off (forever: for as long as the run lasts)", 0, unit="attempts", words=(FOREVER,),
           site="camera.reconnects"),
    # Model.track: what is tracked and how
    Option("topk", int, 100, "detections kept per frame", 1, TOPK_MAX_K, why="TensorRT's TopK limit", short="-k",
           site="model.topk"),
    _TRACK_THRESH,
    replace(_TRACK_THRESH, name="threshold", default=None),
    Option("tracker", str, "centertrack", "centertrack (CenterTrack's tracker, exactly) or robust (keeps ids "
           "through misses and occlusions); the tracker options override it", flag="--tracker-preset",
           site="tracker.preset"),
    Option("pre_thresh", float, None, "pre_hm threshold (at least the track threshold)", *SCORE, why="a score",
           site="tracker.pre_thresh"),
    Option("new_thresh", float, None, "new-track threshold (at least the track threshold)", *SCORE, why="a score",
           site="tracker.new_thresh"),
    Option("low_thresh", float, None, "BYTE: detections from this score up to the track threshold continue tracks "
           "left unmatched", *SCORE, why="a score", site="tracker.low_thresh"),
    Option("max_age", int, None, "camera frames an unmatched track survives, however many the loop tracked (with "
           "coast, not counting frames a nearer track hides it; -1: none, as CenterTrack)", -1, 30 * DAY_S, unit="frames", why="a day at 30 FPS", site="tracker.max_age"),
    Option("min_hits", int, None, "report a track from its Nth matched frame on, every track in the first N (1: at once, as "
           "CenterTrack)", 1, 100,
           site="tracker.min_hits"),
    Option("gate", float, None, "a detection continues a track only within this share of the box size, or 4x the "
           "offsets' measured miss if more (1: as CenterTrack)", 0.0, 1.0, open_low=True, why="a share of the box size",
           site="tracker.gate"),
    Option("hungarian", bool, None, "optimal assignment, or CenterTrack's greedy matching", flag="--hungarian/--greedy",
           site="tracker.hungarian"),
    Option("coast", bool, None, "a track kept by max_age moves on at its smoothed velocity, yielding to tracks seen "
           "last frame; while a nearer tracked person hides it, it does not age", flag="--coast/--no-coast",
           site="tracker.coast"),
    Option("drop", str, None, "latest: keep only the newest frame when behind (default for cameras and streams); "
           "none: every frame (default for files)", choices=("latest", "none"), site="camera.drop"),
    Option("max_frames", int, None, "stop after N frames (per stream)", 1),
    Option("overlap", bool, True, "several streams: pre-process and track one batch while another runs on the model"),
    # Model.track: counting (checked by ctrt.counting.shapes: each is a list of lines or zones)
    Option("lines", str, None, "NAME:X1,Y1,X2,Y2 in pixels, or in fractions of the frame when all are 0-1: count "
           "the tracks crossing it (in: from the left to the right walking from its first point to its second, "
           "out: back); repeat for more", flag="--line"),
    Option("zones", str, None, "NAME:X1,Y1,X2,Y2,X3,Y3,...: count the tracks entering and leaving the zone, and "
           "how long they stay; repeat for more", flag="--zone"),
    # Model.track: outputs
    Option("save_dir", Path, None, "per stream: <name>.mp4, <name>.txt (MOT) and <name>.jsonl here",
           site="outputs.save_dir"),
    Option("save_video", Path, None, "annotated video (.mp4 or .avi)"),
    Option("save_mot", Path, None, "MOTChallenge txt"),
    Option("save_json", Path, None, "JSON lines, one frame per line, CenterTrack's fields"),
    Option("segment", float, None, "write videos as numbered files of this many seconds (v-00000.mp4, ...): a crash "
           "loses at most one (default: one file)", 1, DAY_S, unit="seconds", site="outputs.segment"),
    Option("overwrite", bool, False, "recordings fixed: replace <name>.mp4, .txt and .jsonl already in save_dir (a "
           "file there may be another program's or an earlier run's: without this the run refuses to start)",
           site="outputs.overwrite"),
    Option("recordings", str, "fixed", "fixed: <name>.mp4, .txt and .jsonl in save_dir (a rerun replaces them with --overwrite); "
           "dated: <name>/<YYYY-MM-DD>/<HH-MM-SS>.* for each run, never replacing an earlier one's (a site file's "
           "default)", choices=("fixed", "dated"), site="outputs.recordings"),
    Option("keep_days", float, None, "dated recordings: remove those older than this, the oldest first", 0, 3650,
           open_low=True, unit="days", site="outputs.keep_days"),
    Option("max_gb", float, None, "dated recordings: remove the oldest while all of them take more than this", 0,
           1e6, open_low=True, unit="GB", site="outputs.max_gb"),
    Option("show", bool, False, "show a window (needs GUI OpenCV)"),
    Option("systemd", bool, True, "when NOTIFY_SOCKET is set, tell systemd when every stream tracks and that the "
           "loop is alive"),
    # Model.track: MQTT
    Option("publish", str, None, "mqtt://HOST[:PORT]/PREFIX or mqtts://...: track events to an MQTT broker "
           "(credentials: CTRT_MQTT_USER, CTRT_MQTT_PASSWORD)", site="outputs.publish"),
    Option("publish_ca", Path, None, "mqtts: the CA certificate that signed the broker's (default: the system's)",
           site="outputs.publish_ca"),
    Option("publish_rate", float, 2.0, "update messages per track and second at most (0: every frame)", 0, 1000,
           unit="updates a second per track", site="outputs.publish_rate"),
    Option("publish_buffer", int, 10_000, "messages kept while the broker is away (the oldest dropped first, "
           "counted)", 1, 10_000_000, unit="messages", site="outputs.publish_buffer"),
    Option("publish_frames", bool, False, "also publish every frame's tracks to PREFIX/<camera>/frames",
           site="outputs.publish_frames"),
    Option("publish_user", str, None, "the broker's user name (default: CTRT_MQTT_USER)", site="outputs.publish_user"),
    Option("publish_password_file", Path, None, "a file whose first line is the broker's password (default: "
           "CTRT_MQTT_PASSWORD)", site="outputs.publish_password_file"),
    # Model.track: HTTP
    Option("http", str, None, "PORT (loopback) or HOST:PORT: serve /metrics, /healthz, /readyz, /streams and the "
           "live view at / (beyond loopback only with CTRT_HTTP_TOKEN or --http-token-file)", site="outputs.http"),
    Option("http_token_file", Path, None, "a file whose first line is the HTTP token (bearer header or ?token=)",
           site="outputs.http_token_file"),
    Option("fps", float, None, "Session.update(frame, timestamp=...): the camera's frame rate, which turns the time "
           "between two updates into the camera frames the tracker moves its tracks by", 0.0, 1000.0, open_low=True,
           unit="frames a second"),
    Option("stale_after", float, 10.0, "/readyz: seconds without a frame before a camera is stale", 0.5, DAY_S,
           unit="seconds", site="outputs.stale_after"),
    Option("http_fps", float, 5.0, "live view: pictures a second at most, encoded only while watched", 0.1, 60,
           unit="pictures a second", site="outputs.http_fps"),
)

# The panels a command's help groups its options into, in the order a user needs them; each option of the table in
# one. A command's own options name their panel where they are declared.
PANELS: dict[str, tuple[str, ...]] = {
    "Sources": ("drop", "reconnects", "max_frames", "overlap", "fps"),
    "Model and device": ("device", "threads", "input_size", "allow_partial", "cuda_graph", "topk"),
    "Tracker": ("tracker", "track_thresh", "threshold", "pre_thresh", "new_thresh", "low_thresh", "max_age",
                "min_hits", "gate", "hungarian", "coast"),
    "Counting": ("lines", "zones"),
    "Outputs": ("save_dir", "save_video", "save_mot", "save_json", "segment", "recordings", "overwrite", "keep_days",
                "max_gb", "show"),
    "Service": ("publish", "publish_ca", "publish_rate", "publish_buffer", "publish_frames", "publish_user",
                "publish_password_file", "http", "http_token_file", "stale_after", "http_fps", "systemd"),
    "Triton": ("transport", "shm"),
}


def panel_of(name: str) -> str:
    """The help panel of an option of the table."""
    return next(panel for panel, names in PANELS.items() if name in names)


# The options that make a tracker (TrackerConfig.from_options), by their names there.
TRACKER_OPTIONS = ("track_thresh", "pre_thresh", "new_thresh", "max_age", "hungarian", "coast", "low_thresh",
                   "min_hits", "gate")


def check(name: str, value: Any) -> Any:
    """``value`` of option ``name`` as a run takes it, or a ``CtrtError`` naming the option."""
    return OPTIONS[name].check(value)


def default(name: str) -> Any:
    return OPTIONS[name].default


def help_text(name: str) -> str:
    return OPTIONS[name].help


def flag_of(name: str) -> str:
    """The command-line flag of a parameter: the table's, else ``--`` + the name with dashes."""
    option = OPTIONS.get(name)
    return option.cli.split("/")[0] if option else "--" + name.replace("_", "-")


def site_keys(section: str) -> dict[str, type | tuple[type, ...]]:
    """A site-file section's keys and the TOML type(s) of each, from the table."""
    return {o.site.split(".", 1)[1]: (str if o.kind is Path else (o.kind, str) if o.words else o.kind)
            for o in OPTIONS.values() if o.site and o.site.split(".", 1)[0] == section and o.name != "threshold"}


def attempts_left(reconnects: int | str, made: int) -> bool:
    """Whether another reconnect attempt is due after ``made`` of them."""
    return reconnects == FOREVER or made < int(reconnects)
