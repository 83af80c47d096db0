# canarylab developer entry points. `make demo` and `make test` work from a fresh checkout.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test fuzz lint test-cluster bench clean substrate

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(BIN)/.installed  ## the dashboard on the simulated lab
	$(BIN)/canarylab demo

simulate: $(BIN)/.installed  ## the seed walkthrough, headless
	$(BIN)/canarylab simulate

lint: $(BIN)/.installed
	$(BIN)/ruff check canarylab tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint  ## everything CI runs
	$(BIN)/pytest -q

substrate:  ## build the pinned control plane, KWOK and Flagger from Go modules (cached; no-op when current)
	substrate/build

fuzz: $(BIN)/.installed  ## the fuzz suite with many more examples, fresh random inputs (about 10-15 minutes)
	CANARYLAB_FUZZ_EXAMPLES=$${CANARYLAB_FUZZ_EXAMPLES:-150} CANARYLAB_FUZZ_RANDOM=1 $(BIN)/pytest -q -s -p no:cacheprovider \
		--timeout 3600 --hypothesis-show-statistics tests/fuzz

test-cluster: $(BIN)/.installed  ## the real-cluster tests (needs Docker, kind and internet)
	$(BIN)/pytest -q -m cluster

bench: $(BIN)/.installed
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
