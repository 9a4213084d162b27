# Two commands on a fresh machine: `make demo` (the embedded demo) and `make test` (lint + tests); `make docs` builds
# the documentation site into site/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all test-wheel lint docs clean

# torch from PyPI is its CUDA build (several GB with its CUDA libraries). On a machine without a GPU,
# `make venv TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs PyTorch's CPU build first (same version pins).
TORCH_INDEX ?=

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@echo "make venv: installing srblock with every extra into $(VENV); torch is large, this takes minutes"
	$(if $(TORCH_INDEX),$(BIN)/pip install -q -c constraints.txt --index-url $(TORCH_INDEX) torch torchvision)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# One intra-op thread unless told otherwise: the demo's and the tests' ops are small, and on 2 cores shared with
# other work two OpenMP threads spin-wait on each other (the demo: 44 s with one thread, over 4 min with two, measured
# at load ~5). Results are bit-reproducible for a fixed thread count.
THREADS ?= 1

demo: venv
	OMP_NUM_THREADS=$(THREADS) $(BIN)/srblock demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits 5 when it collects no test: say so and fail, an empty suite is not a pass.
test: lint
	OMP_NUM_THREADS=$(THREADS) $(BIN)/pytest -m "not slow" -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# The documentation site (mkdocs.yml) in strict mode: a broken link, a missing page or any warning fails the build
# (never with --quiet: it hides the warnings from the strict count, and the build passes).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test-all: lint
	OMP_NUM_THREADS=$(THREADS) $(BIN)/pytest -q

# The wheel job: build the sdist and the wheel, install the wheel into a venv of its own, test it outside the repository.
test-wheel: venv
	PYTHON=$(PYTHON) BUILDER=$(BIN)/python THREADS=$(THREADS) bash .ci/test-wheel

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache "$${TMPDIR:-/tmp}"/srblock-wheel-venv-*
