"""Metadata carried by every artifact (ONNX, engine, calibration cache).

The metadata is a JSON sidecar ``<artifact>.json`` next to the file; ONNX files also embed the same JSON in their
``metadata_props`` so a model copied on its own still describes itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .version import __version__
from .errors import CtrtError
from .inputs import parse_json, read_text
from .model.config import MEAN_BGR, STD_BGR, ModelConfig
from .trt_rules import TOPK_MAX_K

ONNX_METADATA_KEY = "ctrt"
TensorSpecs = dict[str, tuple[str, list[int]]]  # name -> (numpy dtype name, dims; -1 = the dynamic batch)


@dataclass(frozen=True)
class GraphRecord:
    """What ``ctrt export`` put into the graph."""

    opset: int
    simplified: bool
    source_size: tuple[int, int] | None = None  # H, W of the raw frames the graph letterboxes itself
    topk: int | None = None  # K of the in-graph decode

    @property
    def decode_in_graph(self) -> bool:
        return self.topk is not None


@dataclass(frozen=True)
class QuantRecord:
    """How ``ctrt quantize`` made a Q/DQ INT8 ONNX."""

    source: str  # the FP32 ONNX it came from
    source_sha256: str
    calibration_sha256: str
    calibration_images: int
    method: str
    target: str  # "tensorrt" (symmetric, what TensorRT builds) | "cpu" (ONNX Runtime's x86 kernels)


@dataclass(frozen=True)
class EngineRecord:
    """Where and from what ``ctrt build`` made an engine: an engine only runs where it was built."""

    tensorrt: str
    gpu: str
    compute_capability: str
    onnx: str
    onnx_sha256: str
    fp32_layers: int
    cuda_bindings: str
    io: TensorSpecs  # what a server needs to declare the engine's tensors (ctrt triton)
    dla_core: int | None = None
    max_batch: int | None = None  # the profile's largest batch, for a dynamic-batch engine
    calibration_cache: str | None = None


@dataclass(frozen=True)
class CalibrationRecord:
    """The key of a TensorRT calibration cache: reused only when all of it matches."""

    onnx_sha256: str
    calibration_sha256: str
    input_shape: tuple[int, ...]
    tensorrt: str
    algorithm: str
    images: int


Record = TypeVar("Record", GraphRecord, QuantRecord, EngineRecord, CalibrationRecord)


def _record(cls: type[Record], data: dict[str, Any] | None) -> Record | None:
    if data is None:
        return None
    data = dict(data)  # JSON turned tuples into lists
    for key in ("source_size", "input_shape"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    if "io" in data:
        data["io"] = {name: (dtype, list(dims)) for name, (dtype, dims) in data["io"].items()}
    return cls(**data)


def _from_extra(kind: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Sidecars written before the typed records kept everything in one ``extra`` dict."""
    records: dict[str, Any] = {}
    if "opset" in extra:
        records["graph"] = {"opset": extra["opset"], "simplified": extra.get("simplified", True),
                            "source_size": extra.get("source_size") if extra.get("preprocess") == "graph" else None,
                            "topk": extra.get("topk") if extra.get("decode") == "graph" else None}
    if "quantized_for" in extra:
        records["quantization"] = {
            "source": extra.get("quantized_from", ""), "source_sha256": extra.get("quantized_from_sha256", ""),
            "calibration_sha256": extra.get("calibration_sha256", ""),
            "calibration_images": extra.get("calibration_images", 0),
            "method": extra.get("calibration_method", ""), "target": extra["quantized_for"]}
    if kind == "engine":
        names = {f.name for f in fields(EngineRecord)}
        records["engine"] = {k: v for k, v in extra.items() if k in names} | {"io": extra.get("io") or {}}
    if kind == "calibration":
        names = {f.name for f in fields(CalibrationRecord)}
        records["calibration"] = {k: v for k, v in extra.items() if k in names}
    return records


@dataclass
class ArtifactMeta:
    kind: str  # "onnx" | "engine" | "calibration"
    model: dict[str, Any]
    input_size: tuple[int, int]  # H, W
    batch: int  # 0 = dynamic
    precision: str
    source: str
    source_sha256: str
    inputs: list[str]
    outputs: list[str]
    mean: tuple[float, ...] = MEAN_BGR
    std: tuple[float, ...] = STD_BGR
    random_weights: bool = False
    builtin: str = ""  # "demo": the built-in demo model, fitted to generated scenes only
    ctrt_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    graph: GraphRecord | None = None  # ONNX and engines
    quantization: QuantRecord | None = None  # a Q/DQ ONNX and the engines built from it
    engine: EngineRecord | None = None
    calibration: CalibrationRecord | None = None

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, origin: str) -> ArtifactMeta:
        """The metadata in ``text``, every field checked (``origin`` names the file in the one-line error)."""
        data = parse_json(text, f"metadata of {origin}")
        if isinstance(data, dict) and isinstance(data.get("extra"), dict):
            data.update(_from_extra(str(data.get("kind")), data.pop("extra")))
        _check_meta(data, origin)
        data["input_size"] = tuple(data["input_size"])
        data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
        try:
            data["graph"] = _record(GraphRecord, data.get("graph"))
            data["quantization"] = _record(QuantRecord, data.get("quantization"))
            data["engine"] = _record(EngineRecord, data.get("engine"))
            data["calibration"] = _record(CalibrationRecord, data.get("calibration"))
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CtrtError(f"metadata of {origin} is unreadable ({exc}); re-export the model with ctrt export") from None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _heads(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and _whole(v, 1, 4096) for k, v in value.items())


