"""``ctrt export``: checkpoint (or seeded random weights) -> simplified, verified ONNX with metadata."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..artifacts import ArtifactMeta, GraphRecord, sha256_file, sidecar_path
from ..outputs import atomic_outputs
from ..errors import CtrtError
from ..progress import Progress, silent
from ..model.builtin import DEMO_ASSET, builtin_model
from ..model.checkpoint import load_checkpoint
from ..model.config import preset
from ..model.seg import HarDNetSeg
from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.backends.torch_backend import TorchBackend, checkpoint_meta
from ..sizes import parse_frame_size, parse_input_size
from ..trt_rules import LINES, Refusal, check_file
from .fastpath import InGraph
from .onnx_export import ExportOptions, export_onnx
from .parity import DEFAULT_ATOL, FP16_ATOL, ParityRow, check_parity, standard_feeds

RANDOM_SEED = 0


@dataclass
class ExportResult:
    path: Path
    meta: ArtifactMeta
    ops: list[str]
    parity: list[ParityRow]
    atol: float  # the parity check's tolerance, times max(1, max |reference|)
    seconds: float
    refusals: list[Refusal]  # what TensorRT lines other than the targeted ones would refuse


@dataclass(frozen=True)
class ModelSource:
    """A model to export and how its sidecar names it."""

    model: HarDNetSeg
    name: str
    sha256: str = ""
    random_weights: bool = False
    builtin: str = ""  # a key of BUILTINS, for the built-in demo model


def source_model(checkpoint: Path | None, arch: str = "hardnet_85", allow_partial: bool = False,
                 builtin: str | None = None) -> ModelSource:
    """A checkpoint, a built-in model (``builtin``), or without either seeded random weights of ``arch``."""
    if builtin is not None:  # its checksum is the shipped asset's, so a stale export can be recognised
        return ModelSource(builtin_model(builtin), f"builtin:{builtin}", sha256_file(DEMO_ASSET), builtin=builtin)
    if checkpoint is None:
        model = HarDNetSeg(preset(arch))
        model.init_weights(RANDOM_SEED)
        return ModelSource(model.eval(), f"random-init:{arch}:seed{RANDOM_SEED}", random_weights=True)
    loaded = load_checkpoint(checkpoint, allow_partial)
    return ModelSource(loaded.model, checkpoint.name, sha256_file(checkpoint))


# Resize with align_corners (the decoder's upsampling) needs opset 11; torch's TorchScript exporter writes up to 20.
MIN_OPSET, MAX_OPSET = 11, 20


def export_options(input_size: str, *, opset: int = 17, batch: int = 1, dynamic_batch: bool = False,
                   simplify: bool = True, preprocess_in_graph: bool = False, source_size: str | None = None,
                   topk: int | None = None, half: bool = False) -> ExportOptions:
    """Options from what a user types: ``input_size`` "HxW", ``source_size`` "WxH" (the camera's frames, only with
    ``preprocess_in_graph``, and then required)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise CtrtError(f"opset {opset}: ctrt exports opsets {MIN_OPSET} to {MAX_OPSET} (the upsampling needs "
                        f"{MIN_OPSET}; TensorRT 8.5 reads up to 17)", option="opset")
    h, w = parse_input_size(input_size)
    source_hw = None
    if preprocess_in_graph:
        if source_size is None:
            raise CtrtError("--preprocess-in-graph needs --source-size WxH (the camera's frame size, e.g. 1280x720)")
        sw, sh = parse_frame_size(source_size, count=batch)
        source_hw = (sh, sw)
    elif source_size is not None:
        raise CtrtError("--source-size only applies with --preprocess-in-graph")
    return ExportOptions(h, w, opset, batch, dynamic_batch, simplify, source_hw, topk, half)


def default_output(checkpoint: Path | None, options: ExportOptions, arch: str = "hardnet_85",
                   builtin: str | None = None) -> Path:
    """export/<checkpoint stem, or the built-in or random model's name>[_fp16]_<H>x<W>.onnx"""
    stem = checkpoint.stem if checkpoint else f"hardnet_85_{builtin}" if builtin else f"{arch}_random"
    return Path("export") / f"{stem}{'_fp16' if options.half else ''}_{options.input_h}x{options.input_w}.onnx"


def run_export(source: ModelSource, output: Path, options: ExportOptions, check: bool = True,
               atol: float | None = None, report: Progress = silent, trt: Sequence[str] = LINES) -> ExportResult:
    """``atol`` None: 1e-4, or 5e-2 for an FP16 export (its weights are rounded to FP16). ``trt``: the TensorRT
    lines whose ONNX parser must take the graph (``trt_rules``); nothing is written when one would refuse it."""
    start = time.perf_counter()
    atol = atol if atol is not None else FP16_ATOL if options.half else DEFAULT_ATOL
    model = source.model
    config = model.config

    # The export traces a copy in export mode; the check compares it with the FP32 model it came from.
    module = InGraph(model.exportable(options.half), config, options)
    reference = InGraph(model, config, replace(options, half=False))
    meta = checkpoint_meta(model, source.name, source.sha256, (options.input_h, options.input_w),
                           source.random_weights, source.builtin)
    meta = replace(meta, kind="onnx", batch=0 if options.dynamic_batch else options.batch,
                   precision="fp16" if options.half else "fp32",
                   inputs=module.input_names, outputs=module.output_names,
                   graph=GraphRecord(options.opset, options.simplify, options.source_hw, options.topk))
    rows: list[ParityRow] = []
    with atomic_outputs(output, sidecar_path(output)) as (tmp, sidecar_tmp):
        report(f"tracing to ONNX (opset {options.opset})" + (", simplifying" if options.simplify else ""))
        ops = export_onnx(module, module.input_names, module.output_names, meta, options, tmp)
        refusals = check_file(tmp)
        refused = [r for r in refusals if r.line in trt]
        if refused:
            lines = ", ".join(dict.fromkeys(r.line for r in refused))
            raise CtrtError(f"TensorRT {lines} would not parse this graph: {refused[0].text()}"
                            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "") + "; nothing was written")
        if check:
            report("checking ONNX Runtime against PyTorch")
            onnx_backend = OnnxRuntimeBackend(tmp, device="cpu", meta=meta)
            batch = 1 if options.dynamic_batch else options.batch
            heads = None
            if options.topk:  # the same reference model without the decode, for judging peak ties
                plain = InGraph(model, config, replace(options, half=False, topk=None))
                heads = TorchBackend(plain, replace(meta, outputs=list(config.heads)), device="cpu")
            rows = check_parity(TorchBackend(reference, meta, device="cpu"), onnx_backend,
                           standard_feeds(meta.inputs, batch, options.input_h, options.input_w, options.source_hw),
                           atol, heads)
            bad = [r for r in rows if not r.ok]
            if bad:
                worst = max(bad, key=lambda r: r.max_abs)
                raise CtrtError(f"parity check failed: {worst.output} on {worst.case} input differs by "
                                f"{worst.max_abs:.3g} ({worst.rel_to_range:.3g} of its largest value), over "
                                f"{atol:g} x max(1, max |output|) from PyTorch; nothing was written")
        sidecar_tmp.write_text(meta.to_json())
    return ExportResult(output, meta, ops, rows, atol, time.perf_counter() - start, refusals)
