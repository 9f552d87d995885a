"""``ctrt triton``: a Triton Inference Server model repository for one ctrt artifact.

The written model folder holds ``config.pbtxt`` (dynamic batching, instance groups, every tensor's type and dims),
``1/model.{plan,onnx,py}`` and ``ctrt.json``; the same ctrt metadata rides in the config's ``parameters`` so a
client learns mean/std, input size, heads and fast-path flags from the server alone.

``--stateful`` writes two models: ``<name>``, a Python-backend model under Triton's sequence batcher that keeps each
stream's previous frame, decodes JPEG frames and draws pre_hm from boxes (``stateful_model.py``), and
``<name>_net``, the network as above, which it calls for the whole batch.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import ArtifactMeta, TensorSpecs, read_meta, sidecar_path
from ..errors import CtrtError
from ..outputs import atomic_folder, check_outputs

META_PARAMETER = "ctrt_meta"
BACKENDS = ("auto", "onnxruntime", "python")
KINDS = ("auto", "cpu", "gpu")
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8",
                "int32": "TYPE_INT32", "int64": "TYPE_INT64", "bool": "TYPE_BOOL"}
PYTHON_MODEL = Path(__file__).with_name("python_model.py")
STATEFUL_MODEL = Path(__file__).with_name("stateful_model.py")
PREHM_SOURCE = Path(__file__).parents[1] / "runtime" / "prehm.py"  # the renderer the stateful model draws with
STATEFUL_PARAMETER = "ctrt_stateful"
FRAME_INPUTS = ("frame", "pre_frame")  # each also as <name>_jpeg: one JPEG file as a BYTES element
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class RepositoryOptions:
    name: str = "ctrt"
    backend: str = "auto"  # auto: tensorrt_plan for an engine, onnxruntime_onnx for an ONNX; python: ONNX Runtime in Triton's Python backend
    max_batch: int | None = None  # None: 8 where the model takes any batch, else no server-side batching
    instances: int = 1
    queue_delay_us: int = 500
    kind: str = "auto"  # instance placement: auto = GPU for engines and the onnxruntime backend, CPU for python
    ort_tensorrt: bool = False  # onnxruntime backend: TensorRT execution accelerator
    fp16: bool = False  # ... building FP16 engines
    stateful: bool = False  # a sequence-batched front keeping each stream's previous frame (see the module doc)
    sequence_idle_s: int = 60  # a stream silent this long loses its sequence (its client then starts it again)
    max_sequences: int = 64  # streams the sequence batcher holds at once; more wait for a free one


@dataclass(frozen=True)
class Repository:
    model_dir: Path
    platform: str
    max_batch: int
    config: str


def tensor_specs(model: Path, meta: ArtifactMeta) -> TensorSpecs:
    """(dtype, dims) of every input and output: from the ONNX graph, or recorded in an engine's sidecar at build."""
    if meta.engine:
        if not meta.engine.io:
            raise CtrtError(f"{model} was built by an older ctrt that did not record its tensors; rebuild it with "
                            f"ctrt build {meta.engine.onnx}")
        return {name: (str(dtype), [int(d) for d in dims]) for name, (dtype, dims) in meta.engine.io.items()}
    import onnx

    from ..onnx_graph import tensor_specs as onnx_specs

    return onnx_specs(onnx.load(str(model), load_external_data=False))


def _max_batch(model: Path, meta: ArtifactMeta, specs: TensorSpecs, wanted: int | None) -> int:
    """Triton's max_batch_size: > 0 only when every tensor's first dimension is the model's free batch."""
    dynamic = all(dims and dims[0] == -1 for _, dims in specs.values())
    if not dynamic:
        if wanted not in (None, 0):
            fix = (f"ctrt build {meta.engine.onnx} --max-batch {wanted} from an ONNX exported "
                   "with --dynamic-batch" if meta.engine else "ctrt export CHECKPOINT --dynamic-batch")
            raise CtrtError(f"--max-batch {wanted}: {model} takes a fixed batch of {meta.batch}, so Triton cannot "
                            f"batch requests for it; make a dynamic-batch model: {fix}")
        return 0
    limit = (meta.engine.max_batch or 0) if meta.engine else 0  # the engine's profile
    batch = min(8, limit or 8) if wanted is None else wanted
    if limit and batch > limit:
        raise CtrtError(f"--max-batch {batch}: {model} was built for batches up to {limit}; rebuild with "
                        f"ctrt build {meta.engine.onnx if meta.engine else 'MODEL.onnx'} --max-batch {batch}")
    return batch  # 0: no server-side batching; each request carries its own batch dimension


