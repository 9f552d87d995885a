"""How a long job (export, quantize, build) tells the user what it is doing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A phase passes (the next one replaces it on a terminal); ``keep`` marks a finding the user should still
    see when the job is done (which images calibrated, a reused cache, a warning)."""

    def __call__(self, text: str, keep: bool = False) -> None: ...


def silent(text: str, keep: bool = False) -> None:
    """For callers that show nothing."""
