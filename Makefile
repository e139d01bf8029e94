# vocalab: `make repro` runs the pipeline, `make test` runs the test suite.
# Both create .venv and install the pinned dependencies first unless a virtual
# environment is already active.

PYTHON ?= python3
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.vocalab-installed

.PHONY: repro test bench accuracy install clean-venv

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

repro: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" vocalab check
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n auto --dist loadfile --durations=10

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/extraction.py --readme README.md

# speaker k-fold accuracy on a real corpus, e.g. make accuracy CORPUS=../shared/corpora/emodb-2s LAYOUT=emodb
accuracy: $(STAMP)
	@test -n "$(CORPUS)" -a -n "$(LAYOUT)" || { echo "usage: make accuracy CORPUS=path/to/corpus LAYOUT=emodb"; exit 2; }
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/accuracy.py "$(CORPUS)" --layout "$(LAYOUT)"

clean-venv:
	rm -rf .venv
