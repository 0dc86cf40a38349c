# liftgate developer and CI entry points.
#
#   make / make install   system packages (scripts/install-system.sh) + .venv with '.[dev]',
#                         liftgate's modules byte-compiled
#   make test             pytest on every core (-n auto; extra args: make test PYTEST_ARGS='-k foo -x')
#   make check            ruff lint, ruff format --check, mypy
#   make demo             liftgate demo
#   make bench            every benchmarks/bench_*.py
#   make clean            remove .venv, caches and .liftgate
#
# Works as root with no stdin (CI=true, fresh clone). Every recipe runs under
# bash -e -o pipefail, and nothing masks a tool's exit code (pytest's 5 for
# "no tests collected" fails `make test`).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := install
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
PYTEST_ARGS ?=
LINT_PATHS := src tests benchmarks

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: install system-deps bytecode demo test check bench clean

install: system-deps $(STAMP) bytecode

# An editable install leaves liftgate's modules uncompiled; where PYTHONDONTWRITEBYTECODE is
# set, every command would then compile them again (twice the start-up). compileall writes
# the .pyc files a regular `pip install` writes, and skips the ones that are current.
bytecode: $(STAMP)
	'$(VENV_PY)' -m compileall -q src >/dev/null

system-deps:
	@PYTHON='$(PYTHON)' bash scripts/install-system.sh

# Rebuilt when pyproject.toml changes (or the venv's interpreter no longer runs).
$(STAMP): pyproject.toml | system-deps
	@command -v '$(PYTHON)' >/dev/null || { echo "make: '$(PYTHON)' not found; install Python >= 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	@'$(PYTHON)' -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make: '$(PYTHON)' is Python $$('$(PYTHON)' -c 'import platform; print(platform.python_version())'); liftgate needs >= 3.11 (pass PYTHON=...)" >&2; exit 1; }
	@if ! '$(VENV_PY)' -c '' >/dev/null 2>&1; then \
		rm -rf '$(VENV)'; \
		echo "make: creating $(VENV) with $$(command -v '$(PYTHON)')"; \
		'$(PYTHON)' -m venv '$(VENV)'; \
	fi
	'$(VENV_PY)' -m pip install --quiet -e '.[dev]'
	@touch '$@'

demo: install
	'$(VENV)/bin/liftgate' demo

test: install
	'$(VENV_PY)' -m pytest -n auto $(PYTEST_ARGS)

check: install
	'$(VENV)/bin/ruff' check $(LINT_PATHS)
	'$(VENV)/bin/ruff' format --check $(LINT_PATHS)
	'$(VENV)/bin/mypy'

bench: install
	@shopt -s nullglob; \
	benches=(benchmarks/bench_*.py); \
	if [ $${#benches[@]} -eq 0 ]; then echo "make: no benchmarks/bench_*.py found" >&2; exit 1; fi; \
	for b in "$${benches[@]}"; do \
		echo "==> $$b"; \
		'$(VENV_PY)' "$$b"; \
	done

clean:
	rm -rf '$(VENV)' .liftgate .mypy_cache .ruff_cache .pytest_cache build dist
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
