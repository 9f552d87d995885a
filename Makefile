# Fresh machine: `make demo` or `make test` creates .venv and installs everything first.
VENV ?= .venv
PYTHON ?= python3
# Named on the same pip line so pip takes the local CPU build instead of resolving a CUDA torch.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.ctrt-installed

.PHONY: demo test typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q "$(TORCH)" -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/ctrt demo

typecheck: $(STAMP)
	$(BIN)/python -m mypy

test: $(STAMP) typecheck
	$(BIN)/python -m pytest -q

clean:
	rm -rf export/*.onnx* engines/*.engine* calibration/*.cache* runs/
