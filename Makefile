# Two commands on a fresh machine: `make demo` and `make test`. Each creates the
# virtual environment if absent and installs everything from this repository.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.distil-installed
DISTIL := $(VENV)/bin/distil

.PHONY: install demo test lint smoke-projects clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch (pulled by transformers or
	# sentence-transformers) would fetch a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	# llama-cpp-python compiles llama.cpp (several minutes on 2 cores, once;
	# pip caches the wheel).
	$(PIP) install --quiet -e ".[dev,llm,train]"
	touch $(STAMP)

install: $(STAMP)

DEMO_TEXTS := "Apple hired Tim Cook in Cupertino. I lost my card yesterday, please block it." \
	"Sundar Pichai is the CEO of Google, which is based in Mountain View." \
	"How do I top up my account with a transfer from Berlin?"

# The embedded LLM pipeline (Gemma 3 270M in process): offline, no API key. Then
# the same texts through the rules backend: a config swap, the same records.
demo: install
	@echo "== configs/all_llm.cfg (embedded LLM: entities, relations, categories)"
	$(DISTIL) run configs/all_llm.cfg $(DEMO_TEXTS)
	@echo "== configs/all_rules.cfg (the same pipeline with rule components)"
	$(DISTIL) run configs/all_rules.cfg $(DEMO_TEXTS)

# Everything but the projects' end-to-end smoke runs (those are `make smoke-projects`).
test: install
	$(PY) -m pytest -q -m "not projects"

lint: install
	$(VENV)/bin/ruff check distil tests bench
	$(VENV)/bin/mypy

# The three weasel projects end to end with tiny sizes (CI runs this after `make test`).
smoke-projects: install
	$(PY) -m pytest -q -m projects tests/test_projects.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
