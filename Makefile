# Zizhu — the two commands of the README are `make run` and `make test`.
# Everything they need is installed by the targets themselves (fresh machine, Python 3.11).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
VENV_PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: run test lint lint-only typecheck typecheck-only protos openapi bench sync clean-var

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q "uv==$(UV_VERSION)"

# Bytecode is compiled here, once: where PYTHONDONTWRITEBYTECODE is set (as on the CI machines)
# Python never caches what it compiles, so every process (each service, each spawned worker,
# each test's subprocess) would compile SQLAlchemy, gRPC, FastAPI and ours from source again:
# 1.8 s instead of 0.6 s to import the roster service. Stale files are ignored by Python.
sync: $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	$(VENV_PY) -m compileall -q -j 0 libs services gateway bench deploy scripts protos

run: sync
	$(VENV_PY) -m deploy.local

lint: sync lint-only

lint-only:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: sync typecheck-only

typecheck-only:
	.venv/bin/mypy libs/common/src deploy/local

test: sync
	$(VENV_PY) scripts/ensure_postgres.py
	$(MAKE) --no-print-directory lint-only typecheck-only
	.venv/bin/python -m pytest

protos: sync
	$(VENV_PY) scripts/gen_protos.py

openapi: sync
	$(VENV_PY) scripts/export_openapi.py

bench: sync
	$(VENV_PY) -m bench $(NAME) --scale $(or $(SCALE),small)

clean-var:
	rm -rf var
