"""The backend protocol every runtime implements: ``with backend: outputs = backend(feed)``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ...artifacts import ArtifactMeta


class Backend(Protocol):
    """Feeds and outputs are dicts of numpy arrays by tensor name; ``meta`` describes the model's I/O.

    Returned arrays may be reused by the next call (the TensorRT backend's page-locked buffers are).
    """

    meta: ArtifactMeta
    name: str

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
