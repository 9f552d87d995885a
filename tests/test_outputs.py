"""Output-path checks and atomic writes: the pieces behind the CLI contract of tests/test_bad_inputs.py."""

import errno

import pytest

from ctrt.errors import CtrtError
from ctrt.outputs import atomic_outputs, check_outputs
from ctrt.sizes import check_memory


def test_a_set_of_files_appears_whole_or_not_at_all(tmp_path):
    model, sidecar = tmp_path / "new" / "deeper" / "m.onnx", tmp_path / "new" / "deeper" / "m.onnx.json"
    with pytest.raises(CtrtError, match=r"cannot write .*m.onnx: no space left on device; nothing was written"):
        with atomic_outputs(model, sidecar) as (model_tmp, sidecar_tmp):
            model_tmp.write_bytes(b"model")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []  # no file, no temporary, not even the folders made for them

    with atomic_outputs(model, sidecar) as (model_tmp, sidecar_tmp):
        model_tmp.write_bytes(b"model")
        sidecar_tmp.write_text("{}")
        assert not model.exists()  # nothing is visible until the block completes
    assert model.read_bytes() == b"model" and sorted(p.name for p in model.parent.iterdir()) == ["m.onnx", "m.onnx.json"]


def test_an_error_that_is_not_about_writing_passes_through_unchanged(tmp_path):
    with pytest.raises(CtrtError, match="parity"):
        with atomic_outputs(tmp_path / "m.onnx"):
            raise CtrtError("parity check failed")
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_compared_by_the_file_they_name(tmp_path):
    source = tmp_path / "in.avi"
    source.write_bytes(b"video")
    (tmp_path / "link.avi").symlink_to(source)
    with pytest.raises(CtrtError, match="is also an input"):
        check_outputs({"--save-video": tmp_path / "sub" / ".." / "link.avi"}, [source])
    with pytest.raises(CtrtError, match="both name"):
        check_outputs({"--save-mot": tmp_path / "a.txt", "--save-json": tmp_path / "." / "a.txt"})
    check_outputs({"--save-mot": tmp_path / "new" / "a.txt", "--save-json": None}, [source])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi", "link.avi"]  # the probe left nothing


def test_memory_estimate_refuses_sizes_that_cannot_fit():
    check_memory(512, 512, available=4 << 30)
    with pytest.raises(CtrtError, match=r"input_size 4096x4096 \(batch 8\) needs about 188.4 GiB"):
        check_memory(4096, 4096, batch=8, available=16 << 30)


def test_a_signal_inside_a_held_block_waits_for_its_end():
    import os
    import signal

    from ctrt.errors import Interrupted
    from ctrt.shutdown import signals_held, stop_on_signals

    written = []
    with pytest.raises(Interrupted) as stopped, stop_on_signals():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)  # delivered at once, raised only when the block ends
            written.append("video")
            written.append("json")
    assert written == ["video", "json"] and stopped.value.exit_code == 143