def _text(value: str) -> str:
    """A protobuf text-format string literal (ASCII in, so only backslash and quote need escaping)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensors(field: str, names: list[str], specs: TensorSpecs, batched: bool) -> str:
    entries = []
    for name in names:
        dtype, dims = specs[name]
        if dtype not in TRITON_TYPES:
            raise CtrtError(f"tensor {name} has type {dtype}, which ctrt does not declare to Triton")
        shown = dims[1:] if batched else dims
        entries.append(f"  {{ name: {_text(name)} data_type: {TRITON_TYPES[dtype]} dims: [ {', '.join(map(str, shown))} ] }}")
    return f"{field} [\n" + ",\n".join(entries) + "\n]\n"


def model_config(name: str, platform: str, meta: ArtifactMeta, specs: TensorSpecs,
                 max_batch: int, options: RepositoryOptions) -> str:
    kind = options.kind if options.kind != "auto" else "cpu" if platform == "python" else "gpu"
    lines = [f"name: {_text(name)}",
             f"backend: {_text('python')}" if platform == "python" else f"platform: {_text(platform)}",
             f"max_batch_size: {max_batch}"]
    text = "\n".join(lines) + "\n"
    text += _tensors("input", meta.inputs, specs, max_batch > 0)
    text += _tensors("output", meta.outputs, specs, max_batch > 0)
    if max_batch > 0:
        text += f"dynamic_batching {{ max_queue_delay_microseconds: {options.queue_delay_us} }}\n"
    text += f"instance_group [ {{ kind: KIND_{kind.upper()} count: {options.instances} }} ]\n"
    if options.ort_tensorrt:
        precision = "FP16" if options.fp16 else "FP32"
        text += ("optimization { execution_accelerators { gpu_execution_accelerator: [ { name: \"tensorrt\" "
                 f"parameters {{ key: \"precision_mode\" value: \"{precision}\" }} }} ] }} }}\n")
    text += f"parameters {{ key: {_text(META_PARAMETER)} value: {{ string_value: {_text(meta_json(meta))} }} }}\n"
    return text


def stateful_config(name: str, net: str, meta: ArtifactMeta, specs: TensorSpecs, max_batch: int,
                    options: RepositoryOptions) -> str:
    """The front model's config: optional frame inputs (raw or JPEG), pre_boxes, the net's top-K outputs, and the
    sequence batcher's START/END/CORRID controls as inputs (Oldest: requests of different streams batch)."""
    assert meta.graph is not None and meta.graph.source_size is not None and meta.graph.topk is not None
    h, w = meta.graph.source_size
    entries = []
    for frame in FRAME_INPUTS:
        entries.append(f"  {{ name: {_text(frame)} data_type: TYPE_UINT8 dims: [ {h}, {w}, 3 ] optional: true }}")
        entries.append(f"  {{ name: {_text(frame + '_jpeg')} data_type: TYPE_STRING dims: [ 1 ] optional: true }}")
    if "pre_hm" in meta.inputs:
        entries.append(f"  {{ name: \"pre_boxes\" data_type: TYPE_FP32 dims: [ {meta.graph.topk}, 5 ] optional: true }}")
    controls = [("START", "CONTROL_SEQUENCE_START", "int32_false_true: [ 0, 1 ]"),
                ("END", "CONTROL_SEQUENCE_END", "int32_false_true: [ 0, 1 ]"),
                ("CORRID", "CONTROL_SEQUENCE_CORRID", "data_type: TYPE_UINT64")]
    stateful = {"net": net, "net_inputs": meta.inputs, "input_size": list(meta.input_size), "source_size": [h, w],
                "k": meta.graph.topk, "decodes": ["jpeg"],
                "outputs": [[specs[o][0], specs[o][1][1:]] for o in meta.outputs]}
    text = (f"name: {_text(name)}\nbackend: \"python\"\nmax_batch_size: {max_batch}\n"
            "input [\n" + ",\n".join(entries) + "\n]\n" + _tensors("output", meta.outputs, specs, True))
    text += ("sequence_batching {\n"
             f"  max_sequence_idle_microseconds: {options.sequence_idle_s * 1_000_000}\n"
             f"  oldest {{ max_candidate_sequences: {options.max_sequences} "
             f"max_queue_delay_microseconds: {options.queue_delay_us} }}\n"
             "  control_input [\n" + ",\n".join(f"    {{ name: \"{n}\" control [ {{ kind: {k} {v} }} ] }}"
                                               for n, k, v in controls) + "\n  ]\n}\n")
    text += f"instance_group [ {{ kind: KIND_CPU count: {options.instances} }} ]\n"
    text += f"parameters {{ key: {_text(META_PARAMETER)} value: {{ string_value: {_text(meta_json(meta))} }} }}\n"
    text += (f"parameters {{ key: {_text(STATEFUL_PARAMETER)} value: {{ string_value: "
             f"{_text(json.dumps(stateful, separators=(',', ':')))} }} }}\n")
    return text


