# Two commands on a fresh machine: `make demo` and `make test`. Each creates the
# virtual environment if absent and installs everything from this repository.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.distil-installed
DISTIL := $(VENV)/bin/distil
# llama-cpp-python is compiled here, with explicit flags (tools/llama-wheel.sh):
# portable x86-64 AVX2 by default, never -march=native; set CMAKE_ARGS to
# override (e.g. CMAKE_ARGS="-DGGML_NATIVE=ON" for a build tuned to this CPU
# only). Wheels are kept in LLAMA_WHEEL_DIR (default .wheels/), keyed by
# version, flags, compiler, architecture and Python.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_WHEEL := LLAMA_CPP_VERSION=$(LLAMA_CPP_VERSION) tools/llama-wheel.sh $(PY)

.PHONY: install browser demo test lint smoke-projects clean

$(STAMP): setup.cfg pyproject.toml tools/llama-wheel.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch (pulled by transformers or
	# sentence-transformers) would fetch a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	# llama.cpp compiles once per key (about 5 minutes on 2 cores), before the
	# extras so that pip finds llama-cpp-python installed and never builds its own.
	$(LLAMA_WHEEL)
	$(PIP) install --quiet -e ".[dev,llm,train,serve,ray]"
	touch $(STAMP)

# The wheel script runs every time (a no-op when the installed build matches):
# a changed CMAKE_ARGS or LLAMA_CPP_VERSION reinstalls even with the stamp fresh.
install: $(STAMP)
	@$(LLAMA_WHEEL)

DEMO_TEXTS := "Apple hired Tim Cook in Cupertino. I lost my card yesterday, please block it." \
	"Sundar Pichai is the CEO of Google, which is based in Mountain View." \
	"How do I top up my account with a transfer from Berlin?"

# The embedded LLM pipeline (Gemma 3 270M in process): offline, no API key. Then
# the same texts through the rules backend: a config swap, the same records.
demo: install
	@$(DISTIL) doctor >/dev/null || $(DISTIL) doctor
	@echo "== configs/all_llm.cfg (embedded LLM: entities, relations, categories)"
	$(DISTIL) run configs/all_llm.cfg $(DEMO_TEXTS)
	@echo "== configs/all_rules.cfg (the same pipeline with rule components)"
	$(DISTIL) run configs/all_rules.cfg $(DEMO_TEXTS)

# Debian's chromium (and its chromedriver) for the review page's browser test
# (tests/test_review_app.py, Playwright pointed at /usr/bin/chromium): installed
# here once, never downloaded by a test. Nothing to do when /usr/bin/chromium
# exists; without root or apt-get it says how to install it, and the test skips.
browser:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	else \
		echo "make browser: /usr/bin/chromium is missing; as root: apt-get install chromium chromium-driver (the browser test skips without it)"; \
	fi

# Everything but the projects' end-to-end smoke runs (those are `make smoke-projects`).
# `distil doctor` first: a llama.cpp build that cannot run on this CPU fails here,
# in a child process, with the fix, instead of killing pytest with a segfault.
test: install browser
	$(DISTIL) doctor
	$(PY) -m pytest -q -m "not projects"

lint: install
	$(VENV)/bin/ruff check distil tests bench
	$(VENV)/bin/mypy

# The four weasel projects end to end with tiny sizes (CI runs this after `make test`).
smoke-projects: install
	$(PY) -m pytest -q -m projects tests/test_projects.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