def _names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _size(value: Any, multiple: int, high: int) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_whole(v, 1, high) and v % multiple == 0 for v in value)


# The sidecar's schema, one rule per field: what it must be and how the error describes it. Records (graph,
# engine, ...) are objects or null; their own fields are checked by the dataclasses they load into.
_META_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "kind": (lambda v: v in ("onnx", "engine", "calibration"), "onnx, engine or calibration"),
    "model": (lambda v: isinstance(v, dict), "an object (arch, heads, pre_img, pre_hm, stem)"),
    "model.arch": (lambda v: v in (68, 85) and not isinstance(v, bool), "68 or 85"),
    "model.heads": (_heads, "an object of head names and channel counts"),
    "model.pre_img": (lambda v: isinstance(v, bool), "true or false"),
    "model.pre_hm": (lambda v: isinstance(v, bool), "true or false"),
    "model.stem": (lambda v: isinstance(v, bool), "true or false"),
    "input_size": (lambda v: _size(v, 32, 16384), "[H, W], multiples of 32"),
    "batch": (lambda v: _whole(v, 0, 4096), "a batch size (0: dynamic)"),
    "precision": (lambda v: v in ("fp32", "fp16", "int8"), "fp32, fp16 or int8"),
    "inputs": (_names, "a list of input names"),
    "outputs": (_names, "a list of output names"),
    "mean": (lambda v: isinstance(v, list) and len(v) == 3 and all(map(_finite, v)), "three numbers (B, G, R)"),
    "std": (lambda v: isinstance(v, list) and len(v) == 3 and all(_finite(x) and x > 0 for x in v),
            "three numbers > 0 (B, G, R)"),
    "source": (lambda v: isinstance(v, str), "a text"),
    "source_sha256": (lambda v: isinstance(v, str), "a text"),
    "random_weights": (lambda v: isinstance(v, bool), "true or false"),
    "builtin": (lambda v: isinstance(v, str), "a text"),
    "graph": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "graph.opset": (lambda v: _whole(v, 7, 30), "an ONNX opset"),
    "graph.source_size": (lambda v: v is None or _size(v, 1, 16384), "[H, W] or null"),
    "graph.topk": (lambda v: v is None or _whole(v, 1, TOPK_MAX_K), f"a K from 1 to {TOPK_MAX_K} or null"),
    "quantization": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "engine": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "calibration": (lambda v: v is None or isinstance(v, dict), "an object or null"),
}
_REQUIRED = ("kind", "model", "input_size", "batch", "precision", "inputs", "outputs")


def _check_meta(data: Any, origin: str) -> None:
    """One line naming the first field of a sidecar that is missing or not what ctrt wrote there."""
    def refuse(field: str, problem: str) -> None:
        raise CtrtError(f"metadata of {origin}: {field} {problem}; re-export the model with ctrt export")

    if not isinstance(data, dict):
        refuse("the document", "is not a JSON object")
    for name in _REQUIRED:
        if name not in data:
            refuse(name, "is missing")
    for name in ("arch", "heads", "pre_img", "pre_hm", "stem"):
        if isinstance(data["model"], dict) and name not in data["model"]:
            refuse(f"model.{name}", "is missing")
    for name, (valid, want) in _META_RULES.items():
        parent, _, child = name.partition(".")
        holder = data.get(parent) if child else data
        key = child or name
        if not isinstance(holder, dict) or key not in holder:
            continue
        if not valid(holder[key]):
            refuse(name, f"is {json.dumps(holder[key])[:40]}, not {want}")


def embed_meta(model: Any, meta: ArtifactMeta) -> None:
    """Replace the ctrt entry in an ``onnx.ModelProto``'s metadata_props with ``meta``."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (ONNX_METADATA_KEY, meta.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_meta(artifact: Path) -> ArtifactMeta:
    """Sidecar first, then (for ONNX) the embedded copy."""
    if not artifact.is_file():
        raise CtrtError(f"model not found: {artifact}")
    side = sidecar_path(artifact)
    if side.is_file():
        return ArtifactMeta.from_json(read_text(side), str(side))
    if artifact.suffix == ".onnx":
        import onnx

        try:
            model = onnx.load(str(artifact), load_external_data=False)
        except Exception as exc:  # protobuf raises its own DecodeError on a file that is not ONNX
            raise CtrtError(f"{artifact} is not a readable ONNX file: {str(exc).splitlines()[0]}") from None
        for prop in model.metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                return ArtifactMeta.from_json(prop.value, str(artifact))
    raise CtrtError(f"{artifact} has no ctrt metadata ({side.name} missing); produce it with ctrt export")
