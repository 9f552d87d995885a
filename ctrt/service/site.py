"""A site file: one model, one tracker, many cameras and where their tracks go (``ctrt run --config site.toml``).

TOML, read with the standard library. Every mistake is one ``CtrtError`` naming the file and the key (and the line
where the TOML parser gives one); nothing is opened while reading it, so ``--check`` needs no model or camera::

    >>> site = read_site(Path("site.toml"))
    >>> [c.name for c in site.cameras], site.tracker_for("door")
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CtrtError
from ..runtime.capture import POLICIES
from ..runtime.sources import source_files
from ..runtime.decode import TOPK
from ..runtime.tracker import PRESETS, SPEC_OPTIONS, TrackerConfig, tracker_preset
from .http import HttpOptions
from .mqtt import MqttOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

MODEL_KEYS: dict[str, type] = {"path": str, "device": str, "input_size": str, "topk": int, "threads": int,
                               "transport": str}
TRACKER_KEYS: dict[str, type] = {"preset": str, **SPEC_OPTIONS}
OUTPUT_KEYS: dict[str, type] = {"save_dir": str, "segment": float, "publish": str, "publish_ca": str, "publish_rate": float,
               "publish_buffer": int, "publish_frames": bool, "publish_user": str, "publish_password_file": str,
               "http": str, "http_token_file": str, "stale_after": float, "http_fps": float}
CAMERA_KEYS: dict[str, type] = {"name": str, "source": str, "drop": str, "tracker": dict, "outputs": dict}
CAMERA_OUTPUT_KEYS: dict[str, type] = {"save": bool, "publish": bool}  # this camera in the site's outputs
SECTIONS = {"model": MODEL_KEYS, "tracker": TRACKER_KEYS, "outputs": OUTPUT_KEYS, "camera": CAMERA_KEYS}
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table"}


@dataclass
class Camera:
    name: str
    source: str
    drop: str | None = None
    tracker: dict[str, Any] = field(default_factory=dict)  # overrides of the site's [tracker]
    save: bool = True  # files in the site's save_dir
    publish: bool = True  # events to the site's broker


@dataclass
class Site:
    path: Path
    model: dict[str, Any]
    tracker: dict[str, Any]
    outputs: dict[str, Any]
    cameras: list[Camera]

    def tracker_for(self, camera: str, given: Mapping[str, Any] | None = None) -> TrackerConfig:
        """The site's tracker with the camera's overrides on it, and ``given`` (the command line's) over both."""
        own = next(c.tracker for c in self.cameras if c.name == camera)
        options = {**self.tracker, **own, **(given or {})}
        preset = str(options.pop("preset", "centertrack"))
        try:
            return tracker_preset(preset, **options)
        except CtrtError as exc:
            where = f"camera {camera!r} tracker" if exc.option in own or (exc.option == "tracker" and "preset" in own) \
                else "tracker"
            raise CtrtError(f"{self.path}: {where}: {exc}") from None

    @property
    def sources(self) -> dict[str, str]:
        return {c.name: c.source for c in self.cameras}

    def load_options(self, **given: Any) -> dict[str, Any]:
        """``ctrt.load`` keywords: the site's [model], ``given`` (not None) over it."""
        options: dict[str, Any] = {k: self.model[k] for k in ("device", "threads", "input_size", "transport")
                                  if k in self.model}
        options.update({k: v for k, v in given.items() if v is not None})
        return options

    def track_options(self, tracker: Mapping[str, Any] | None = None, **given: Any) -> dict[str, Any]:
        """``Model.track`` keywords for every camera: its own tracker and drop policy, the site's outputs and
        publishing; ``tracker`` (options by ``TrackerConfig.from_options`` names) and ``given`` (not None) win."""
        options: dict[str, Any] = {
            "source": self.sources, "topk": self.model.get("topk", TOPK),
            "tracker": {c.name: self.tracker_for(c.name, tracker) for c in self.cameras},
            "drop": {c.name: c.drop for c in self.cameras},
            "save_dir": {c.name: self.outputs.get("save_dir") if c.save else None for c in self.cameras},
            "segment": self.outputs.get("segment"), "published": [c.name for c in self.cameras if c.publish],
        }
        options.update({k: v for k, v in given.items() if v is not None})
        return options

    def http_options(self, **given: Any) -> HttpOptions | None:
        """The site's [outputs] HTTP settings with ``given`` (not None) over them, or None when nothing is served.
        The token comes from ``http_token_file`` (else ``CTRT_HTTP_TOKEN``)."""
        keys = {"http": "bind", "stale_after": "stale_after", "http_fps": "fps"}
        merged = {**{k: v for k, v in self.outputs.items() if k in keys}, **{k: v for k, v in given.items()
                                                                               if v is not None}}
        if not merged.get("http"):
            return None
        options = {keys[k]: v for k, v in merged.items()}
        secret = self.outputs.get("http_token_file")
        if secret:
            options["token"] = read_secret(Path(secret), f"{self.path}: outputs.http_token_file")
        return HttpOptions(**options)

    def publish_options(self, **given: Any) -> MqttOptions | None:
        """The site's [outputs] publish settings with ``given`` (not None) over them, or None when nothing is
        published. The password comes from ``publish_password_file`` (else ``CTRT_MQTT_PASSWORD``)."""
        keys = {"publish": "url", "publish_ca": "ca", "publish_rate": "rate_hz", "publish_buffer": "buffer",
                "publish_frames": "frames", "publish_user": "user"}
        merged = {**{k: v for k, v in self.outputs.items() if k in keys}, **{k: v for k, v in given.items()
                                                                               if v is not None}}
        if not merged.get("publish"):
            return None
        options = {keys[k]: v for k, v in merged.items()}
        if options.get("ca") is not None:
            options["ca"] = Path(options["ca"])
        secret = self.outputs.get("publish_password_file")
        if secret:
            options["password"] = read_secret(Path(secret), f"{self.path}: outputs.publish_password_file")
        return MqttOptions(**options)


def read_secret(path: Path, what: str) -> str:
    """A secret from a file (its first line), never echoed back."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CtrtError(f"{what}: cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
    if not lines or not lines[0]:
        raise CtrtError(f"{what}: {path} is empty; put the secret on its first line")
    return lines[0]


def _typed(path: Path, where: str, table: dict[str, Any], keys: dict[str, type]) -> dict[str, Any]:
    for key, value in table.items():
        kind = keys.get(key)
        if kind is None:
            raise CtrtError(f"{path}: {where}.{key}: unknown key; {where} takes {', '.join(keys)}")
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, table[key] = True, float(value)
        if not ok:
            raise CtrtError(f"{path}: {where}.{key}: {value!r} is not {TYPE_NAMES[kind]}")
        if kind is float and not math.isfinite(table[key]):
            raise CtrtError(f"{path}: {where}.{key}: {value!r} is not a finite number")
    return table


def _camera(path: Path, index: int, table: Any, base: Path) -> Camera:
    where = f"camera[{index}]"
    if not isinstance(table, dict):
        raise CtrtError(f"{path}: {where}: each [[camera]] is a table")
    _typed(path, where, table, CAMERA_KEYS)
    for key in ("name", "source"):
        if not table.get(key):
            raise CtrtError(f"{path}: {where}.{key}: missing; every camera has a name and a source")
    name = table["name"]
    if not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
        raise CtrtError(f"{path}: {where}.name: {name!r}: use letters, digits, '-', '_' and '.' (it names files "
                        "and MQTT topics)")
    if table.get("drop") is not None and table["drop"] not in POLICIES:
        raise CtrtError(f"{path}: {where}.drop: {table['drop']!r}: choose {' or '.join(POLICIES)}")
    source = table["source"]
    files = source_files(source)
    if files and not any(ch in source for ch in "*?["):  # a file or folder: relative to the site file
        resolved = files[0] if files[0].is_absolute() else base / files[0]
        if not resolved.exists():
            raise CtrtError(f"{path}: {where}.source: {source} does not exist")
        source = str(resolved)
    tracker = _typed(path, f"{where}.tracker", dict(table.get("tracker", {})), TRACKER_KEYS)
    outputs = _typed(path, f"{where}.outputs", dict(table.get("outputs", {})), CAMERA_OUTPUT_KEYS)
    return Camera(name, source, table.get("drop"), tracker, outputs.get("save", True), outputs.get("publish", True))


def read_site(path: Path) -> Site:
    """Read and check ``path``; relative paths in it are relative to its folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CtrtError(f"site file not found: {path}", option="config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CtrtError(f"cannot read site file {path}: {exc}", option="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise CtrtError(f"{path}: not valid TOML: {exc}") from None
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
    if "preset" in tracker and tracker["preset"] not in PRESETS:
        raise CtrtError(f"{path}: tracker.preset: {tracker['preset']!r}: choose {', '.join(PRESETS)}")
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
            if key in table and not Path(table[key]).is_absolute() and "://" not in table[key]:
                table[key] = str(base / table[key])
    for key in ("publish_ca", "publish_password_file", "http_token_file"):
        if key in outputs and not Path(outputs[key]).is_file():
            raise CtrtError(f"{path}: outputs.{key}: {outputs[key]} does not exist")
    local = model.get("path")
    if local is not None and "://" not in local and not Path(local).is_file():
        raise CtrtError(f"{path}: model.path: {local} does not exist")
    site = Site(path, model, tracker, outputs, cameras)
    for camera in cameras:
        site.tracker_for(camera.name)  # every camera's tracker options are checked now, not at its first frame
    return site
