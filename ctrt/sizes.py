"""Model and frame sizes given on the command line, and whether this machine has the memory for a model size."""

from __future__ import annotations

from pathlib import Path

from .errors import CtrtError

# Measured: exporting HarDNet-85 (trace, simplify, parity check) peaks at about 1 GB plus 1.43 kB per input pixel
# (1.43 GB more from 1024x1024 to 2048x2048); inference needs less. Estimating before allocating turns a size that
# passes the multiple-of-32 rule but cannot fit (100000x100000) into one line instead of an allocator traceback.
BASE_BYTES = 1.0e9
BYTES_PER_PIXEL = 1500
# Camera frames: the largest side ctrt takes (OpenCV's own image limit is 2^30 pixels; 16384 is above any camera),
# and a generous bound on what one frame costs in the fast path's export (uint8 input, its float copy, the
# GridSample input and the traced graph's copies: measured under 60 bytes per pixel).
MAX_FRAME_SIDE = 16384
BYTES_PER_FRAME_PIXEL = 60


def parse_input_size(text: str) -> tuple[int, int]:
    """'512', '512x512' or '384x640' (H x W); both sides must be positive multiples of 32."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise CtrtError(f"input_size {text!r}: expected HxW such as 512x512", option="input_size") from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2 or min(dims) <= 0:
        raise CtrtError(f"input_size {text!r}: expected HxW such as 512x512", option="input_size")
    h, w = dims
    if h % 32 or w % 32:
        def near(v: int) -> list[int]:
            return sorted({max(32, v // 32 * 32), (v + 31) // 32 * 32})

        options = [f"{a}x{b}" for a in near(h) for b in near(w)]
        raise CtrtError(f"input_size {h}x{w}: height and width must be multiples of 32; nearest valid: "
                        + ", ".join(options), option="input_size")
    return h, w


def parse_frame_size(text: str, option: str = "source_size", count: int = 1) -> tuple[int, int]:
    """'1280x720' (W x H, as cameras are described) -> (W, H), each side at most ``MAX_FRAME_SIDE``, and ``count``
    such frames (a batch) within the memory this machine has free. ``option``: the parameter the text came from."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CtrtError(f"{option} {text!r}: expected WxH such as 1280x720", option=option) from None
    if min(w, h) <= 0:
        raise CtrtError(f"{option} {text!r}: expected WxH such as 1280x720", option=option)
    if max(w, h) > MAX_FRAME_SIDE:
        raise CtrtError(f"{option} {w}x{h}: at most {MAX_FRAME_SIDE} pixels a side", option=option)
    need = BYTES_PER_FRAME_PIXEL * w * h * max(count, 1)
    free = available_memory()
    if free is not None and need > free:
        raise CtrtError(f"{option} {w}x{h} needs about {need / 2**30:.1f} GiB of memory; this machine has "
                        f"{free / 2**30:.1f} GiB available", option=option)
    return w, h


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable in bytes (Linux, so Jetsons too), or None where unknown."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(h: int, w: int, batch: int = 1, available: int | None = None) -> None:
    """Refuse a model size whose estimated working memory exceeds what this machine has free."""
    need = BASE_BYTES + BYTES_PER_PIXEL * h * w * max(batch, 1)
    free = available if available is not None else available_memory()
    if free is not None and need > free:
        raise CtrtError(f"input_size {h}x{w} (batch {max(batch, 1)}) needs about {need / 2**30:.1f} GiB of memory; "
                        f"this machine has {free / 2**30:.1f} GiB available. Choose a smaller size "
                        "(CenterTrack uses 512x512 or 544x960)", option="input_size")
