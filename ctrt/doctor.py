"""``ctrt doctor``: what this machine has and lacks for each command."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .version import __version__
from .errors import CtrtError

# L4T major.minor -> JetPack release (NVIDIA's JetPack archive).
JETPACK = {"35.2": "5.1", "35.3": "5.1.1", "35.4": "5.1.2", "35.5": "5.1.3", "35.6": "5.1.4", "36.2": "6.0 DP",
           "36.3": "6.0", "36.4": "6.1/6.2", "38.2": "7.0", "38.4": "7.1", "39.2": "7.2"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def jetson_release(tegra_release: Path = Path("/etc/nv_tegra_release")) -> str | None:
    """'L4T 35.4.1 (JetPack 5.1.2)' from e.g. '# R35 (release), REVISION: 4.1, GCID: ...'."""
    if not tegra_release.is_file():
        return None
    first = tegra_release.read_text().splitlines()[0]
    try:
        major = first.split("R", 1)[1].split(" ", 1)[0]
        revision = first.split("REVISION:", 1)[1].split(",", 1)[0].strip()
    except IndexError:
        return first.strip("# ")
    l4t = f"{major}.{revision}"
    jetpack = JETPACK.get(".".join(l4t.split(".")[:2]))
    return f"L4T {l4t}" + (f" (JetPack {jetpack})" if jetpack else "")


def _checked_against(version: str) -> str:
    """What ctrt checks for this TensorRT version without running it: parser rules and Python API names."""
    from .trt_api import release_of, releases
    from .trt_rules import parser_branch, trt_line

    try:
        line = trt_line(version)
    except CtrtError as exc:
        return str(exc)
    release = release_of(version)
    api = f"API names of {release}" if release else f"API names unchecked (checked up to {releases()[-1]})"
    return f"ONNX parser rules of the {line} line (onnx-tensorrt {parser_branch(line)}), {api}"


def _tensorrt() -> Check:
    from .runtime.tensorrt_import import require_tensorrt

    try:
        require_tensorrt()
    except CtrtError as exc:
        return Check("TensorRT", False, str(exc).split(";")[0])
    import tensorrt as trt

    detail = f"{trt.__version__}, {_checked_against(str(trt.__version__))}"
    try:
        detail += f", {trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores} DLA cores"
    except Exception as exc:  # a Builder needs a working GPU
        detail += f" (no builder: {str(exc).splitlines()[0]})"
    return Check("TensorRT", True, detail)


def _cuda() -> list[Check]:
    from .runtime.cuda_memory import import_cuda_runtime, open_cuda

    bindings = []
    if import_cuda_runtime() is not None:
        bindings.append(f"cuda-python {_version('cuda-python') or _version('cuda-bindings') or ''}".strip())
    if _version("pycuda"):
        bindings.append(f"pycuda {_version('pycuda')}")
    checks = [Check("CUDA Python bindings", bool(bindings), ", ".join(bindings) or "neither cuda-python nor pycuda")]
    try:
        cuda = open_cuda()
        name, capability = cuda.device()
        cuda.close()
        checks.append(Check("GPU", True, f"{name}, compute capability {capability} (via {cuda.name})"))
    except CtrtError as exc:
        checks.append(Check("GPU", False, str(exc)))
    except Exception as exc:  # driver libraries missing: the bindings raise their own errors
        checks.append(Check("GPU", False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
    return checks


def _onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError:
        return Check("ONNX Runtime", False, "not installed")
    providers = [p.replace("ExecutionProvider", "") for p in ort.get_available_providers()]
    return Check("ONNX Runtime", True, f"{ort.__version__}, providers listed: {', '.join(providers)} "
                                       "(a GPU provider is confirmed only when a session starts on it)")


def _opencv() -> list[Check]:
    try:
        import cv2
    except ImportError:
        return [Check("OpenCV", False, "not installed: pip install 'ctrt[video]', or JetPack's python3-opencv")]

    from .runtime.sources import has_gstreamer

    backends = [cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends()
                if cv2.videoio_registry.hasBackend(b)]
    gstreamer = has_gstreamer()
    gui = not any(line.split() == ["GUI:", "NONE"] for line in cv2.getBuildInformation().splitlines())
    return [Check("OpenCV", True, f"{cv2.__version__}, video I/O: {', '.join(dict.fromkeys(backends))}"),
            Check("GStreamer (CSI cameras)", gstreamer, "available" if gstreamer else "not in this OpenCV build"),
            Check("OpenCV window (--show)", gui, "GUI available" if gui else "headless build")]


def run_checks() -> list[Check]:
    checks = [Check("ctrt", True, f"{__version__} on Python {sys.version.split()[0]}, {platform.machine()}")]
    jetson = jetson_release()
    checks.append(Check("Jetson", jetson is not None, jetson or "not a Jetson (no /etc/nv_tegra_release)"))
    for package in ("torch", "onnx", "onnxsim"):
        version = _version(package)
        checks.append(Check(package, version is not None, version or "not installed"))
    checks.append(_onnxruntime())
    checks.append(_tensorrt())
    checks.extend(_cuda())
    checks.extend(_opencv())
    client = _version("tritonclient")
    checks.append(Check("Triton client", client is not None,
                        f"tritonclient {client}" if client else "not installed: pip install 'ctrt[serve]'"))
    return checks


def command_readiness(checks: list[Check]) -> dict[str, bool]:
    ok = {c.name: c.ok for c in checks}
    gpu = ok["TensorRT"] and ok["GPU"]
    return {"export": ok["torch"] and ok["onnx"] and ok["onnxsim"] and ok["ONNX Runtime"],
            "run .onnx / .pth": ok["ONNX Runtime"], "build": gpu, "run .engine": gpu,
            "run triton://": ok["Triton client"]}


def as_json(checks: list[Check]) -> dict[str, object]:
    return {"checks": [asdict(c) for c in checks], "commands": command_readiness(checks)}
