"""The benchmarks drive ctrt as a user would: through its console script, failing loudly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CTRT = str(Path(sys.executable).with_name("ctrt"))


def ctrt(*args: object) -> str:
    result = subprocess.run([CTRT, *map(str, args)], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"ctrt {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout
