"""One plan for a run, whichever face asks for it. ``Model.track``'s keywords and ``ctrt run``'s flags
(``plan_run``), and a site file with flags over it (``plan_site``), all become one ``RunPlan``: named streams with
their tracker, drop policy, reconnects and outputs, and the run's MQTT, HTTP and systemd settings. ``ctrt.run``
executes a plan; every value in it was checked against the options table (``options.py``) on the way in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .artifacts import sidecar_path
from .counting.shapes import ShapeSpec, in_pixels, shapes_for
from .errors import CtrtError
from .options import OPTIONS, TRACKER_OPTIONS, check, default
from .outputs import check_outputs
from .runtime.backends.registry import is_remote
from .runtime.backends.triton_backend import parse_transport
from .runtime.recordings import dated_stem
from .runtime.sinks import VIDEO_SUFFIXES, segment_path
from .runtime.sources import FrameSource, frame_size, source_files
from .runtime.stream_setup import StreamPlan, check_stream_name, stream_names
from .runtime.tracker import TrackerConfig
from .runtime.tracker_protocol import TrackerSource, tracker_source
from .runtime.user_sinks import UserSink, user_sinks
from .site.file import SiteFile, read_secret
from .site.http_options import HttpOptions
from .site.mqtt import MqttOptions

# A site (a service restarted by systemd) keeps every run's recordings: each run writes dated files of its own.
SITE_RECORDINGS = "dated"

SourceSpec = Union[str, int, Path, FrameSource]
Sources = Union[SourceSpec, Sequence[SourceSpec], Mapping[str, SourceSpec]]
TrackerSpec = Union[str, TrackerConfig, TrackerSource]
ShapeSpecs = Union[ShapeSpec, Sequence[ShapeSpec], None]
# ctrt.load's keywords a plan may carry for a site's model (the command line's over the site's [model]).
LOAD_OPTIONS = ("device", "threads", "input_size", "transport", "allow_partial", "shm", "reconnects")
PUBLISH_OPTIONS = {"publish": "url", "publish_ca": "ca", "publish_rate": "rate_hz", "publish_buffer": "buffer",
                   "publish_frames": "frames", "publish_user": "user"}
HTTP_OPTIONS = {"http": "bind", "stale_after": "stale_after", "http_fps": "fps"}
SECRET_FILES = ("http_token_file", "publish_password_file")  # read by a run: inputs no output may replace


@dataclass
class RunPlan:
    """Everything a run will do, decided before any model, camera or broker is opened (``ctrt run --check``
    prints one)."""

    streams: list[StreamPlan]
    topk: int = default("topk")
    max_frames: int | None = None
    segment: float | None = None
    overlap: bool = True
    save_video: Path | None = None  # one stream's own files (no save_dir)
    save_mot: Path | None = None
    save_json: Path | None = None
    show: bool = False
    publish: MqttOptions | None = None
    http: HttpOptions | None = None
    systemd: bool = True
    keep_days: float | None = None  # dated recordings' retention
    overwrite: bool = False  # fixed recordings may replace files already in save_dir
    max_gb: float | None = None
    protect: list[Path] = field(default_factory=list)  # the caller's other inputs, which no output may replace
    sinks: list[UserSink] = field(default_factory=list)  # the caller's sinks and callables, fed every frame
    model: str | None = None  # the model a site file (or the command line) names
    load: dict[str, Any] = field(default_factory=dict)  # ctrt.load keywords for it
    site: SiteFile | None = None  # the site file it was planned from: a refusal of its values names file and key
    given: frozenset[str] = frozenset()  # the options given over the site file's (a refusal names those plainly)

    def outputs(self) -> dict[str, Path]:
        """Every file the run will write, by how the user named it (a segmented video by its first segment)."""
        if any(s.save_dir for s in self.streams):
            planned = {f"save_dir {s.save_dir}: {path.relative_to(s.save_dir)}": path for s in self.streams
                       if s.save_dir is not None and s.files is not None for path in s.files}
        else:
            planned = {label: path for label, path in (("save_video", self.save_video), ("save_mot", self.save_mot),
                                                       ("save_json", self.save_json)) if path is not None}
        if self.segment is not None:
            planned = {label: segment_path(p, 0) if p.suffix.lower() in VIDEO_SUFFIXES else p
                       for label, p in planned.items()}
        return planned

    def inputs(self, model: str | None = None) -> list[Path]:
        """Every file the run reads: the sources, the model and its sidecar, the broker's CA, and ``protect`` (the
        site file, secret files, the caller's own)."""
        files = [p for s in self.streams if isinstance(s.source, str) for p in source_files(s.source)]
        model = model or self.model
        if model is not None and not is_remote(model):
            files += [Path(model), sidecar_path(Path(model))]
        if self.publish is not None and self.publish.ca is not None:
            files.append(self.publish.ca)
        return [*files, *self.protect]

    @property
    def recording_folders(self) -> list[Path]:
        """Each saved camera's folder of dated recordings (what retention looks after)."""
        return sorted({s.save_dir / s.name for s in self.streams if s.save_dir is not None and s.stem})

    def check_outputs(self, model: str | None = None) -> None:
        """Refuse an output that could not be written or would replace an input (before anything is opened),
        without ``overwrite`` a file save_dir already holds under a name the run gives its own files, and a line
        or zone in pixels outside a video's frames (a camera's are checked at its first frame)."""
        with self.site.blame(set(self.given)) if self.site is not None else nullcontext():
            check_outputs(self.outputs(), self.inputs(model))
            self._check_fixed_names()
        from_site = self.site is not None and not {"lines", "zones"} & self.given
        for stream in self.streams:
            size = frame_size(stream.source) if stream.shapes and isinstance(stream.source, str) else None
            if size is None:
                continue
            for shape in stream.shapes:
                try:
                    in_pixels(shape, *size, stream.name)
                except CtrtError as exc:
                    raise CtrtError(f"{self.site.path}: {exc}" if from_site and self.site else str(exc),
                                    option=exc.option) from None

    def _check_fixed_names(self) -> None:
        if self.overwrite:
            return
        for stream in self.streams:
            there = [path for path in stream.files or () if path.exists()]
            if there:
                raise CtrtError(f"save_dir {stream.save_dir}: {', '.join(p.name for p in there)} already there (another "
                                "program's or an earlier run's); the option overwrite (--overwrite) replaces them, "
                                "recordings 'dated' gives each run files of its own", option="save_dir")


def plan_run(source: Sources, *, tracker: TrackerSpec | Mapping[str, TrackerSpec] = "centertrack",
             topk: int = default("topk"), threshold: float | None = None,
             drop: str | None | Mapping[str, str | None] = None, max_frames: int | None = None,
             save_dir: str | Path | None | Mapping[str, str | Path | None] = None, save_video: str | Path | None = None,
             save_mot: str | Path | None = None, save_json: str | Path | None = None, show: bool = False,
             overlap: bool = True, reconnects: int | str = default("reconnects"), segment: float | None = None,
             lines: ShapeSpecs | Mapping[str, ShapeSpecs] = None, zones: ShapeSpecs | Mapping[str, ShapeSpecs] = None,
             publish: str | MqttOptions | None = None, published: Collection[str] | None = None,
             publish_ca: str | Path | None = None, publish_rate: float = default("publish_rate"),
             publish_buffer: int = default("publish_buffer"), publish_frames: bool = False,
             http: str | HttpOptions | None = None, http_token_file: str | Path | None = None,
             stale_after: float = default("stale_after"), http_fps: float = default("http_fps"),
             recordings: str = default("recordings"), overwrite: bool = default("overwrite"),
             keep_days: float | None = None,
             max_gb: float | None = None, systemd: bool = True, protect: Sequence[str | Path] = (),
             sinks: Sequence[UserSink] = (), on_result: Callable[[Any], object] | None = None,
             model: str | None = None, load: Mapping[str, Any] | None = None) -> RunPlan:
    """The plan for ``Model.track``'s keywords (``ctrt run``'s flags are the same names); see ``Model.track``."""
    scalars: dict[str, Any] = {"topk": topk, "threshold": threshold, "max_frames": max_frames, "show": show,
                               "overlap": overlap, "reconnects": reconnects, "segment": segment, "systemd": systemd,
                               "save_video": save_video, "save_mot": save_mot, "save_json": save_json,
                               "recordings": recordings, "keep_days": keep_days, "max_gb": max_gb,
                               "overwrite": overwrite}
    for name, value in scalars.items():
        check(name, value)
    named = _named_sources(source)
    per_stream: dict[str, Any] = {"tracker": tracker, "drop": drop, "save_dir": save_dir, "published": published}
    for option, given in {**per_stream, **{"lines": lines, "zones": zones}}.items():
        if option in ("lines", "zones") and not isinstance(given, Mapping):
            continue  # a list of them is every stream's
        if isinstance(given, (Mapping, Collection)) and not isinstance(given, (str, Path, TrackerConfig)):
            for stream in given:
                if stream not in named:
                    raise CtrtError(f"{option}: no stream is named {stream!r}", option=option)
    streams = [StreamPlan(name, spec, tracker_source(_own(tracker, name, "centertrack"), threshold),
                          check("drop", _own(drop, name, None)), reconnects,
                          check("save_dir", _own(save_dir, name, None)),
                          published is None or name in published,
                          shapes=shapes_for(name, _own(lines, name, None), _own(zones, name, None)))
               for name, spec in named.items()]
    single = {"save_video": save_video, "save_mot": save_mot, "save_json": save_json}
    if (len(streams) > 1 or any(s.save_dir for s in streams)) and (any(v is not None for v in single.values())
                                                                    or show):
        raise CtrtError("save_dir: with several sources (or save_dir) each stream gets its own video, MOT and "
                        "JSON-lines file there, instead of save_video, save_mot, save_json or show",
                        option="save_dir")
    video = check("save_video", save_video)
    if video is not None and video.suffix.lower() not in VIDEO_SUFFIXES:
        raise CtrtError(f"save_video {video}: name it .mp4 (mp4v) or .avi (MJPG)", option="save_video")
    _name_recordings(streams, recordings)
    plan = RunPlan(streams, topk, max_frames, segment, overlap, video, check("save_mot", save_mot),
                   check("save_json", save_json), show, systemd=systemd, keep_days=keep_days, max_gb=max_gb,
                   overwrite=check("overwrite", overwrite),
                   protect=[*map(Path, protect), *([Path(http_token_file)] if http_token_file else [])],
                   sinks=user_sinks(sinks, on_result), model=model,
                   load=_load(load or {}))
    plan.publish = publish if isinstance(publish, MqttOptions) else mqtt_options(
        {"publish": publish, "publish_ca": publish_ca, "publish_rate": publish_rate,
         "publish_buffer": publish_buffer, "publish_frames": publish_frames})
    plan.http = http if isinstance(http, HttpOptions) else http_options(
        {"http": http, "http_token_file": http_token_file, "stale_after": stale_after, "http_fps": http_fps})
    return plan


