# The two front-door commands: `make run` and `make test`.
# Everything they need is installed here, into .venv, from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.doorlink-installed
# The seed's own Node.js control server (tests/node, for tests/e2e/test_control_node.py)
# needs the ws npm package. Installed where node and npm exist; elsewhere, and when
# npm cannot fetch it, make goes on and that test says why it is skipped.
NODE_DIR   = tests/node
NODE_STAMP = $(NODE_DIR)/node_modules/.doorlink-installed

.PHONY: run test lint venv clean

venv: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		if npm ci --prefix $(NODE_DIR) --silent --no-audit --no-fund; then touch $@; \
		else echo "warning: npm ci in $(NODE_DIR) failed: the Node.js control server test will be skipped"; fi; \
	else echo "note: no node/npm here: the Node.js control server test will be skipped"; fi

run: $(STAMP)
	$(VENV)/bin/doorlink demo

# Every test; the lint and the layer contracts are tests too (tests/host/test_layers.py).
test: $(STAMP) $(NODE_STAMP) chromium
	$(PY) -m pytest

# The same lint and contracts on their own, for a quick look while editing.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf build .pytest_cache

# -- the dashboard's browser test (tests/e2e/test_dashboard_browser.py) ----------
# Debian's Chromium, driven by Playwright (the `test` extra; Playwright's own
# browser download is never used). Installed here when make runs as root and it
# is missing; elsewhere, and when apt-get fails, make goes on and that test says
# why it is skipped.
.PHONY: chromium
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the dashboard's browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
			|| echo "warning: apt-get could not install chromium: the dashboard's browser test will be skipped"; \
	else echo "note: no chromium here (apt-get install chromium as root): the dashboard's browser test will be skipped"; fi
