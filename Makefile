# Both targets create and reuse .venv; a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow test-all bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision first and exactly pinned: a bare `torch` requirement pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lstmfpga demo --out $(DEMO_OUT)

# `make test` leaves out the checks marked slow (RTL sweeps, the demo end to end, Verilator and
# Yosys builds); `make test-slow` runs just those, `make test-all` (and CI) both in one session:
# one Verilator build cache, and work stealing keeps both workers busy through the long tests.
TEST_SELECTION ?= not slow
test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal --timeout=1200 --durations=25 -m "$(TEST_SELECTION)" tests

test-slow:
	$(MAKE) test TEST_SELECTION=slow

test-all:
	$(MAKE) test TEST_SELECTION="slow or not slow"

bench: $(STAMP)
	$(VENV)/bin/lstmfpga bench all

clean:
	rm -rf $(DEMO_OUT) build sim_build .pytest_cache .hypothesis
