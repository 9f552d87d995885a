"""``ctrt eval`` (TrackEval and pycocotools, models side by side) and ``ctrt make-data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ..errors import CtrtError
from ..outputs import check_outputs
import json
from collections.abc import Callable
from dataclasses import asdict

from ..version import __version__
from ..options import check, default
from .app import command, console, local, next_steps, notes, opt, sidecars, titled, write_results

MAX_STRIDE = 30  # --stride: a second between two tracked frames of a 30 FPS camera


@command(example="ctrt make-data pedestrians data/ped --count 3 --frames 600")
def make_data(
    kind: Annotated[str, typer.Argument(help="pedestrians (street scenes with groups and people turning back at the counting lines: MOT gt and lines.txt, for --tracker-only), demo-mot (demo-scene frames + MOT gt) or demo-coco (demo-scene images + COCO json)")],
    output: Annotated[Path, typer.Argument(help="a new folder")],
    count: Annotated[int, typer.Option(min=1, max=1000, rich_help_panel="Data", help="sequences (MOT) or images (COCO)")] = 3,
    frames: Annotated[int, typer.Option(min=2, max=100000, rich_help_panel="Data", help="frames per sequence")] = 300,
    size: Annotated[str, typer.Option(rich_help_panel="Data", help="WxH of demo frames")] = "640x360",
    seed: Annotated[int, typer.Option(min=0, rich_help_panel="Data", help="the first sequence's seed; the next ones count up")] = 0,
) -> None:
    """Make an evaluation set with exact ground truth (MOTChallenge or COCO format)."""
    from ..eval.datasets import make_dataset
    from ..sizes import parse_frame_size

    with console.status(f"writing {kind} to {escape(str(output))}"):
        make_dataset(kind, output, count, frames, parse_frame_size(size, "size"), seed)
    console.print(f"wrote {escape(str(output))}", soft_wrap=True)
    if kind == "pedestrians":
        next_steps(f"ctrt eval --tracker-only --mot {output} --tracker centertrack --tracker robust")
    elif kind == "demo-mot":
        next_steps(f"ctrt eval export/hardnet_85_demo_256x256.onnx --mot {output} --classes all")
    else:
        next_steps(f"ctrt eval export/hardnet_85_demo_256x256.onnx --coco {output}/annotations.json "
                   f"--images {output}/images")


def _delta(value: float, base: float, share: bool) -> str:
    shown = f"{value:.3f}" if share else f"{value:.0f}"
    if value == base:
        return shown
    return f"{shown} ({value - base:+.3f})" if share else f"{shown} ({value - base:+.0f})"


@command(flags={"tracker": "--tracker"}, example="ctrt eval export/m.onnx export/m_int8.onnx --mot MOT17/train")
def eval(
    models: Annotated[Optional[list[str]], typer.Argument(help="models to compare (.onnx, .engine, .pth, triton://); the first is the baseline")] = None,
    mot: Annotated[Optional[Path], typer.Option(rich_help_panel="Sources", help="MOTChallenge sequences: SEQ/img1 (or a video) + SEQ/gt/gt.txt")] = None,
    coco: Annotated[Optional[Path], typer.Option(rich_help_panel="Sources", help="COCO instances JSON: detection AP")] = None,
    images: Annotated[Optional[Path], typer.Option(rich_help_panel="Sources", help="with --coco: the images folder")] = None,
    tracker_only: Annotated[bool, typer.Option(rich_help_panel="Tracker", help="--mot: feed noisy ground truth straight to the tracker (no model): association quality alone")] = False,
    tracker: Annotated[Optional[list[str]], typer.Option(rich_help_panel="Tracker", help="tracker settings to compare: centertrack, robust, or options on a preset, e.g. max_age=30 or robust,low_thresh=0.1 (repeat)")] = None,
    classes: Annotated[str, typer.Option(rich_help_panel="Sources", help="--mot: classes tracked: person (COCO class 1), all, or numbers like 1,3")] = "person",
    k: Annotated[int, opt("topk")] = default("topk"),
    track_thresh: Annotated[float, opt("track_thresh")] = default("track_thresh"),
    max_images: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Sources", help="--coco: the first N images (by id)")] = None,
    seed: Annotated[int, typer.Option(min=0, rich_help_panel="Tracker", help="--tracker-only: seed of the detection noise")] = 0,
    offset_noise: Annotated[Optional[float], typer.Option(min=0.0, max=100.0, rich_help_panel="Tracker", help="--tracker-only: std of the tracking offsets' error in px (default 1.5, a precise model): how a setting holds up with a less precise one")] = None,
    stride: Annotated[Optional[list[int]], typer.Option(min=1, max=MAX_STRIDE, rich_help_panel="Tracker", help="--tracker-only: track every Nth frame, as a loop slower than the camera does (repeat: 1, 2, 3, 5 side by side)")] = None,
    device: Annotated[str, opt("device")] = default("device"),
    threads: Annotated[int, opt("threads")] = default("threads"),
    input_size: Annotated[Optional[str], typer.Option(rich_help_panel="Model and device", help="HxW for .pth checkpoints (default 512x512)")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", rich_help_panel="Outputs", help="every metric, per sequence and combined")] = None,
    plot_out: Annotated[Optional[Path], typer.Option("--plot", rich_help_panel="Outputs", help="PNG: metrics per model and per sequence")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(rich_help_panel="Outputs", help="--mot: a new folder for the tracker files, <entry>/data/<SEQ>.txt in MOTChallenge format")] = None,
    line: Annotated[Optional[list[str]], typer.Option(rich_help_panel="Counting", help="--mot: NAME:X1,Y1,X2,Y2 (pixels, or fractions of the frame): count crossings with ctrt's rule on the ground truth and on each entry's tracks, scored per direction (error, AI City's nwRMSE); repeat (default: the sequences' lines.txt, which ctrt make-data writes)")] = None,
    zone: Annotated[Optional[list[str]], typer.Option(rich_help_panel="Counting", help="--mot: NAME:X1,Y1,X2,Y2,X3,Y3,...: count the entries and exits of a zone with ctrt's rule on the ground truth and on each entry's tracks, scored as lines are; repeat")] = None,
) -> None:
    """Score models (or tracker settings) side by side: tracking with TrackEval (HOTA, MOTA, IDF1) or detection AP
    with pycocotools."""
    from ..api import load
    from ..counting.shapes import shapes_for
    from ..eval.evaluate import at_strides, comparison, evaluate_mot, parse_classes, write_tracker_files
    from ..eval.plots import plot_eval
    from ..eval.mot import LINES_FILE, find_sequences, sequence_lines
    from ..eval.synthetic import DetectionNoise

    models = models or []
    if (mot is None) == (coco is None):
        raise CtrtError("give --mot DIR (tracking) or --coco ANNOTATIONS.json --images DIR (detection)")
    if tracker_only and (models or coco):
        raise CtrtError("--tracker-only scores tracker settings on --mot ground truth, without models")
    if not tracker_only and not models:
        raise CtrtError("give one or more models to evaluate, or --tracker-only")
    if offset_noise is not None and not tracker_only:
        raise CtrtError("--offset-noise sets the noise of --tracker-only's detections; models make their own")
    if stride and not tracker_only:
        raise CtrtError("--stride plays a slower loop on --tracker-only's detections; a model tracks every frame")
    if (line or zone) and mot is None:
        raise CtrtError(f"{'--line' if line else '--zone'} counts on --mot sequences")
    if save_dir is not None and save_dir.exists():
        raise CtrtError(f"--save-dir {save_dir} exists; give a new folder")
    check_outputs({"--json": json_out, "--plot": plot_out, "--save-dir": save_dir},
                  [*sidecars(*map(local, models)), coco, images, mot])

    def open_model(model: str) -> Any:
        opened = load(model, device=device, threads=threads, input_size=input_size)
        notes(opened.notes)
        return opened

    if coco is not None:
        _eval_coco(models, coco, images, max_images, check("topk", k), open_model, json_out, plot_out)
        return
    assert mot is not None
    entries = at_strides(comparison(models, tracker, check("track_thresh", track_thresh)),
                         tuple(dict.fromkeys(stride or [1])))
    sequences = find_sequences(mot)
    specs = line or sequence_lines(sequences)
    lines = (*(shapes_for("--mot" if line else f"--mot {mot}: {LINES_FILE}", specs) if specs else ()),
             *(shapes_for("--mot", None, zone) if zone else ()))
    names = [shape.name for shape in lines]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise CtrtError(f"--zone {twice}: a line has this name; give the zone another", option="zone")
    noise = DetectionNoise() if offset_noise is None else DetectionNoise(offset_noise_px=offset_noise)
    with console.status("evaluating") as status:
        result = evaluate_mot(sequences, entries, open_model, check("topk", k), parse_classes(classes), noise=noise, seed=seed,
                              progress=lambda text: status.update(escape(text)), lines=lines)
    _mot_tables(result, len(sequences))
    if lines:
        _count_table(result)
    data = {"schema": 1, "ctrt_version": __version__, "kind": "mot", "tracker_only": tracker_only,
            **({"detection_noise": asdict(noise), "noise_seed": seed} if tracker_only else {}),
            "sequences": result.sequences, "entries": [{"label": e.label, "model": e.model, "stride": e.stride,
                                                        "tracker": asdict(e.tracker)} for e in entries],
            "scores": result.scores, **({"counts": result.counts} if lines else {})}
    if save_dir is not None:
        from ..outputs import atomic_folder

        with atomic_folder(save_dir) as folder:
            write_tracker_files(folder, entries, result.files)
            (folder / "entries.json").write_text(json.dumps(data["entries"], indent=1))
        console.print(f"wrote the tracker files to {escape(str(save_dir))}/<entry>/data/<sequence>.txt, TrackEval's "
                      "layout (entries.json says which entry is which)", soft_wrap=True)
    write_results(data, json_out, plot_out, plot_eval)


def _mot_tables(result: Any, sequences: int) -> None:
    from ..eval.scores import COMBINED, COUNTS, METRICS

    base = result.scores[result.labels[0]][COMBINED]
    table = titled(f"TrackEval, {sequences} sequence(s) combined; (deltas vs the first)")
    table.add_column("")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for label in result.labels:
        row = result.scores[label][COMBINED]
        table.add_row(escape(label), *[_delta(row[m], base[m], m not in COUNTS) for m in METRICS])
    console.print(table)
    if sequences > 1:
        per = titled("per sequence: IDF1 / MOTA / HOTA")
        per.add_column("")
        for name in result.sequences:
            per.add_column(escape(name), justify="right")
        for label in result.labels:
            scores = result.scores[label]
            per.add_row(escape(label), *[f"{scores[n]['IDF1']:.3f} / {scores[n]['MOTA']:.3f} / {scores[n]['HOTA']:.3f}"
                                          for n in result.sequences])
        console.print(per)


def _count_table(result: Any) -> None:
    table = titled("counting, sequences combined: true / counted (missed, extra), AI City nwRMSE")
    table.add_column("")
    keys = list(result.counts[result.labels[0]]["combined"])
    for key in keys:
        table.add_column(escape(key), justify="right")
    for label in result.labels:
        rows = result.counts[label]["combined"]
        table.add_row(escape(label), *[
            f"{rows[k]['true']} / {rows[k]['counted']} (-{rows[k]['missed']} +{rows[k]['extra']}), "
            + (f"{rows[k]['nwRMSE']:.3f}" if rows[k]["nwRMSE"] is not None else "-") for k in keys])
    console.print(table)


def _eval_coco(models: list[str], coco: Path, images: Optional[Path], max_images: Optional[int], k: int,
               open_model: Callable[[str], Any], json_out: Optional[Path], plot_out: Optional[Path]) -> None:
    from ..eval.coco import AP_NAMES, average_precision, detect, read_coco
    from ..eval.plots import plot_eval

    if images is None:
        raise CtrtError("--coco needs --images DIR, the folder of the annotated images")
    chosen = read_coco(coco, images, max_images)
    scores = {}
    for model in models:
        with open_model(model) as opened, console.status(f"{escape(Path(model).name)}: detecting") as status:
            results = detect(opened, chosen, k, lambda i, n: status.update(f"{escape(Path(model).name)}: image {i}/{n}"))
            scores[model] = average_precision(chosen, results)
    table = titled(f"pycocotools bbox AP on {len(chosen.images)} images; (deltas vs the first)")
    table.add_column("")
    for name in AP_NAMES:
        table.add_column(name, justify="right")
    base = scores[models[0]]
    for model in models:
        cells = []
        for name in AP_NAMES:
            value, first = scores[model][name], base[name]
            cells.append("-" if value is None else _delta(value, first, True) if first is not None else f"{value:.3f}")
        table.add_row(escape(Path(model).name), *cells)
    console.print(table)
    write_results({"schema": 1, "ctrt_version": __version__, "kind": "coco", "images": len(chosen.images),
                    "annotations": str(coco), "scores": scores}, json_out, plot_out, plot_eval)
