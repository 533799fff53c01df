# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint golden clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job on the bundled examples (issue "The main job" turns this into `feedx-convert run`).
run: $(STAMP)
	$(BIN)/feedx-convert markdown examples/*.txt -o out/markdown
	@echo "Markdown in out/markdown/"

lint: $(STAMP)
	$(BIN)/ruff check convert tests
	$(BIN)/ruff format --check convert tests
	$(BIN)/mypy --strict convert

test: lint
	$(BIN)/pytest -q

# Regenerate the golden files in tests/golden/ from examples/ (review the diff!).
golden: $(STAMP)
	$(BIN)/python tests/regenerate_golden.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
