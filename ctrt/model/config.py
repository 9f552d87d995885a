"""What a checkpoint is: depth, heads and which optional input layers it has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CtrtError

# CenterTrack's normalisation, in BGR order because images stay as OpenCV reads them.
MEAN_BGR = (0.40789654, 0.44719302, 0.47026115)
STD_BGR = (0.28863828, 0.27408164, 0.27809835)

TRACKING_HEADS = {"hm": 80, "reg": 2, "wh": 2, "tracking": 2}
DETECTION_HEADS = {"hm": 80, "wh": 4}


@dataclass(frozen=True)
class ModelConfig:
    """``stem`` is the CenterTrack fork's ``base_layer``: with it the backbone starts at ``base[1]``.

    CenterNet-HarDNet detection checkpoints have no stem and no previous-frame layers.
    """

    arch: int = 85
    heads: dict[str, int] = field(default_factory=lambda: dict(TRACKING_HEADS))
    pre_img: bool = True
    pre_hm: bool = True
    stem: bool = True

    @property
    def name(self) -> str:
        return f"hardnet_{self.arch}" if self.stem else f"centernet_hardnet_{self.arch}"

    @property
    def inputs(self) -> list[str]:
        return ["image"] + ["pre_img"] * self.pre_img + ["pre_hm"] * self.pre_hm

    @property
    def num_classes(self) -> int:
        return self.heads["hm"]

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "heads": dict(self.heads), "pre_img": self.pre_img,
                "pre_hm": self.pre_hm, "stem": self.stem}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(int(data["arch"]), {str(k): int(v) for k, v in data["heads"].items()},
                   bool(data["pre_img"]), bool(data["pre_hm"]), bool(data["stem"]))


PRESETS = {
    "hardnet_85": ModelConfig(85),
    "hardnet_68": ModelConfig(68),
    "centernet_hardnet_85": ModelConfig(85, dict(DETECTION_HEADS), False, False, False),
    "centernet_hardnet_68": ModelConfig(68, dict(DETECTION_HEADS), False, False, False),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise CtrtError(f"unknown arch {name!r}; choose one of: {', '.join(PRESETS)}") from None

# Models ctrt builds itself, and what every command says of them (kept here, free of torch: run and bench read it).
BUILTINS = {"demo": "the built-in demo model (seeded HarDNet-85, heads fitted to ctrt's generated demo scenes; "
                    "blind to the real world)"}
