# One command set: CI (.ci/run) runs these same targets.
VENV ?= .venv
PY = $(VENV)/bin/python
# The venv is (re)installed whenever pyproject.toml changes.
INSTALLED = $(VENV)/.installed
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-x -k quota'`.
PYTEST_ARGS ?=

.PHONY: install test lint demo bench bench-quick bench-scale chaos screenshots clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The whole suite, unit and integration. The redis_url fixture finds or starts a Redis itself.
test: $(INSTALLED)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo: $(INSTALLED)
	$(VENV)/bin/aep-activator demo

# One run, about 12 minutes on 2 cores: writes BENCHMARKS.md. bench-quick: every stage small, writes nothing.
bench: $(INSTALLED)
	$(PY) -m tests.bench

bench-quick: $(INSTALLED)
	$(PY) -m tests.bench --quick

# 10,000 then 100,000 runs in flight, about half an hour on 2 cores: writes BENCHMARKS-scale.md (make bench quotes it).
bench-scale: $(INSTALLED)
	$(PY) -m tests.bench_scale

chaos: $(INSTALLED)
	CHAOS_SCALE=full $(VENV)/bin/pytest -m chaos $(PYTEST_ARGS)

# The README's screenshots (docs/console-*.png, docs/flower-waiting-task.png) with Debian's chromium; CI never runs this.
screenshots: $(INSTALLED)
	$(PY) -m tests.screenshots
	SCREENSHOTS_DIR=docs $(VENV)/bin/pytest -q tests/integration/test_flower_browser.py

# Caches and build output only; the venv stays (rm -rf $(VENV) to rebuild it from scratch).
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(INSTALLED)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
