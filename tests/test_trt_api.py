"""TensorRT's Python API per release (ctrt/assets/trt_api.json, from PyPI's bindings wheels): what ctrt calls exists
in every release of the line that calls it, and the simulated module has exactly its release's names."""

import ast
from pathlib import Path

import pytest

import ctrt
import trt_simulation as sim
from ctrt import trt_api
from ctrt.demo import make_demo_video
from ctrt.trt_rules import trt_line
from conftest import invoke

CTRT = Path(ctrt.__file__).parent


def from_ctrt(expression: str, **names):
    """Evaluate ``expression`` as code in ctrt's package does, so the simulation checks what it reaches."""
    return eval(compile(expression, str(CTRT / "probe.py"), "eval"), names)


def test_the_recorded_releases_know_what_changed_between_them():
    last_10, first_11 = trt_api.line_releases("10")[-1], trt_api.line_releases("11")[0]
    assert trt_api.line_releases("10")[0] == "10.0.1" and last_10 == "10.16.1.11"
    assert trt_api.line_releases("11")[-1] == "11.4.0.106" and trt_api.line_releases("8.6") == ["8.6.1"]
    for gone in ("BuilderFlag.FP16", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS", "IBuilderConfig.int8_calibrator",
                 "IInt8EntropyCalibrator2", "NetworkDefinitionCreationFlag.EXPLICIT_BATCH"):
        assert gone in trt_api.names(last_10) and gone not in trt_api.names(first_11), gone
    for new in ("IProgressMonitor", "NetworkDefinitionCreationFlag.STRONGLY_TYPED", "IBuilderConfig.progress_monitor"):
        assert new not in trt_api.names("8.6.1") and new in trt_api.names("10.0.1"), new
    assert "ICudaEngine.device_memory_size_v2" in trt_api.names("10.1.0")
    assert "ICudaEngine.device_memory_size_v2" not in trt_api.names("10.0.1")
    # 8.5 lacks what 8.6 added (builder optimization levels, hardware compatibility); it has the name-based I/O API.
    assert "IBuilderConfig.builder_optimization_level" in trt_api.names("8.6.1")
    assert "IBuilderConfig.builder_optimization_level" not in trt_api.names("8.5")
    assert {"IExecutionContext.execute_async_v3", "IExecutionContext.set_tensor_address"} <= trt_api.names("8.5")
    assert trt_api.release_of("8.5.2.2") == "8.5" and trt_api.release_of("10.3.0") == "10.3.0"
    assert trt_api.release_of("11.4.1") == "11.4.0.106" and trt_api.release_of("10.17.0") is None


def test_every_trt_attribute_chain_in_ctrt_exists_in_some_release():
    """Statically, so a branch no test runs cannot call a name no release has."""
    known = set().union(*(trt_api.names(r) for r in trt_api.releases()))
    chains = set()
    for path in CTRT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                parts = []
                while isinstance(node, ast.Attribute):
                    parts.append(node.attr)
                    node = node.value
                if isinstance(node, ast.Name) and node.id == "trt" and not parts[-1].startswith("_"):
                    names = [p for p in reversed(parts) if not p.startswith("_")]
                    chains.add(".".join(names[:2]))
    assert {"Builder", "BuilderFlag.FP16", "Logger.WARNING", "IProgressMonitor"} <= chains
    assert sorted(chains - known) == []


@pytest.mark.parametrize("version", ["8.5.2", "8.6.1", "10.3.0", "11.4.1"])
def test_the_simulated_module_has_exactly_its_releases_names(monkeypatch, version):
    trt, _ = sim.install(monkeypatch, version)
    release = trt_api.release_of(version)
    everywhere = set().union(*(trt_api.names(r) for r in trt_api.releases()))
    for cls, trt_name in sim.SIMULATES.items():
        for name in {n.split(".", 1)[1] for n in everywhere if n.startswith(trt_name + ".")}:
            try:
                from_ctrt(f"cls.{name}", cls=cls)
                found = True
            except AttributeError:
                found = False
            except sim.SimulationError:  # the release has it; the simulation does not implement it
                found = True
            assert found == (name in trt_api.members(release, trt_name)), (version, trt_name, name)
    for name in {n for n in everywhere if "." not in n}:
        try:
            from_ctrt(f"trt.{name}", trt=trt)
            found = True
        except AttributeError:
            found = False
        except sim.SimulationError:
            found = True
        assert found == (name in trt_api.members(release, "")), (version, name)


