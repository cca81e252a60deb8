# mtl: two commands do everything on a fresh machine.
#   make test   create/refresh .venv from pinned requirements, run the test suite
#   make book   same environment, run every notebook (papermill), build the HTML book
# A second run with nothing changed skips the install (the stamp is newer than
# pyproject.toml and requirements-lock.txt).

PYTHON ?= python3
VENV   ?= .venv
PROFILE ?= default
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mtl-installed

.PHONY: all venv test book bench clean distclean help
all: test book

help:
	@echo "make test   - install (once) and run the tests"
	@echo "make book   - install (once), run all notebooks at PROFILE=$(PROFILE), build _build/html"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make clean  - remove built book, executed notebooks and caches (keeps .venv)"

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt
	@echo ">> creating/refreshing $(VENV) (pinned; torch==2.13.0 CPU first)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23"
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	@bash scripts/ensure-chromium
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/mtl book --profile $(PROFILE)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo ">> $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build book/executed .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) .cache
