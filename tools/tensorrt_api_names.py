"""Per TensorRT release, the Python API names of the classes ctrt touches, read from PyPI's bindings wheels.

    .venv/bin/python tools/tensorrt_api_names.py PATH_TO_NVIDIA_TENSORRT_GIT > ctrt/assets/trt_api.json

``tensorrt-bindings`` (8.6.1) and ``tensorrt-cu12-bindings`` (10.x, 11.x) hold only the compiled module; it links
against libnvinfer, libnvinfer_plugin and libnvonnxparser but calls into them only when used, so it imports against
empty stand-in libraries (built here with gcc) and ``dir()`` lists what that release binds. 8.5 has no bindings wheel:
its names are 8.6.1's minus those that NVIDIA/TensorRT's 8.5.1 binding sources (python/src) never bind, which the
8.6.1 sources do. Output: every ``Class.member`` (and top-level name) with the ranges of releases that have it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The newest patch of each minor release; one list per line ctrt serves.
RELEASES = {
    "8.6": ["tensorrt-bindings==8.6.1"],
    "10": [f"tensorrt-cu12-bindings=={v}" for v in (
        "10.0.1", "10.1.0", "10.2.0.post1", "10.3.0", "10.4.0", "10.5.0", "10.6.0.post2", "10.7.0.post1", "10.8.0.43",
        "10.9.0.34", "10.10.0.31", "10.11.0.33", "10.12.0.36", "10.13.3.9.post1", "10.14.1.48.post1", "10.15.1.29",
        "10.16.1.11")],
    "11": [f"tensorrt-cu12-bindings=={v}" for v in ("11.0.0.114", "11.1.0.106", "11.2.1.2", "11.3.0.99", "11.4.0.106")],
}
# Every class and enum ctrt's engines/, runtime/ and calibration/ code reaches (and the simulation stands in for).
CLASSES = ("Builder", "IBuilderConfig", "INetworkDefinition", "ITensor", "ILayer", "OnnxParser", "ParserError",
           "Runtime", "ICudaEngine", "IExecutionContext", "IOptimizationProfile", "ITimingCache", "IHostMemory",
           "Logger", "ILogger", "Dims", "IInt8Calibrator", "IProgressMonitor", "BuilderFlag", "MemoryPoolType",
           "NetworkDefinitionCreationFlag", "DataType", "TensorIOMode", "DeviceType", "CalibrationAlgoType")
# Commits of NVIDIA/TensorRT whose python/src are the 8.5.1 and 8.6.1 bindings.
SOURCES_85, SOURCES_86 = "1d6bf360", "c89bc836"

LIST_NAMES = """
import json, sys
sys.path.insert(0, sys.argv[1])
import tensorrt_bindings as trt  # the package: the compiled module plus nptype, volume
names = {"": sorted(n for n in dir(trt) if not n.startswith("_"))}
for cls in sys.argv[2].split(","):
    obj = getattr(trt, cls, None)
    if obj is not None:
        members = getattr(obj, "__members__", None)  # enums: their members, not pybind's helpers
        names[cls] = sorted(set(members or ()) | {n for n in dir(obj) if not n.startswith("_")})
print(json.dumps(names))
"""


def stand_in_libraries(module: Path, folder: Path) -> None:
    """Empty libraries with the sonames ``module`` needs from TensorRT, defining the symbols it imports from them
    (unversioned and not Python's; the C/C++ runtime's are versioned)."""
    dynamic = subprocess.run(["readelf", "-d", str(module)], capture_output=True, text=True, check=True).stdout
    sonames = re.findall(r"\[(libnv\w+\.so\.\d+)\]", dynamic)
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(module)], capture_output=True, text=True,
                               check=True).stdout
    symbols = [line.split()[-1] for line in undefined.splitlines()
               if line.split()[0] == "U" and "@" not in line and not line.split()[-1].startswith(("Py", "_Py", "dl"))]
    source = folder / "entry.c"
    source.write_text("".join(f'void *entry{i}(void) __asm__("{name}");\nvoid *entry{i}(void) {{ return 0; }}\n'
                              for i, name in enumerate(symbols)))
    for soname in sonames:
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / soname), f"-Wl,-soname,{soname}",
                        str(source)], check=True)


def release_names(requirement: str, work: Path) -> tuple[str, dict[str, list[str]]]:
    wheels = work / requirement.replace("==", "-")
    py = f"{sys.version_info.major}{sys.version_info.minor}"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "--python-version", py, "--platform", "manylinux_2_28_x86_64", "--platform",
                    "manylinux_2_17_x86_64", "-d", str(wheels), requirement], check=True)
    wheel = next(wheels.glob("*.whl"))
    zipfile.ZipFile(wheel).extractall(wheels / "unpacked")
    libs = wheels / "libs"
    libs.mkdir()
    stand_in_libraries(wheels / "unpacked" / "tensorrt_bindings" / "tensorrt.so", libs)
    listed = subprocess.run([sys.executable, "-c", LIST_NAMES, str(wheels / "unpacked"), ",".join(CLASSES)],
                            env={"LD_LIBRARY_PATH": str(libs), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, check=True)
    version = requirement.split("==")[1].split(".post")[0]
    return version, json.loads(listed.stdout)


def bound_in_sources(repo: str, commit: str) -> set[str]:
    """Every name python/src binds at ``commit``: class_/enum_ names and .def*/.value names."""
    files = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", commit, "python/src"],
                           capture_output=True, text=True, check=True).stdout.split()
    text = "".join(subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], capture_output=True, text=True,
                                  check=True).stdout for path in files if path.endswith((".cpp", ".h")))
    binding = r'(?:\.def\w*|\.value|class_<[^;{]*?>|enum_<[^;{]*?>)\s*\(\s*(?:m\s*,\s*)?"(\w+)"'
    return set(re.findall(binding, text, re.DOTALL))


def derive_85(names_86: dict[str, list[str]], repo: str) -> tuple[dict[str, list[str]], list[str]]:
    new_in_86 = bound_in_sources(repo, SOURCES_86) - bound_in_sources(repo, SOURCES_85)
    derived = {cls: [n for n in names if n not in new_in_86] for cls, names in names_86.items() if cls not in new_in_86}
    return derived, sorted(new_in_86)


def ranges(present: list[bool]) -> list[list[int]]:
    spans: list[list[int]] = []
    for index, here in enumerate(present):
        if here and spans and spans[-1][1] == index - 1:
            spans[-1][1] = index
        elif here:
            spans.append([index, index])
    return spans


def main(repo: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        per_release = dict(release_names(req, Path(tmp)) for line in RELEASES.values() for req in line)
    first_86 = next(iter(per_release))
    names_85, not_in_85 = derive_85(per_release[first_86], repo)
    releases = {"8.5": names_85, **per_release}
    order = list(releases)
    qualified = sorted({f"{cls}.{n}" if cls else n for names in releases.values() for cls, members in names.items()
                        for n in members if cls in ("", *CLASSES)})

    def has(release: str, name: str) -> bool:
        cls, _, member = name.rpartition(".")
        return member in releases[release].get(cls, ())

    print(json.dumps({
        "source": "PyPI tensorrt-bindings 8.6.1 and tensorrt-cu12-bindings wheels (dir() of the package); "
                  f"8.5: 8.6.1 less what NVIDIA/TensorRT {SOURCES_85} (8.5.1) python/src does not bind",
        "releases": order, "not_in_8.5": not_in_85,
        "names": {name: ranges([has(r, name) for r in order]) for name in qualified},
    }, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1])
