"""A site file: one model, one tracker, many cameras and where their tracks go (``ctrt run --config site.toml``).

TOML, read with the standard library. Every mistake is one ``CtrtError`` naming the file and the key (and the line
where the TOML parser gives one); nothing is opened while reading it, so ``--check`` needs no model or camera::

    >>> site = read_site_file(Path("site.toml"))
    >>> [c.name for c in site.cameras], site.tracker_for("door")
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..counting.shapes import Shape, shapes_for
from ..errors import CtrtError
from ..inputs import MiB, read_text, regular_file
from ..options import OPTIONS, default, site_keys
from ..runtime.backends.registry import is_remote
from ..runtime.sources import source_files
from ..runtime.stream_setup import check_stream_name
from ..runtime.tracker import TrackerConfig, tracker_preset

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

KeyTypes = dict[str, "type | tuple[type, ...]"]
MODEL_KEYS: KeyTypes = {"path": str, **site_keys("model")}
TRACKER_KEYS: KeyTypes = site_keys("tracker")
OUTPUT_KEYS: KeyTypes = site_keys("outputs")
CAMERA_KEYS: KeyTypes = {"name": str, "source": str, "tracker": dict, "outputs": dict, "lines": list, "zones": list,
                         **site_keys("camera")}
CAMERA_OUTPUT_KEYS: KeyTypes = {"save": bool, "publish": bool}  # this camera in the site's outputs
CAMERA_OUTPUT_DEFAULTS = {"save": True, "publish": True}
# What the keys that are not options of a run (ctrt/options.py) mean: the docs' site-file reference reads them.
OWN_KEYS_HELP = {
    "model.path": ".onnx, .engine, .pth or triton://HOST:PORT/MODEL, relative to the file",
    "camera.name": "the camera's name: its files, topics, metrics and page tile (unique in the site)",
    "camera.source": "camera index, video, folder, glob, URL or GStreamer pipeline",
    "camera.tracker": "a table of tracker keys: this camera's own over [tracker]",
    "camera.outputs": "a table: this camera in the site's outputs ([camera.outputs])",
    "camera.outputs.save": "this camera's files in save_dir",
    "camera.outputs.publish": "this camera's events to the broker",
    "camera.lines": "counting lines: \"NAME:X1,Y1,X2,Y2\" strings or tables {name, points, anchor, classes}",
    "camera.zones": "counting zones: \"NAME:X1,Y1,X2,Y2,X3,Y3,...\" strings or tables {name, points, anchor, classes}",
}
SECTIONS = {"model": MODEL_KEYS, "tracker": TRACKER_KEYS, "outputs": OUTPUT_KEYS, "camera": CAMERA_KEYS}
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table",
              list: "a list"}
# The option each key of a section is, by its site key ("model.topk" -> topk).
SITE_LIMIT = MiB  # a site file of a hundred cameras is a few KiB
SECRET_LIMIT = 64 * 1024  # a token or password; a CA bundle is read by ssl, after the same check
BY_KEY = {o.site: o for o in OPTIONS.values() if o.site and o.name != "threshold"}


@dataclass
class Camera:
    name: str
    source: str
    drop: str | None = None
    reconnects: int | str = default("reconnects")
    tracker: dict[str, Any] = field(default_factory=dict)  # overrides of the site's [tracker]
    save: bool = True  # files in the site's save_dir
    publish: bool = True  # events to the site's broker
    shapes: tuple[Shape, ...] = ()  # its counting lines and zones


@dataclass
class SiteFile:
    """A site file as read and checked: its sections (relative paths resolved against its folder) and cameras.
    ``ctrt.read_site`` gives the face that plans and runs it."""

    path: Path
    model: dict[str, Any]
    tracker: dict[str, Any]
    outputs: dict[str, Any]
    cameras: list[Camera]

    def tracker_for(self, camera: str | None, given: Mapping[str, Any] | None = None) -> TrackerConfig:
        """The site's tracker with the camera's overrides on it (none for None), and ``given`` (the command
        line's, by ``TrackerConfig.from_options`` names) over both."""
        own = next((c.tracker for c in self.cameras if c.name == camera), {})
        options = {**self.tracker, **own, **(given or {})}
        preset = str(options.pop("preset", "centertrack"))
        try:
            return tracker_preset(preset, **options)
        except CtrtError as exc:
            if given and (exc.option in given or (exc.option == "tracker" and "preset" in given)):
                raise
            mine = exc.option in own or (exc.option == "tracker" and "preset" in own)
            where = f"camera {camera!r} tracker" if mine else "tracker"
            raise CtrtError(f"{self.path}: {where}: {exc}", option=exc.option) from None

    @contextmanager
    def blame(self, given: Collection[str]) -> Iterator[None]:
        """A refusal of a value this file gave names the file and its key (one given over it names the option)."""
        try:
            yield
        except CtrtError as exc:
            option = OPTIONS.get(exc.option or "")
            if option is None or option.site is None or exc.option in given:
                raise
            raise CtrtError(exc.render(lambda _: f"{self.path}: {option.site}"), option=exc.option) from None


def read_secret(path: Path, what: str) -> str:
    """A secret from a file (its first line), never echoed back."""
    try:
        lines = read_text(path, limit=SECRET_LIMIT).splitlines()
    except CtrtError as exc:
        raise CtrtError(f"{what}: cannot read {exc}", option=what) from None
    if not lines or not lines[0]:
        raise CtrtError(f"{what}: {path} is empty; put the secret on its first line")
    return lines[0]


def _typed(path: Path, where: str, table: dict[str, Any], keys: Mapping[str, type | tuple[type, ...]],
           section: str | None = None) -> dict[str, Any]:
    """The table's keys known and typed, and each option's value checked against the options table."""
    for key, value in table.items():
        kinds = keys.get(key)
        if kinds is None:
            raise CtrtError(f"{path}: {where}.{key}: unknown key; {where} takes {', '.join(keys)}")
        kind = kinds[0] if isinstance(kinds, tuple) else kinds
        ok = isinstance(value, kinds) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, table[key] = True, float(value)
        if not ok:
            names = " or ".join(TYPE_NAMES[k] for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
            raise CtrtError(f"{path}: {where}.{key}: {value!r} is not {names}")
        if kind is float and not math.isfinite(table[key]):
            raise CtrtError(f"{path}: {where}.{key}: {value!r} is not a finite number")
        option = BY_KEY.get(f"{section or where}.{key}")
        if option is not None and option.kind is not Path:
            try:
                table[key] = option.check(table[key])
            except CtrtError as exc:
                raise CtrtError(exc.render(lambda _: f"{path}: {where}.{key}"), option=option.name) from None
    return table


def _camera(path: Path, index: int, table: Any, base: Path) -> Camera:
    where = f"camera[{index}]"
    if not isinstance(table, dict):
        raise CtrtError(f"{path}: {where}: each [[camera]] is a table")
    _typed(path, where, table, CAMERA_KEYS, "camera")
    for key in ("name", "source"):
        if not table.get(key):
            raise CtrtError(f"{path}: {where}.{key}: missing; every camera has a name and a source")
    name = table["name"]
    try:
        check_stream_name(name)
    except CtrtError as exc:
        raise CtrtError(f"{path}: {where}.name: {name!r}: {str(exc).split(': ', 2)[-1]}") from None
    source = table["source"]
    files = source_files(source)
    is_glob = any(ch in source for ch in "*?[") and not Path(source).exists()
    if is_glob and not Path(source).is_absolute():  # a glob: relative to the site file too
        source = str(base / source)
    elif files:  # a file or folder: relative to the site file
        resolved = files[0] if files[0].is_absolute() else base / files[0]
        if not resolved.exists():
            raise CtrtError(f"{path}: {where}.source: {source} does not exist")
        source = str(resolved)
    tracker = _typed(path, f"{where}.tracker", dict(table.get("tracker", {})), TRACKER_KEYS, "tracker")
    outputs = _typed(path, f"{where}.outputs", dict(table.get("outputs", {})), CAMERA_OUTPUT_KEYS)
    try:
        shapes = shapes_for(name, table.get("lines"), table.get("zones"))
    except CtrtError as exc:
        raise CtrtError(f"{path}: {where}: {exc}", option=exc.option) from None
    chosen = {**CAMERA_OUTPUT_DEFAULTS, **outputs}
    return Camera(name, source, table.get("drop"), table.get("reconnects", default("reconnects")), tracker,
                  chosen["save"], chosen["publish"], shapes)


def read_site_file(path: Path) -> SiteFile:
    """Read and check ``path``; relative paths in it are relative to its folder."""
    if not path.exists():
        raise CtrtError(f"site file not found: {path}", option="config")
    try:
        text = read_text(path, limit=SITE_LIMIT)
    except CtrtError as exc:
        raise CtrtError(f"cannot read site file {exc}", option="config") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CtrtError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise CtrtError(f"{path}: not a site file: arrays or tables nested too deep to read") from None
    for key in data:
        if key not in SECTIONS:
            raise CtrtError(f"{path}: {key}: unknown section; a site file has [model], [tracker], [outputs] and "
                            "[[camera]]")
    for key in ("model", "tracker", "outputs"):
        if not isinstance(data.get(key, {}), dict):
            raise CtrtError(f"{path}: {key}: write it as a [{key}] table")
    model = _typed(path, "model", dict(data.get("model", {})), MODEL_KEYS)
    tracker = _typed(path, "tracker", dict(data.get("tracker", {})), TRACKER_KEYS)
    outputs = _typed(path, "outputs", dict(data.get("outputs", {})), OUTPUT_KEYS)
    cameras_raw = data.get("camera", [])
    if not isinstance(cameras_raw, list) or not cameras_raw:
        raise CtrtError(f"{path}: camera: give at least one [[camera]] with a name and a source")
    base = path.parent
    cameras = [_camera(path, i, table, base) for i, table in enumerate(cameras_raw)]
    seen: set[str] = set()
    for i, camera in enumerate(cameras):
        if camera.name in seen:
            raise CtrtError(f"{path}: camera[{i}].name: {camera.name!r} is already the name of another camera")
        seen.add(camera.name)
    for key in ("path", "save_dir", "publish_ca", "publish_password_file", "http_token_file"):
        for table in (model, outputs):
            if key in table and not Path(table[key]).is_absolute() and not is_remote(table[key]):
                table[key] = str(base / table[key])
    for key in ("publish_ca", "publish_password_file", "http_token_file"):
        if key in outputs and not Path(outputs[key]).exists():
            raise CtrtError(f"{path}: outputs.{key}: {outputs[key]} does not exist")
        if key in outputs:
            try:
                regular_file(Path(outputs[key]))
            except CtrtError as exc:
                raise CtrtError(f"{path}: outputs.{key} {exc}", option=key) from None
    local = model.get("path")
    if local is not None and not is_remote(local) and not Path(local).is_file():
        raise CtrtError(f"{path}: model.path: {local} does not exist")
    site = SiteFile(path, model, tracker, outputs, cameras)
    for camera in cameras:
        site.tracker_for(camera.name)  # every camera's tracker options are checked now, not at its first frame
    return site
