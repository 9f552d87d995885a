"""Metadata carried by every artifact (ONNX, engine, calibration cache).

The metadata is a JSON sidecar ``<artifact>.json`` next to the file; ONNX files also embed the same JSON in their
``metadata_props`` so a model copied on its own still describes itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import CtrtError
from .model.config import MEAN_BGR, STD_BGR, ModelConfig

ONNX_METADATA_KEY = "ctrt"


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
    extra: dict[str, Any] = field(default_factory=dict)

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