def plan_site(site: SiteFile, **given: Any) -> RunPlan:
    """The plan for a site file, with ``given`` (options by the table's names, ``source``: specs that replace the
    site's cameras, ``model``, ``max_frames``, ``protect``) over it. Values from the site file were checked when it
    was read; a refusal of one given here names the option, of one from the file the file and its key."""
    tracker_given = {n: given.pop(n) for n in (*TRACKER_OPTIONS, "tracker") if n in given}
    if "tracker" in tracker_given:
        tracker_given["preset"] = tracker_given.pop("tracker")
    outputs = {**site.outputs, **{k: v for k, v in given.items() if k in OPTIONS and OPTIONS[k].site
                                  and OPTIONS[k].site.startswith("outputs.")}}  # type: ignore[union-attr]
    specs = given.pop("source", None)
    reconnects = check("reconnects", given.get("reconnects", default("reconnects")))
    counting = {k: given.pop(k) for k in ("lines", "zones") if given.get(k)}  # the command line's replace a camera's
    if specs:  # the command line's sources replace the site's cameras, with the site's tracker
        config = site.tracker_for(None, tracker_given)
        streams = [StreamPlan(name, spec, config, check("drop", given.get("drop")), reconnects,
                              _path(outputs.get("save_dir")), shapes=shapes_for(name, **counting))
                   for name, spec in zip(stream_names(specs), specs)]
    else:
        streams = [StreamPlan(c.name, c.source, site.tracker_for(c.name, tracker_given),
                              check("drop", given["drop"]) if "drop" in given else c.drop,
                              reconnects if "reconnects" in given else c.reconnects,
                              _path(outputs.get("save_dir")) if c.save else None, c.publish,
                              shapes=shapes_for(c.name, **counting) if counting else c.shapes) for c in site.cameras]
    with site.blame(set(given)):
        _name_recordings(streams, check("recordings", outputs.get("recordings", SITE_RECORDINGS)))
        plan = RunPlan(streams, check("topk", given.get("topk", site.model.get("topk", default("topk")))),
                       check("max_frames", given.get("max_frames")), check("segment", outputs.get("segment")),
                       keep_days=check("keep_days", outputs.get("keep_days")),
                       overwrite=check("overwrite", outputs.get("overwrite", default("overwrite"))),
                       max_gb=check("max_gb", outputs.get("max_gb")),
                       protect=[site.path, *map(Path, given.get("protect", ())),
                                *(Path(outputs[k]) for k in SECRET_FILES if outputs.get(k))],
                       model=given.get("model") or site.model.get("path"),
                       load=_load({**{k: v for k, v in site.model.items() if k in LOAD_OPTIONS},
                                   **{k: v for k, v in given.items() if k in LOAD_OPTIONS}}),
                       site=site, given=frozenset(given))
        plan.publish = mqtt_options(outputs, site.outputs.get("publish_password_file"))
        plan.http = http_options(outputs)
    if plan.model is None:
        raise CtrtError(f"{site.path}: model.path: missing, and no model given", option="model")
    return plan


