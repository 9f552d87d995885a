"""A module of the package as it was at a git revision, loaded beside this tree's, for timing the two in one run."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def module_at(revision: str, module: str) -> ModuleType:
    """``module`` (dotted, e.g. ``ctrt.runtime.tracker``) as it was at ``revision``, as a sibling module in its
    package, so its relative imports reach this tree's."""
    path = module.replace(".", "/") + ".py"
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:{path}"],
                            capture_output=True, text=True, check=True).stdout
    package = module.rpartition(".")[0]
    importlib.import_module(package)
    name = f"{package}._{module.rpartition('.')[2]}_at_revision"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    loaded = importlib.util.module_from_spec(spec)
    loaded.__package__ = package
    sys.modules[name] = loaded
    exec(compile(source, f"{revision}:{path}", "exec"), loaded.__dict__)
    return loaded
