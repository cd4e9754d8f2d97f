# Two entry points for a newcomer: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel by default; e.g. `make TORCH_SPEC="torch==2.13.0 --index-url ..."` for CUDA.
TORCH_SPEC ?= torch==2.13.0
PORT ?= 5006

.PHONY: setup serve test lint format notebooks-sync notebooks-full assets checkpoint results explain-results surveys benchmark screenshots clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[all]"
	touch $@

setup: $(VENV)/.installed

serve: setup
	$(BIN)/panel serve app.py --port $(PORT) --show

# Lint (ruff check + format check; CI runs it before the tests) and formatting.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# After editing a notebook's .py source: regenerate its .ipynb (tests check the pairs).
notebooks-sync: setup
	$(BIN)/jupytext --sync notebooks/0*.py

# Re-run every notebook in full mode (tens of minutes) and keep static outputs only (what is committed).
notebooks-full: notebooks-sync
	cd notebooks && for nb in 0*.ipynb; do ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=3600 $$nb || exit 1; done
	$(BIN)/python scripts/strip_notebook_outputs.py notebooks/0*.ipynb

# Unit, integration, browser (tests/ui) and notebook (nbmake, quick mode) tests.
# Two workers on two cores (three measured no faster: 721 s against 707 s); the two longest groups
# (browser, explanation recovery) start first (tests/conftest.py orders them).
test: setup
	bash scripts/ensure_chromium.sh
	MSTGAT_QUICK=1 $(BIN)/python -m pytest -n 2 --dist loadgroup --nbmake --durations=15 tests notebooks

assets: setup
	$(BIN)/python scripts/build_assets.py

checkpoint: setup
	$(BIN)/python scripts/build_checkpoint.py

# The published comparison (docs/results.md tables, docs/results/*.json): ~45 min on 2 cores.
results: setup
	$(BIN)/mstgat benchmark --suite default --out docs/results --markdown docs/results.md

# How far the explanations can be trusted (docs/results.md, "Explanations"): ~10 + ~15 min on 2 cores.
explain-results: setup
	$(BIN)/mstgat benchmark --suite explain --out docs/results --markdown docs/results.md
	$(BIN)/mstgat benchmark --suite stability --out docs/results --markdown docs/results.md

# Every survey under its protocol, then pooled (docs/results.md, "Across surveys"; docs/results/surveys/*.json).
# Alaska runs last; skip it with: mstgat benchmark --suite surveys --datasets ... (see --help).
surveys: setup
	$(BIN)/mstgat benchmark --suite surveys --out docs/results/surveys --markdown docs/results.md

benchmark: setup
	$(BIN)/python benchmarks/run.py

screenshots: setup
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV)
