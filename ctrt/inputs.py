"""Every file a command reads (site files, secrets, sidecars, COCO JSON, MOT tables, lists of sources, images): a
regular file of bounded size, text as UTF-8, refused in one line naming the file when it is not, so that no file
we read can hang the run (a FIFO), exhaust its memory (/dev/zero) or end in a traceback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import CtrtError

MiB = 1 << 20
TEXT_LIMIT = 64 * MiB  # settings, secrets, tables and lists: far above any real one
JSON_LIMIT = 2048 * MiB  # COCO's train2017 instances are 450 MB
IMAGE_LIMIT = 512 * MiB  # an image file; its pixels are bounded by ctrt.MAX_IMAGE_PIXELS when decoded
KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


def regular_file(path: Path, what: str = "", limit: int = TEXT_LIMIT) -> int:
    """``path``'s size, once it is known to be a regular file (links followed) of at most ``limit`` bytes; checked
    before it is opened, since opening a FIFO blocks. ``what``: the parameter that named it, for the message."""
    label = f"{what} {path}" if what else str(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CtrtError(f"{label}: {exc.strerror or exc}", option=what or None) from None
    if not stat.S_ISREG(info.st_mode):
        kind = KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise CtrtError(f"{label}: {kind}, not a file", option=what or None)
    if info.st_size > limit:
        raise CtrtError(f"{label}: {info.st_size / MiB:.0f} MiB, more than the {limit // MiB} MiB such a file may "
                        "have", option=what or None)
    return info.st_size


def read_bytes(path: Path, what: str = "", limit: int = TEXT_LIMIT) -> bytes:
    """A regular file's bytes, at most ``limit`` of them (a file growing while read is cut there and refused)."""
    label = f"{what} {path}" if what else str(path)
    regular_file(path, what, limit)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise CtrtError(f"{label}: {exc.strerror or exc}", option=what or None) from None
    if len(data) > limit:
        raise CtrtError(f"{label}: more than the {limit // MiB} MiB such a file may have", option=what or None)
    return data


def read_text(path: Path, what: str = "", limit: int = TEXT_LIMIT) -> str:
    """A text file as UTF-8. ``what``: the parameter that named it (``sources``), for the message."""
    label = f"{what} {path}" if what else str(path)
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CtrtError(f"{label}: not UTF-8 text (byte {exc.start})", option=what or None) from None


def parse_json(text: str, origin: str) -> Any:
    """JSON text; ``origin`` names it in the message when it is not JSON or nests deeper than Python can parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise CtrtError(f"{origin}: JSON nested too deep to read") from None
    except ValueError as exc:
        raise CtrtError(f"{origin}: not JSON ({exc})") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value == value and abs(value) != float("inf"))


# Per COCO section, the fields pycocotools reads and what each must be (optional ones are checked when present).
_COCO_FIELDS: dict[str, dict[str, tuple[Any, str, bool]]] = {
    "images": {"id": (_is_int, "an integer", True), "file_name": (lambda v: isinstance(v, str) and v, "a file name", True),
               "width": (lambda v: _is_int(v) and v > 0, "a positive integer", False),
               "height": (lambda v: _is_int(v) and v > 0, "a positive integer", False)},
    "annotations": {"id": (_is_int, "an integer", False), "image_id": (_is_int, "an integer", True),
                    "category_id": (_is_int, "an integer", True),
                    "bbox": (lambda v: isinstance(v, list) and len(v) == 4 and all(map(_is_number, v))
                             and v[2] >= 0 and v[3] >= 0, "[x, y, w, h] with w, h >= 0", True),
                    "area": (lambda v: _is_number(v) and v >= 0, "a number >= 0", False),
                    "iscrowd": (lambda v: v in (0, 1) and not isinstance(v, bool), "0 or 1", False)},
    "categories": {"id": (_is_int, "an integer", True), "name": (lambda v: isinstance(v, str), "a name", False)},
}


def read_coco_instances(path: Path, what: str = "") -> dict[str, Any]:
    """A COCO instances JSON with every field pycocotools uses of the type it needs; the first one that is not is
    an error naming the file, the entry and the field."""
    data = parse_json(read_text(path, what, JSON_LIMIT), str(path))
    if not isinstance(data, dict):
        raise CtrtError(f"{path}: not a COCO instances file (a JSON object with images, annotations, categories)")
    for section, spec in _COCO_FIELDS.items():
        entries = data.get(section)
        if not isinstance(entries, list):
            raise CtrtError(f"{path}: not a COCO instances file ({section!r} is not a list)")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise CtrtError(f"{path}: {section}[{index}] is not an object")
            for name, (valid, want, required) in spec.items():
                if name not in entry:
                    if required:
                        raise CtrtError(f"{path}: {section}[{index}] has no {name!r}")
                    continue
                if not valid(entry[name]):
                    raise CtrtError(f"{path}: {section}[{index}].{name} is {str(entry[name])[:40]!r}, not {want}")
    return data
