"""``ctrt export``: checkpoint (or seeded random weights) -> simplified, verified ONNX with metadata."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..artifacts import ArtifactMeta, sha256_file, sidecar_path
from ..outputs import atomic_outputs
from ..errors import CtrtError
from ..model.builtin import DEMO_ASSET, builtin_model
from ..model.checkpoint import load_checkpoint
from ..model.config import preset
from ..model.seg import HarDNetSeg
from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.backends.torch_backend import TorchBackend, checkpoint_meta
from ..model.config import MEAN_BGR, STD_BGR
from .fastpath import InGraph
from .onnx_export import FASTPATH_OPS, PLAIN_OPS, ExportOptions, export_onnx
from .parity import DEFAULT_ATOL, ParityRow, compare, standard_feeds

RANDOM_SEED = 0


@dataclass
class ExportResult:
    path: Path
    meta: ArtifactMeta
    ops: list[str]
    parity: list[ParityRow]
    seconds: float


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


def default_output(stem: str, h: int, w: int) -> Path:
    return Path("export") / f"{stem}_{h}x{w}.onnx"


def run_export(source: ModelSource, output: Path, options: ExportOptions, check: bool = True,
               atol: float = DEFAULT_ATOL, report: Callable[[str], None] = lambda _: None) -> ExportResult:
    start = time.perf_counter()
    model = source.model
    config = model.config

    def wrap(seg: HarDNetSeg, half: bool) -> InGraph:
        return InGraph(seg, list(config.heads), config.inputs, (options.input_h, options.input_w), MEAN_BGR, STD_BGR,
                       options.source_hw, options.topk, half)

    # The FP16 export converts a copy; the check compares it with the FP32 model it came from.
    module = wrap(copy.deepcopy(model), True) if options.half else wrap(model, False)
    reference = wrap(model, False) if options.half else module
    meta = checkpoint_meta(model, source.name, source.sha256, (options.input_h, options.input_w),
                           source.random_weights, source.builtin)
    meta = replace(meta, kind="onnx", batch=0 if options.dynamic_batch else options.batch,
                   precision="fp16" if options.half else "fp32",
                   inputs=module.input_names, outputs=module.output_names,
                   extra={"opset": options.opset, "simplified": options.simplify,
                          "preprocess": "graph" if options.source_hw else "cpu",
                          "decode": "graph" if options.topk else "host",
                          **({"source_size": list(options.source_hw)} if options.source_hw else {}),
                          **({"topk": options.topk} if options.topk else {})})
    rows: list[ParityRow] = []
    with atomic_outputs(output, sidecar_path(output)) as (tmp, sidecar_tmp):
        report(f"tracing to ONNX (opset {options.opset})" + (", simplifying" if options.simplify else ""))
        ops = export_onnx(module, module.input_names, module.output_names, meta, options, tmp)
        unexpected = set(ops) - PLAIN_OPS - (FASTPATH_OPS if options.source_hw or options.topk else set())
        if unexpected:
            raise CtrtError(f"export produced ops TensorRT may not build: {', '.join(sorted(unexpected))}")
        if check:
            report("checking ONNX Runtime against PyTorch")
            onnx_backend = OnnxRuntimeBackend(tmp, device="cpu", meta=meta)
            batch = 1 if options.dynamic_batch else options.batch
            heads = None
            if options.topk:  # the same reference model without the decode, for judging peak ties
                plain = InGraph(model, list(config.heads), config.inputs, (options.input_h, options.input_w), MEAN_BGR,
                                STD_BGR, options.source_hw, None)
                heads = TorchBackend(plain, replace(meta, outputs=list(config.heads)), device="cpu")
            rows = compare(TorchBackend(reference, meta, device="cpu"), onnx_backend,
                           standard_feeds(meta.inputs, batch, options.input_h, options.input_w, options.source_hw),
                           atol, heads)
            bad = [r for r in rows if not r.ok]
            if bad:
                worst = max(bad, key=lambda r: r.max_abs)
                raise CtrtError(f"parity check failed: {worst.output} on {worst.case} input differs by "
                                f"{worst.max_abs:.3g} ({worst.rel_to_range:.3g} of its largest value), over "
                                f"{atol:g} x max(1, max |output|) from PyTorch; nothing was written")
        sidecar_tmp.write_text(meta.to_json())
    return ExportResult(output, meta, ops, rows, time.perf_counter() - start)
