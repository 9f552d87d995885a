"""Tracking metrics by TrackEval, the official MOTChallenge evaluator (HOTA, CLEAR MOT, identity), with its
MOTChallenge pre-processing: pedestrians only, ground truth marked "do not consider" and distractor classes
(person on vehicle, static person, distractor, reflection) removed together with the tracks matched to them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ..errors import CtrtError
from .mot import Sequence

METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")
COUNTS = ("IDSW", "FP", "FN")  # integers; the rest are shares in [0, 1] (MOTA can go below 0)
COMBINED = "combined"


def _pick(result: dict) -> dict[str, float]:
    hota, clear, identity = result["HOTA"], result["CLEAR"], result["Identity"]
    return {"HOTA": float(np.mean(hota["HOTA"])), "DetA": float(np.mean(hota["DetA"])),
            "AssA": float(np.mean(hota["AssA"])), "MOTA": float(clear["MOTA"]), "IDF1": float(identity["IDF1"]),
            "IDSW": float(clear["IDSW"]), "FP": float(clear["CLR_FP"]), "FN": float(clear["CLR_FN"])}


def score(sequences: list[Sequence], trackers: Path, labels: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``trackers/<i>/data/<sequence>.txt`` for the i-th label -> label -> sequence (and "combined") -> metric."""
    try:
        import trackeval
    except ImportError:
        raise CtrtError("ctrt eval needs TrackEval: pip install 'ctrt[eval]'") from None
    roots = {s.folder.parent for s in sequences}
    if len(roots) != 1:
        raise CtrtError("ctrt eval takes sequences from one folder")
    dataset = {"GT_FOLDER": str(roots.pop()), "TRACKERS_FOLDER": str(trackers), "OUTPUT_FOLDER": str(trackers),
               "TRACKERS_TO_EVAL": [str(i) for i in range(len(labels))], "SKIP_SPLIT_FOL": True,
               "SEQ_INFO": {s.name: s.length for s in sequences}, "PRINT_CONFIG": False}
    quiet = {"PRINT_RESULTS": False, "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
             "PLOT_CURVES": False, "TIME_PROGRESS": False, "USE_PARALLEL": False, "DISPLAY_LESS_PROGRESS": True,
             "BREAK_ON_ERROR": True, "RETURN_ON_ERROR": False, "LOG_ON_ERROR": None}
    metric_config = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints its progress and configs
        try:
            results, _ = trackeval.Evaluator(quiet).evaluate(
                [trackeval.datasets.MotChallenge2DBox(dataset)],
                [trackeval.metrics.HOTA(metric_config), trackeval.metrics.CLEAR(metric_config),
                 trackeval.metrics.Identity(metric_config)])
        except trackeval.utils.TrackEvalException as exc:
            raise CtrtError(f"TrackEval: {exc}") from None
    scores = {}
    for index, label in enumerate(labels):
        per = results["MotChallenge2DBox"][str(index)]
        scores[label] = {name: _pick(per[name]["pedestrian"]) for name in [s.name for s in sequences]}
        scores[label][COMBINED] = _pick(per["COMBINED_SEQ"]["pedestrian"])
    return scores
