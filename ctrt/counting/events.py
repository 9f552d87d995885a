"""What counting tells: each crossing, enter and leave (``CountEvent``), what the annotated frame draws
(``Overlay``), and who is in a zone from its totals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CountEvent:
    """A crossing (``cross``, ``direction`` in or out), or a zone's ``enter`` or ``leave`` (with ``dwell_s``, the
    seconds it stayed, when the camera's rate is known)."""

    event: str
    name: str
    id: int
    cls: int
    direction: str | None = None
    dwell_s: float | None = None
    totals: dict[str, dict[str, int]] | None = field(default=None, compare=False)  # its line's or zone's, after it

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"event": self.event, "name": self.name, "id": self.id, "class": self.cls}
        if self.direction is not None:
            out["direction"] = self.direction
        if self.event == "leave":
            out["dwell_s"] = None if self.dwell_s is None else round(self.dwell_s, 3)
        return out


@dataclass(frozen=True)
class Overlay:
    """What the annotated frame draws of a stream's counting: each line (with an arrow to its ``in`` side) and
    zone in pixels, labelled with its totals. Made again only when a count changes; never changed once made."""

    shapes: tuple[tuple[str, np.ndarray, str], ...]  # (line or zone, [P, 2] pixels, label)


def inside(kinds: dict[str, dict[str, int]], carried: dict[str, int] | None = None) -> dict[str, int]:
    """Enters less leaves by class: every enter is followed by one leave (the zone left, the track ended, the
    camera away), less ``carried``, those an earlier run left inside."""
    enter, leave, carried = kinds["enter"], kinds["leave"], carried or {}
    inside = {c: n - leave.get(c, 0) - carried.get(c, 0) for c, n in enter.items()}
    return {c: n for c, n in inside.items() if n > 0}