def mqtt_options(values: Mapping[str, Any], password_file: str | None = None) -> MqttOptions | None:
    """``MqttOptions`` from the publish options by the table's names; None when nothing is published. The password
    comes from ``password_file`` (else ``CTRT_MQTT_PASSWORD``)."""
    settings = {PUBLISH_OPTIONS[k]: check(k, v) for k, v in values.items() if k in PUBLISH_OPTIONS and v is not None}
    if values.get("publish") is None:  # checked all the same: a bad value is a mistake even when unused
        return None
    if password_file:
        settings["password"] = read_secret(Path(password_file), "publish_password_file")
    return MqttOptions(**settings)


def http_options(values: Mapping[str, Any]) -> HttpOptions | None:
    """``HttpOptions`` from the HTTP options by the table's names; None when nothing is served. The token comes
    from ``http_token_file`` (else ``CTRT_HTTP_TOKEN``)."""
    settings = {HTTP_OPTIONS[k]: check(k, v) for k, v in values.items() if k in HTTP_OPTIONS and v is not None}
    token_file = check("http_token_file", values.get("http_token_file"))
    if values.get("http") is None:
        return None
    if token_file is not None:
        settings["token"] = read_secret(token_file, "http_token_file")
    return HttpOptions(**settings)


def _name_recordings(streams: list[StreamPlan], recordings: str) -> None:
    """``dated``: each saved stream's files get this run's own dated name (``runtime/recordings.py``)."""
    if recordings == "dated":
        now = time.time()
        for stream in streams:
            if stream.save_dir is not None:
                stream.stem = dated_stem(stream.save_dir, stream.name, now)


def _load(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in values if k not in LOAD_OPTIONS]
    if unknown:
        raise CtrtError(f"load: {unknown[0]!r} is not one of {', '.join(LOAD_OPTIONS)}", option="load")
    checked = {k: check(k, v) for k, v in values.items()}
    if checked.get("transport") is not None:  # its form is known before any server is asked
        parse_transport(checked["transport"])
    return checked


def _own(value: Any, stream: str, fallback: Any) -> Any:
    """A stream's own value of a per-stream option given as a mapping of stream names (the rest get ``fallback``)."""
    if isinstance(value, Mapping):
        return value.get(stream, fallback)
    return value


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def _named_sources(source: Sources) -> dict[str, str | FrameSource]:
    """Stream names for the sources: a mapping's keys, else short names made from the specs."""
    def spec_of(value: object) -> str | FrameSource:
        if isinstance(value, FrameSource):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, Path)) or not str(value):
            raise CtrtError(f"source {value!r}: give a camera index, file, folder, glob, URL or GStreamer pipeline",
                            option="source")
        return str(value)

    if isinstance(source, (bytes, bytearray)):
        raise CtrtError(f"source: got {type(source).__name__}; give a camera index, file, folder, glob, URL or "
                        "GStreamer pipeline (a path as str)", option="source")
    if isinstance(source, Mapping):
        named = {check_stream_name(name): spec_of(spec) for name, spec in source.items()}
    else:
        specs = [spec_of(s) for s in (source if isinstance(source, Sequence) and not isinstance(source, str)
                                      else [source])]
        named = dict(zip(stream_names([s.spec if isinstance(s, FrameSource) else s for s in specs]), specs))
    if not named:
        raise CtrtError("source: give at least one camera index, file, folder, glob or URL", option="source")
    return named
