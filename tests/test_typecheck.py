"""mypy against TensorRT's stubs catches wrong TensorRT calls (make typecheck runs it on ctrt itself)."""

from pathlib import Path

from mypy import api

STUBS = Path(__file__).resolve().parents[1] / ".venv" / "tensorrt-stubs"

WRONG = '''
import tensorrt as trt

def build(path: str) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    config = builder.create_builder_config()
    config.max_workspace_size = 1 << 30          # removed in TensorRT 10
    engine = builder.build_engine(network, config)  # removed in TensorRT 10
    context = engine.create_execution_context()
    context.execute_async_v3(stream_handle="0")  # a handle is an int
'''


def test_wrong_tensorrt_calls_fail_type_checking(tmp_path, monkeypatch):
    assert (STUBS / "tensorrt_bindings" / "tensorrt.pyi").is_file(), "run `make typecheck` to install the stubs"
    snippet = tmp_path / "wrong.py"
    snippet.write_text(WRONG)
    monkeypatch.setenv("MYPYPATH", str(STUBS))
    report, _, status = api.run([str(snippet), "--no-incremental", "--follow-imports=silent",
                                 "--config-file", str(Path(__file__).resolve().parents[1] / "pyproject.toml")])
    assert status == 1
    assert '"IBuilderConfig" has no attribute "max_workspace_size"' in report
    assert '"Builder" has no attribute "build_engine"' in report