def test_a_call_the_release_lacks_fails_as_tensorrt_fails(monkeypatch):
    trt, _ = sim.install(monkeypatch, "11.4.1")
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(AttributeError, match="'tensorrt.BuilderFlag' has no attribute 'FP16' in TensorRT 11.4.1"):
        from_ctrt("trt.BuilderFlag.FP16", trt=trt)
    with pytest.raises(AttributeError, match="int8_calibrator"):
        exec(compile("config.int8_calibrator = None", str(CTRT / "probe.py"), "exec"), {"config": config})
    with pytest.raises(AttributeError, match="IInt8Calibrator"):
        from_ctrt("trt.IInt8Calibrator", trt=trt)
    assert from_ctrt("trt.BuilderFlag.GPU_FALLBACK", trt=trt) is sim.BuilderFlag.GPU_FALLBACK
    assert "BuilderFlag.GPU_FALLBACK" in trt._used and "BuilderFlag" in trt._used
    trt, _ = sim.install(monkeypatch, "8.6.1")
    for missing in ("trt.IProgressMonitor", "trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED"):
        with pytest.raises(AttributeError):
            from_ctrt(missing, trt=trt)
    with pytest.raises(sim.SimulationError, match="tensorrt.ICudaEngine.num_layers exists"):
        from_ctrt("engine.num_layers", engine=sim.Engine.__new__(sim.Engine))


# The first and the last release of each TensorRT line.
LINE_VERSIONS = ["8.5.2", "8.6.1", "10.0.1", "10.16.1", "11.0.0", "11.4.0"]


@pytest.mark.slow
@pytest.mark.parametrize("version", LINE_VERSIONS)
def test_what_ctrt_reaches_on_a_line_exists_in_every_release_of_it(monkeypatch, onnx_85, demo_onnx, coco_dir,
                                                                   tmp_path, version):
    """Build (FP32 with workspace and timing cache, FP16 and INT8 calibration where the line has them (INT8 on a
    line's first release), a
    dynamic-batch engine), track with the engines, bench with CUDA graphs and ask doctor. Every name reached must
    exist in the simulated release (the simulation refuses the rest); what the first release of a line reaches, the
    code ctrt runs on the whole line, must exist in every later release of it (a name chosen by minor release, as
    ``device_memory_size_v2`` from 10.1, is reached only where it exists)."""
    trt, _ = sim.install(monkeypatch, version)
    monkeypatch.chdir(tmp_path)
    line = trt_line(version)
    images, annotations = coco_dir
    builds = [[onnx_85, "--workspace", "1", "--timing-cache", "t.cache", "-o", "a.engine"],
              [demo_onnx, "--max-batch", "2", "-o", "d.engine"]]
    first = trt_api.release_of(version) == trt_api.line_releases(line)[0]
    if line != "11":
        builds.append([onnx_85, "--fp16", "-o", "h.engine"])
    if line != "11" and first:  # the calibrator's names are the same within a line
        builds.append([onnx_85, "--int8", "--calib-images", images, "--calib-annotations", annotations,
                       "--calib-count", 2, "--held-out", 0, "-o", "i.engine"])
    for args in builds:
        result = invoke("build", *args)
        assert result.exit_code == 0, result.output
    video = make_demo_video(tmp_path / "v.mp4", frames=3, size=(320, 240))
    for engine in ("a.engine", "d.engine"):
        result = invoke("run", engine, "--source", video, "--save-json", f"{engine}.jsonl")
        assert result.exit_code == 0, result.output
        assert len(Path(f"{engine}.jsonl").read_text().splitlines()) == 3
    result = invoke("bench", "a.engine", "--cuda-graph", "--duration", "0.1", "--iterations", "2", "--frames", "2")
    assert result.exit_code == 0, result.output
    assert invoke("doctor").exit_code == 0
    assert {"Builder", "OnnxParser", "IExecutionContext.execute_async_v3", "ICudaEngine.num_io_tensors"} <= trt._used
    if first:
        assert trt_api.missing_on_line(trt._used, line) == {}
