"""Loading CenterTrack(-HarDNet) and CenterNet-HarDNet checkpoints safely and inferring what they contain."""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CtrtError
from .config import ModelConfig
from .hardnet import BACKBONES
from .seg import HarDNetSeg

# Top-level modules of HarDNetSeg that are not heads.
_BODY = {"base", "last_proj", "last_blk", "denseBlocksUp", "conv1x1_up", "base_layer", "pre_img_layer", "pre_hm_layer"}
_SHOWN = 5


@dataclass
class LoadedModel:
    model: HarDNetSeg
    config: ModelConfig
    epoch: int | None
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]


def _reason(exc: BaseException) -> str:
    if not isinstance(exc, (RuntimeError, OSError, EOFError, ValueError)):
        return "unrecognised data"  # e.g. a KeyError deep inside the unpickler says nothing useful
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def _code_global(path: Path) -> str | None:
    """The first global a plain pickle (not a torch zip) would import beyond torch's own and collections', read
    with ``pickletools`` (which only parses, never runs anything). PyTorch's weights-only unpickler stops earlier on
    such files, at an opcode it does not know, and would only say that."""
    strings: list[str] = []
    try:
        with path.open("rb") as fh:
            for op, arg, _ in pickletools.genops(fh):
                if op.name == "GLOBAL":
                    name = str(arg).replace(" ", ".")
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    name = ".".join(strings[-2:])
                else:
                    if isinstance(arg, str):
                        strings.append(arg)
                    continue
                if not name.startswith(("torch.", "collections.")):
                    return name
    except Exception:  # not a pickle after all: the caller's message stands
        return None
    return None


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], int | None]:
    """The checkpoint's tensors (``module.`` stripped) and its epoch, never executing pickled code."""
    if not path.is_file():
        raise CtrtError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before failing on junk
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # PyTorch's wording varies ("Unsupported global", "unsupported GLOBAL posix.system ..."): name what it refused.
        refused = re.search(r"unsupported global:?\s*(?:GLOBAL\s+)?([\w.]+)", str(exc), re.IGNORECASE)
        name = refused.group(1) if refused else None if zipfile.is_zipfile(path) else _code_global(path)
        if name:
            raise CtrtError(
                f"{path} holds Python objects beyond tensors ({name}); refusing to unpickle it "
                "(weights_only=True, it could run code). Re-save it as {'state_dict': model.state_dict()}"
            ) from None
        raise CtrtError(f"{path} is not a readable PyTorch checkpoint: {_reason(exc)}") from None
    except Exception as exc:  # torch.load on arbitrary bytes can fail with almost any exception type
        raise CtrtError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {_reason(exc)}") from None

    epoch = None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        epoch = obj.get("epoch") if isinstance(obj.get("epoch"), int) else None
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CtrtError(f"{path} is not a model checkpoint: expected a state_dict or {{'epoch', 'state_dict'}}")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
    return state, epoch


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> ModelConfig:
    """Depth from ``last_proj``'s input width, heads from the top-level ``<name>.2.weight`` keys, in file order."""
    proj = state.get("last_proj.conv.weight")
    arch = next((a for a, spec in BACKBONES.items() if proj is not None and proj.shape[1] == spec.skip_channels[-1]), None)
    if arch is None:
        raise CtrtError(
            f"{source} is not a HarDNet-68/85 CenterTrack or CenterNet model "
            "(no 'last_proj.conv.weight' of a known width)"
        )
    heads = {}
    for key, value in state.items():
        name, _, rest = key.partition(".")
        if name not in _BODY and rest == "2.weight" and value.dim() == 4:
            heads[name] = int(value.shape[0])
    if "hm" not in heads:
        raise CtrtError(f"{source} has no 'hm' heatmap head; found heads: {', '.join(heads) or 'none'}")
    return ModelConfig(
        arch=arch,
        heads=heads,
        pre_img="pre_img_layer.conv.weight" in state,
        pre_hm="pre_hm_layer.conv.weight" in state,
        stem="base_layer.conv.weight" in state,
    )


def _listing(label: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} {label}: {shown}{more}"


def load_checkpoint(path: Path, allow_partial: bool = False) -> LoadedModel:
    """Build the model the checkpoint describes and load it; any key mismatch is an error unless allowed."""
    state, epoch = read_state_dict(path)
    config = infer_config(state, str(path))
    model = HarDNetSeg(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if (missing or unexpected or mismatched) and not allow_partial:
        parts = [_listing(label, keys) for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)) if keys]
        raise CtrtError(f"{path} does not match {config.name}: " + "; ".join(parts) + " (use --allow-partial to load the rest)")
    usable = {k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape}
    model.load_state_dict(usable, strict=False)
    return LoadedModel(model.eval(), config, epoch, missing, unexpected, mismatched)
