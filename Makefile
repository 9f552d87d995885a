# Fresh machine: `make demo` or `make test` creates .venv and installs everything first.
VENV ?= .venv
PYTHON ?= python3
# Named on the same pip line so pip takes the local CPU build instead of resolving a CUDA torch.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.ctrt-installed

# TensorRT's type stubs live outside site-packages (installed there they would shadow a real TensorRT) and need
# two fixes to parse: parameters named `in`, and a non-default argument after a default one.
STUBS := $(VENV)/tensorrt-stubs
TRT_STUBS ?= tensorrt-stubs==10.13.0.35.1

.PHONY: demo test typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q "$(TORCH)" -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/ctrt demo

$(STUBS)/.patched: | $(STAMP)
	rm -rf $(STUBS)
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --target $(STUBS) "$(TRT_STUBS)"
	sed -i -E 's/\bin: /in_: /g; s/power: Weights = None, channel_axis: int\)/power: Weights = None, channel_axis: int = 0)/' \
		$(STUBS)/tensorrt_bindings/tensorrt.pyi
	touch $@

typecheck: $(STAMP) $(STUBS)/.patched
	MYPYPATH=$(STUBS) $(BIN)/python -m mypy

test: $(STAMP) typecheck
	$(BIN)/python -m pytest -q

clean:
	rm -rf export/*.onnx* engines/*.engine* calibration/*.cache* runs/
