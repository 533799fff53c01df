# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint golden clean fonts bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# A CJK font for EPUB covers (Debian's fonts-wqy-microhei, 5 MB). Without one, covers
# still build, with Latin text only; so a failed install is a note, not an error.
fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && (apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 \
	           || (apt-get update -qq >/dev/null 2>&1 \
	               && apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1)); } \
	  || echo "note: no CJK font installed; EPUB covers will show Latin text only"

# The main job (config.yaml) on the bundled examples: feeds, Markdown and an EPUB in out/.
run: $(STAMP) fonts
	$(BIN)/feedx-convert run --archive state/archive.sqlite

lint: $(STAMP)
	$(BIN)/ruff check convert tests bench
	$(BIN)/ruff format --check convert tests bench
	$(BIN)/mypy --strict convert

test: lint fonts
	$(BIN)/pytest -q

# Regenerate the golden files in tests/golden/ from examples/ (review the diff!).
golden: $(STAMP)
	$(BIN)/python tests/regenerate_golden.py

# The benchmark (not part of `make test`; see bench/README.md): N = 100 and 1,000, five
# runs each, about 20 minutes. bench/run.py --help for sizes, rows and a quick profile.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf out state .pytest_cache .mypy_cache .ruff_cache
