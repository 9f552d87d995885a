"""What a model's user should know before trusting its detections (``Model.notes``)."""

from __future__ import annotations

from ..artifacts import ArtifactMeta
from .backends.base import Backend


def meta_notes(meta: ArtifactMeta) -> list[str]:
    """An artifact's weights that mean little or nothing outside ctrt's own scenes."""
    from ..model.config import BUILTINS

    if meta.random_weights:
        return ["this model has random (seeded) weights; its detections mean nothing"]
    if meta.builtin:
        return [BUILTINS.get(meta.builtin, meta.builtin)]
    return []


def model_notes(backend: Backend) -> list[str]:
    """``meta_notes``, and what the backend says of itself on this machine (``Backend.notes``)."""
    return meta_notes(backend.meta) + list(getattr(backend, "notes", None) or [])
