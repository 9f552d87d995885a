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

# Triton Inference Server (for `ctrt serve` and the Triton tests) comes in the nvidia-pytriton wheel, which needs
# numpy < 2: it gets an environment of its own, with the same ONNX Runtime as the project's for identical results
# and a numpy-1 OpenCV (< 4.11) for the stateful model's JPEG decoding.
TRITON_ENV ?= .venv-triton
TRITON_STAMP := $(TRITON_ENV)/.ctrt-installed

# Real components the tests start themselves, from Debian: Mosquitto (MQTT), systemd-analyze (unit checks),
# Chromium (the live-view page, headless).
SYSTEM_TOOLS := mosquitto:mosquitto mosquitto_passwd:mosquitto systemd-analyze:systemd chromium:chromium

.PHONY: demo test check docs typecheck triton-env system-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q "$(TORCH)" -e '.[dev]'
	touch $@

$(TRITON_STAMP): $(STAMP)
	test -x $(TRITON_ENV)/bin/python || $(PYTHON) -m venv $(TRITON_ENV)
	$(TRITON_ENV)/bin/pip install --disable-pip-version-check -q nvidia-pytriton==0.7.0 "numpy<2" "opencv-python-headless<4.11" \
		"onnxruntime==$$($(BIN)/python -c 'import onnxruntime; print(onnxruntime.__version__)')"
	touch $@

triton-env: $(TRITON_STAMP)

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

system-tools:
	@missing=$$(for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null || echo $${pair#*:}; done | sort -u); \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

# The docs site into site/; strict: a broken link, a missing page or any warning fails it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# What the tests need is made side by side once the main environment exists: pip, apt-get, mypy and mkdocs wait on
# different things.
test: $(STAMP)
	$(MAKE) --no-print-directory -j4 $(TRITON_STAMP) system-tools typecheck docs
	CTRT_TRITON_ENV=$(TRITON_ENV) $(BIN)/python -m pytest -q --durations=20

# The fast tier, before each commit: no Triton, broker, HTTP, browser or test marked slow (pyproject.toml).
check: $(STAMP) $(STUBS)/.patched
	$(BIN)/python -m pytest -q -m "not slow and not triton and not service and not browser"

clean:
	rm -rf export/*.onnx* engines/*.engine* calibration/*.cache* runs/ site/
