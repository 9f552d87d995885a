"""Metadata carried by every artifact (ONNX, engine, calibration cache).

The metadata is a JSON sidecar ``<artifact>.json`` next to the file; ONNX files also embed the same JSON in their
``metadata_props`` so a model copied on its own still describes itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from . import __version__
from .errors import CtrtError
from .model.config import MEAN_BGR, STD_BGR, ModelConfig

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
        try:
            data = json.loads(text)
            data["input_size"] = tuple(data["input_size"])
            data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
            if "extra" in data:
                data.update(_from_extra(data["kind"], data.pop("extra")))
            data["graph"] = _record(GraphRecord, data.get("graph"))
            data["quantization"] = _record(QuantRecord, data.get("quantization"))
            data["engine"] = _record(EngineRecord, data.get("engine"))
            data["calibration"] = _record(CalibrationRecord, data.get("calibration"))
            return cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise CtrtError(f"metadata of {origin} is unreadable ({exc}); re-export the model with ctrt export") from None


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
        return ArtifactMeta.from_json(side.read_text(), str(side))
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
