# The two set-up commands of the README:
#   make demo   install, then run the main job on the embedded digits
#   make test   install (with test tools), then run the test suite (what .ci/run calls)
PYTHON ?= python3
# A CPU build of torch when none is installed, so pip never pulls a multi-GB CUDA build by
# accident; a machine that already has torch (a GPU user's usual build) keeps it.
TORCH_CPU ?= torch==2.13.0

.PHONY: install install-dev browser demo test test-slow lint

install:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q "$(TORCH_CPU)"
	$(PYTHON) -m pip install -q -e .

install-dev:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q "$(TORCH_CPU)"
	$(PYTHON) -m pip install -q -e ".[dev]"

# Headless Chromium for the report's browser test (Debian's package, where we may install it);
# elsewhere that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "Chromium not installed: the HTML report's browser test will be skipped"

demo: install
	repvae demo

test: install-dev browser
	$(PYTHON) -m pytest

test-slow: install-dev
	$(PYTHON) -m pytest -m slow

lint:
	ruff check src tests benchmarks scripts && ruff format --check src tests benchmarks scripts && lint-imports --no-cache && mypy
