"""`ctrt doctor` and `ctrt selftest`, here (no TensorRT) and with the TensorRT simulation."""

import json

import pytest

import trt_simulation as sim
from ctrt import selftest
from ctrt.doctor import jetson_release
from conftest import invoke


def doctor_json():
    result = invoke("doctor", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    return {c["name"]: c for c in data["checks"]}, data["commands"]


def test_doctor_reports_what_is_missing_here():
    checks, commands = doctor_json()
    assert not checks["TensorRT"]["ok"] and "not installed" in checks["TensorRT"]["detail"]
    assert checks["ONNX Runtime"]["ok"] and "CPU" in checks["ONNX Runtime"]["detail"]
    assert commands == {"export": True, "run .onnx / .pth": True, "build": False, "run .engine": False,
                        "run triton://": True}
    table = invoke("doctor").output
    assert "ready: export yes, run .onnx / .pth yes, build no, run .engine no" in table


def test_doctor_sees_tensorrt_gpu_and_dla(monkeypatch):
    sim.install(monkeypatch, "10.3.0", dla_cores=2)
    checks, commands = doctor_json()
    assert checks["TensorRT"]["detail"] == ("10.3.0, ONNX parser rules of the 10 line (onnx-tensorrt 10.1-GA), "
                                            "API names of 10.3.0, 2 DLA cores")
    assert checks["GPU"]["detail"] == "Orin (simulated), compute capability 8.7 (via cuda-python)"
    assert commands["build"] and commands["run .engine"]


def test_doctor_says_what_ctrt_checked_for_the_installed_tensorrt():
    from ctrt.doctor import _checked_against

    assert _checked_against("8.5.2.2") == "ONNX parser rules of the 8.5 line (onnx-tensorrt 8.5-GA), API names of 8.5"
    assert _checked_against("11.1.0") == ("ONNX parser rules of the 11 line (onnx-tensorrt 10.1-GA (TensorRT 11 read "
                                          "as 10.1-GA)), API names of 11.1.0.106")
    assert _checked_against("10.17.0").endswith("API names unchecked (checked up to 11.4.0.106)")
    assert _checked_against("12.0.0").startswith("TensorRT 12.0.0: ctrt supports TensorRT 8.5, 8.6, 10, 11")


def test_jetson_release_names_jetpack(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: x\n")
    assert jetson_release(release) == "L4T 35.4.1 (JetPack 5.1.2)"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic\n")
    assert jetson_release(release) == "L4T 36.4.3 (JetPack 6.1/6.2)"
    assert jetson_release(tmp_path / "missing") is None


@pytest.mark.slow
def test_selftest_without_tensorrt_skips_that_part():
    result = invoke("selftest")
    assert result.exit_code == 0, result.output
    assert "PASS export + ONNX Runtime vs PyTorch" in result.output and "SKIP TensorRT FP32 / FP16" in result.output
    assert "selftest: 2 passed, 0 failed, 1 skipped" in result.output


@pytest.mark.slow
def test_selftest_with_tensorrt_compares_both_precisions(monkeypatch):
    sim.install(monkeypatch, "10.3.0")
    monkeypatch.setattr(selftest, "FRAMES", 3)  # the verdicts are what this test checks, not the frames
    # FP16 asked for more than full agreement: one run shows both verdicts, a pass and a failure that fails the run.
    monkeypatch.setitem(selftest.MIN_TRACK_AGREEMENT, "fp16", 1.01)
    result = invoke("selftest")
    assert "PASS TensorRT FP32 vs ONNX Runtime: hm 0.0e+00" in result.output and "tracks agree 100%" in result.output
    fp16 = next(line for line in result.output.splitlines() if "TensorRT FP16 vs ONNX Runtime" in line)
    assert fp16.startswith("FAIL") and "tracks agree 100%" in fp16, result.output
    assert result.exit_code == 1 and "1 failed" in result.output