def _check_stateful(model: Path, meta: ArtifactMeta, options: RepositoryOptions) -> None:
    export = "ctrt export CHECKPOINT --dynamic-batch --preprocess-in-graph --source-size WxH --decode-in-graph"
    graph = meta.graph
    if "pre_frame" not in meta.inputs:
        raise CtrtError(f"--stateful: {model} takes no previous frame (pre_frame), so the server has no frame to "
                        f"keep; make a fast-path model: {export}")
    if graph is None or not graph.decode_in_graph:
        raise CtrtError(f"--stateful: {model} returns whole heads; a stateful model answers with the top-K "
                        f"decoded in the graph: {export}")
    if meta.batch != 0:
        raise CtrtError(f"--stateful: {model} takes a fixed batch of {meta.batch}; streams batch on the server "
                        f"only with a dynamic batch: {export}")
    if options.max_batch == 0:
        raise CtrtError("--stateful: the sequence batcher batches streams; give --max-batch 1 or more")


def meta_json(meta: ArtifactMeta) -> str:
    return json.dumps(json.loads(meta.to_json()), separators=(",", ":"), ensure_ascii=True)


def _check_repository(repo: Path, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise CtrtError(f"--name {name!r}: use letters, digits, '_', '-' and '.' (it becomes a folder and a URL part)")
    if repo.exists() and not repo.is_dir():
        raise CtrtError(f"-o {repo} is a file; give a folder for the model repository")
    if (repo / name).exists():
        raise CtrtError(f"{repo / name} exists; choose another --name or remove it")
    if repo.is_dir():
        strangers = sorted(p.name for p in repo.iterdir()
                           if not p.name.startswith(".") and not (p.is_dir() and (p / "config.pbtxt").is_file()))
        if strangers:
            raise CtrtError(f"-o {repo} exists and is not a Triton model repository ({strangers[0]} is not a model "
                            "folder with a config.pbtxt); give a new or a repository folder")


def external_data(model: Path) -> list[Path]:
    """The files an ONNX keeps its weights in beside itself (``save_as_external_data``), as paths relative to its
    folder. A location outside that folder (absolute, or through ``..``) or a missing file is refused: a model must
    not make us copy other files of this machine, and the server could not load it."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    tensors = [*graph.initializer, *(a.t for node in graph.node for a in node.attribute if a.HasField("t"))]
    folder = model.parent.resolve()
    files: dict[str, Path] = {}
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        relative = Path(location)
        resolved = (folder / relative).resolve()
        if not location or relative.is_absolute() or ".." in relative.parts or not resolved.is_relative_to(folder):
            raise CtrtError(f"{model}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's "
                            "folder; save the model with its data beside it")
        if not resolved.is_file():
            raise CtrtError(f"{model}: the data file {location!r} of tensor {tensor.name!r} is missing")
        files[location] = relative
    return list(files.values())


def write_repository(model: Path, repo: Path, options: RepositoryOptions) -> Repository:
    """Write ``repo/<name>/`` whole or not at all (assembled in a hidden folder beside it, then renamed)."""
    if options.backend not in BACKENDS:
        raise CtrtError(f"--backend {options.backend!r}: choose {', '.join(BACKENDS)}")
    if options.kind not in KINDS:
        raise CtrtError(f"--kind {options.kind!r}: choose {', '.join(KINDS)}")
    meta = read_meta(model)
    if meta.kind not in ("onnx", "engine"):
        raise CtrtError(f"{model} is a {meta.kind} artifact; ctrt triton serves an .onnx or an engine")
    if meta.kind == "engine" and options.backend != "auto":
        raise CtrtError(f"--backend {options.backend}: an engine is served by Triton's TensorRT backend; "
                        "give the ONNX to serve it on ONNX Runtime")
    if options.ort_tensorrt and (meta.kind == "engine" or options.backend == "python"):
        raise CtrtError("--ort-tensorrt applies to an ONNX served by the onnxruntime backend")
    _check_repository(repo, options.name)
    if options.stateful:
        _check_stateful(model, meta, options)
        _check_repository(repo, options.name + "_net")
    data_files = external_data(model) if meta.kind == "onnx" else []
    check_outputs({f"-o {repo}": repo / options.name / "config.pbtxt"},
                  [model, sidecar_path(model), *(model.parent / f for f in data_files)])
    platform = "tensorrt_plan" if meta.kind == "engine" else "python" if options.backend == "python" else "onnxruntime_onnx"
    specs = tensor_specs(model, meta)
    missing = [n for n in [*meta.inputs, *meta.outputs] if n not in specs]
    if missing:
        raise CtrtError(f"the metadata of {model} names tensors the model lacks ({', '.join(missing)}); re-export it")
    max_batch = _max_batch(model, meta, specs, options.max_batch)
    net = options.name + "_net" if options.stateful else options.name
    config = model_config(net, platform, meta, specs, max_batch, options)
    if not options.stateful:
        with atomic_folder(repo / net) as staging:
            _write_model(staging, model, meta, platform, data_files, config)
        return Repository(repo / net, platform, max_batch, config)
    front = stateful_config(options.name, net, meta, specs, max_batch, options)
    with atomic_folder(repo / options.name) as front_staging, atomic_folder(repo / net) as staging:
        _write_model(staging, model, meta, platform, data_files, config)
        (front_staging / "1").mkdir()
        shutil.copyfile(STATEFUL_MODEL, front_staging / "1" / "model.py")
        shutil.copyfile(PREHM_SOURCE, front_staging / "1" / "ctrt_prehm.py")
        (front_staging / "config.pbtxt").write_text(front)
        (front_staging / "ctrt.json").write_text(meta.to_json())
    return Repository(repo / options.name, "python (stateful) + " + platform, max_batch, front)


def _write_model(staging: Path, model: Path, meta: ArtifactMeta, platform: str, data_files: list[Path],
                 config: str) -> None:
    version = staging / "1"
    version.mkdir()
    shutil.copyfile(model, version / ("model.plan" if meta.kind == "engine" else "model.onnx"))
    for relative in data_files:  # where the graph says, relative to the copied model
        (version / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model.parent / relative, version / relative)
    if platform == "python":
        shutil.copyfile(PYTHON_MODEL, version / "model.py")
    (staging / "config.pbtxt").write_text(config)
    (staging / "ctrt.json").write_text(meta.to_json())
