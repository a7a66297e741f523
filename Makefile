# Two commands set up everything on a fresh machine with Python 3.11:
#   make demo   -> installs, then plays a few Crafter episodes with the self-evolving agent
#   make test   -> installs, then runs the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch first and pinned: anything that depends on it would otherwise pull a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	rm -rf runs/demo
	$(BIN)/steve run --env crafter --agent steve --episodes 3 --seed 1 --max-steps 1000 --out runs/demo --video

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/bench_envs.py

clean:
	rm -rf $(VENV) runs .pytest_cache
