"""Opening a model as a backend: a registry of model kinds, each a URL scheme (``triton://``) or a file suffix
(``.onnx``) and the factory that opens it. The built-in backends register here as a user's would::

    >>> ctrt.register_backend(".xmodel", lambda model, options: MyBackend(model))  # ctrt.load("m.xmodel") opens it

A factory gets the model as given and the ``LoadOptions``, and returns a ``Backend`` (``base.py``). Options that
mean nothing to a kind (``shm`` for a local file, ``threads`` for a server) are refused by its factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import CtrtError
from ...options import default
from ...sizes import check_memory
from .base import Backend
from .triton_backend import SCHEMES as TRITON_SCHEMES


@dataclass(frozen=True)
class LoadOptions:
    """``ctrt.load``'s keywords, as a factory receives them."""

    device: str = default("device")
    threads: int = default("threads")
    input_hw: tuple[int, int] = (512, 512)  # a checkpoint's export size
    allow_partial: bool = False
    cuda_graph: bool = False
    shm: bool = False
    reconnects: int | str = default("reconnects")
    transport: str | None = None
    notify: Callable[[str], None] = lambda _: None  # a line for the user (a server reconnecting)


BackendFactory = Callable[[str, LoadOptions], Backend]
_SCHEMES: dict[str, BackendFactory] = {}
_SUFFIXES: dict[str, BackendFactory] = {}


def register_backend(kind: str, factory: BackendFactory) -> None:
    """Open models of ``kind`` with ``factory``: ``"myrt://"`` (a URL scheme) or ``".xmodel"`` (a file suffix).
    A later registration of the same kind replaces the earlier one."""
    kind = kind.lower()
    if kind.endswith("://") and kind[:-3].isidentifier():
        _SCHEMES[kind[:-3]] = factory
    elif kind.startswith(".") and len(kind) > 1 and "/" not in kind:
        _SUFFIXES[kind] = factory
    else:
        raise CtrtError(f"kind {kind!r}: give a URL scheme such as 'myrt://' or a file suffix such as '.xmodel'",
                        option="kind")


def model_scheme(model: str | Path) -> str | None:
    """The URL scheme of a model served elsewhere (``triton``), None for a file on this machine."""
    scheme, sep, _ = str(model).partition("://")
    return scheme.lower() if sep else None


def is_remote(model: str | Path) -> bool:
    """Whether a model argument names a server's model rather than a file (no sidecar, nothing to protect)."""
    return model_scheme(model) is not None


def kind_of(model: str | Path) -> str:
    """The registry key a model is opened by: ``scheme://`` or its suffix."""
    scheme = model_scheme(model)
    return f"{scheme}://" if scheme is not None else Path(model).suffix.lower()


def open_backend(model: str | Path, options: LoadOptions = LoadOptions()) -> Backend:
    """The backend for a model, by its scheme or suffix."""
    scheme = model_scheme(model)
    if scheme is not None:
        factory = _SCHEMES.get(scheme)
        if factory is None:
            raise CtrtError(f"no backend serves {scheme}:// models ({model}); known: "
                            f"{', '.join(s + '://' for s in sorted(_SCHEMES))}", option="model")
        return factory(str(model), options)
    path = Path(model)
    factory = _SUFFIXES.get(path.suffix.lower())
    if factory is None:
        if not path.exists():
            raise CtrtError(f"model not found: {path}")
        raise CtrtError(f"{path}: unsupported model type {path.suffix or '(none)'}; ctrt takes "
                        f"{', '.join(sorted(_SUFFIXES))} (or a registered kind)")
    return factory(str(model), options)


def _existing(model: str) -> Path:
    path = Path(model)
    if not path.exists():
        raise CtrtError(f"model not found: {path}")
    return path


def _local(options: LoadOptions, engine: bool = False) -> None:
    """A file on this machine: Triton's options do not apply, nor a CUDA graph to what is not an engine."""
    for name in ("shm", "transport"):
        if getattr(options, name):
            raise CtrtError(f"{name} applies to a model served by Triton (triton://HOST:PORT/MODEL)", option=name)
    if options.cuda_graph and not engine:
        raise CtrtError("cuda_graph applies to TensorRT engines only", option="cuda_graph")


def _onnxruntime(model: str, options: LoadOptions) -> Backend:
    _local(options)
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(_existing(model), options.device, options.threads)


def _checkpoint(model: str, options: LoadOptions) -> Backend:
    _local(options)
    path = _existing(model)
    check_memory(*options.input_hw)
    from .torch_backend import TorchBackend

    return TorchBackend.from_checkpoint(path, options.input_hw, options.device, options.allow_partial)


def _engine(model: str, options: LoadOptions) -> Backend:
    _local(options, engine=True)
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(_existing(model), cuda_graph=options.cuda_graph)


def _triton(model: str, options: LoadOptions) -> Backend:
    if options.cuda_graph or options.device != "auto" or options.threads:
        raise CtrtError("device, threads and cuda_graph apply to local models; Triton's model config decides how "
                        "the server runs it", option="device")
    from .triton_backend import TritonBackend

    return TritonBackend(model, options.shm, options.reconnects, options.notify, options.transport)


CHECKPOINT_SUFFIXES = (".pth", ".pt")
for _suffix, _factory in ((".onnx", _onnxruntime), *((s, _checkpoint) for s in CHECKPOINT_SUFFIXES),
                          *((s, _engine) for s in (".engine", ".plan", ".trt")),
                          *((f"{s}://", _triton) for s in TRITON_SCHEMES)):
    register_backend(_suffix, _factory)
