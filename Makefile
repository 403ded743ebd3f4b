# The two front-door commands: `make run` and `make test`.
# Everything they need is installed here, into .venv, from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.doorlink-installed

.PHONY: run test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

run: $(STAMP)
	$(VENV)/bin/doorlink demo

# Every test; the lint and the layer contracts are tests too (tests/host/test_layers.py).
test: $(STAMP)
	$(PY) -m pytest

# The same lint and contracts on their own, for a quick look while editing.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf build .pytest_cache
