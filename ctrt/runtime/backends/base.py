"""The backend protocol every runtime implements: ``with backend: outputs = backend(feed)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from ...artifacts import ArtifactMeta


class Backend(Protocol):
    """Feeds and outputs are dicts of numpy arrays by tensor name; ``meta`` describes the model's I/O.

    Returned arrays may be reused by the next call (the TensorRT backend's page-locked buffers are).
    """

    meta: ArtifactMeta
    name: str

    # Optional capabilities, declared (None where a backend has none) as Polygraphy's runners declare
    # inference_time; ``ctrt bench`` reads them. A backend may also have ``notes``: lines its user should read
    # about it on this machine (``model_notes`` reads them where present).
    @property
    def last_ms(self) -> Mapping[str, float] | None:
        """Device-side stage times of the last call ({"h2d", "compute", "d2h"}, from CUDA events)."""

    @property
    def device_bytes(self) -> int | None:
        """Device memory held: I/O buffers and the engine's activations."""

    @property
    def run_on_device(self) -> Callable[[], object] | None:
        """One execution on the inputs already on the device, no copies (trtexec's --noDataTransfers)."""

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
