"""``ctrt eval --plot``: the comparison as grouped bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..bench import pyplot
from ..outputs import atomic_output

MOT_SHOWN = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")


def _bars(axis: Any, groups: list[str], series: dict[str, list[float]], title: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        axis.bar(np.arange(len(groups)) + i * width, values, width, label=label)
    axis.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, groups, fontsize=8)
    axis.set_ylim(min(0.0, *(v for vs in series.values() for v in vs)), 1.0)
    axis.set_title(title)
    axis.legend(fontsize=7)


def plot_eval(data: dict[str, Any], path: Path) -> None:
    """MOT: combined metrics per entry, IDF1 per sequence and, with lines or zones, nwRMSE per line and direction
    (zone and event); COCO: AP per model."""
    plt = pyplot()
    if data["kind"] == "mot":
        counts = data.get("counts")
        figure, axes = plt.subplots(1, 3 if counts else 2, figsize=(19.5 if counts else 13, 4.5))
        labels = [e["label"] for e in data["entries"]]
        scores = data["scores"]
        _bars(axes[0], list(MOT_SHOWN), {label: [scores[label]["combined"][m] for m in MOT_SHOWN] for label in labels},
              "all sequences")
        _bars(axes[1], data["sequences"], {label: [scores[label][s]["IDF1"] for s in data["sequences"]]
                                           for label in labels}, "IDF1 per sequence")
        if counts:
            keys = list(counts[labels[0]]["combined"])
            _bars(axes[2], keys, {label: [counts[label]["combined"][k]["nwRMSE"] or 0.0 for k in keys]
                                  for label in labels}, "counting: AI City nwRMSE, sequences combined")
    else:
        figure, axis = plt.subplots(1, 1, figsize=(8, 4.5))
        names = list(next(iter(data["scores"].values())))
        _bars(axis, names, {Path(model).name: [v or 0.0 for v in values.values()]
                            for model, values in data["scores"].items()}, f"bbox AP, {data['images']} images")
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
