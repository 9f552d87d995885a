"""Per TensorRT line, the ONNX parser facts ``ctrt/trt_rules.py`` checks as data, read from onnx/onnx-tensorrt.

    .venv/bin/python tools/onnx_tensorrt_facts.py PATH_TO_ONNX_TENSORRT_GIT > ctrt/assets/trt_parser.json

For each release branch: the ops that have an importer (``DEFINE_BUILTIN_OP_IMPORTER`` in builtin_op_importers.cpp,
onnxOpImporters.cpp from 10.0) and the opset range docs/operators.md states. Nothing is copied but names and numbers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

# TensorRT line -> the onnx-tensorrt branch its parser comes from
BRANCHES = {"8.5": "8.5-GA", "8.6": "8.6-GA", "10": "10.1-GA"}
IMPORTER_FILES = ("builtin_op_importers.cpp", "onnxOpImporters.cpp")


def show(repo: str, branch: str, path: str) -> str | None:
    done = subprocess.run(["git", "-C", repo, "show", f"{branch}:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def facts(repo: str, branch: str) -> dict[str, object]:
    source = next(text for name in IMPORTER_FILES if (text := show(repo, branch, name)))
    ops = sorted(set(re.findall(r"^DEFINE_BUILTIN_OP_IMPORTER\((\w+)\)", source, re.MULTILINE)))
    header = show(repo, branch, "docs/operators.md") or ""
    ranged = re.search(r"range of opset (\d+) to opset (\d+)", header)
    upto = re.search(r"up to Opset (\d+)", header)
    low, high = (int(ranged[1]), int(ranged[2])) if ranged else (1, int(upto[1]) if upto else 0)
    return {"branch": branch, "opsets": [low, high], "ops": [op for op in ops if not op.startswith("TRT_") and not op.endswith("Importer")]}


if __name__ == "__main__":
    print(json.dumps({line: facts(sys.argv[1], branch) for line, branch in BRANCHES.items()}, indent=1))
