# The README's commands. Everything lives in .venv/ at the repo root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(abspath $(BIN)/python)

.PHONY: setup demo test lint typecheck unit studio bench clean

setup: $(VENV)/.synced

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"

# Everything from uv.lock, except llama-cpp-python: scripts/llama_wheel.py builds it portably (no
# -march=native, CPU backends chosen at run time, no AMX), once per machine (~2.5 min on 2 cores), and
# caches the wheel by version, sdist hash and build flags; later installs, a fresh clone included, take seconds.
$(VENV)/.synced: pyproject.toml uv.lock requirements/llama-cpp-python.txt requirements/llama-build.txt scripts/llama_wheel.py | $(BIN)/python
	$(BIN)/uv sync --frozen --all-extras --no-install-package llama-cpp-python
	$(BIN)/python scripts/llama_wheel.py install --python $(BIN)/python
	touch $@

demo: setup
	$(BIN)/costguard demo

# LangGraph's API server on 127.0.0.1:$(STUDIO_PORT), offline, with costguard's auth (the reviewers file
# defaults to the example one: demo keys, for this machine only); Studio, agent-chat-ui and the SDK talk to it
STUDIO_PORT ?= 2024
studio: setup
	@$(BIN)/python -c "import socket, sys; s = socket.socket(); busy = s.connect_ex(('127.0.0.1', $(STUDIO_PORT))) == 0; \
		sys.exit('error: 127.0.0.1:$(STUDIO_PORT) is already in use; choose another: make studio STUDIO_PORT=2025' if busy else 0)"
	COSTGUARD_REVIEWERS=$${COSTGUARD_REVIEWERS:-examples/reviewers.toml} \
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true LANGSMITH_TRACING=false \
		$(BIN)/langgraph dev --no-browser --host 127.0.0.1 --port $(STUDIO_PORT)

# benchmarks (not tests): ratios against baselines measured in the same run
bench: setup
	$(BIN)/python -m bench --quick
	$(BIN)/python -m bench.compounding

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest --cov=costguard --cov-report=term-missing:skip-covered

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
