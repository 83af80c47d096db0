# canarylab developer entry points. `make demo` and `make test` work from a fresh checkout.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test fuzz lint test-cluster bench clean substrate conformance

# `make demo` installs only what the dashboard needs; the test toolchain comes with `make test`/`make lint`.
# uv (from PyPI, into the venv) fetches packages in parallel: on these machines ~12 s for the demo's packages
# where pip, one package at a time, takes 55-90 s (it compiles bytecode too, so the first frame is not slowed
# by that). Without uv, pip does it all the same.
UV_VERSION ?= uv>=0.9,<1
define install
	@test -x $(BIN)/python || { echo "make: creating the virtualenv $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing $(2) into $(VENV) (once; $(3) on a fresh machine)..."
	@start=$$(date +%s); \
	if test -x $(BIN)/uv || $(BIN)/pip install -q --disable-pip-version-check '$(UV_VERSION)'; then \
	  $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '$(1)' || { \
	    echo "make: uv could not install (above), installing with pip instead (slower)"; \
	    $(BIN)/pip install -q --disable-pip-version-check -e '$(1)'; }; \
	else \
	  echo "make: uv is not available, installing with pip (slower)"; \
	  $(BIN)/pip install -q --disable-pip-version-check -e '$(1)'; \
	fi && echo "make: installed in $$(( $$(date +%s) - start )) s"
endef

$(BIN)/.demo-installed: pyproject.toml
	$(call install,.,the dashboard's dependencies,about 25 s)
	@touch $@

$(BIN)/.installed: pyproject.toml
	$(call install,.[test],the dashboard and the test toolchain,about 35 s)
	@touch $@ $(BIN)/.demo-installed

demo: $(BIN)/.demo-installed  ## the dashboard on the simulated lab
	@echo "make: starting the demo (q or ctrl+c quits)"
	$(BIN)/canarylab demo

simulate: $(BIN)/.demo-installed  ## the seed walkthrough, headless
	$(BIN)/canarylab simulate

lint: $(BIN)/.installed
	$(BIN)/ruff check canarylab tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# Three pytest workers on two cores: most of the suite waits on real clocks (analysis intervals, Prometheus
# scrapes, a kube-apiserver rolling ReplicaSets), so a third worker fills the idle time. Each worker starts its own
# control plane (session fixture); worksteal evens out the few minute-long tests. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 3
test: lint  ## everything CI runs
	$(BIN)/pytest -q $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist worksteal)

substrate:  ## build the pinned control plane, KWOK and Flagger from Go modules (cached; no-op when current)
	substrate/build

fuzz: $(BIN)/.installed  ## the fuzz suite with many more examples, fresh random inputs (about 10-15 minutes)
	CANARYLAB_FUZZ_EXAMPLES=$${CANARYLAB_FUZZ_EXAMPLES:-150} CANARYLAB_FUZZ_RANDOM=1 $(BIN)/pytest -q -s -p no:cacheprovider \
		--timeout 3600 --hypothesis-show-statistics tests/fuzz

test-cluster: $(BIN)/.installed  ## the real-cluster tests (needs Docker, kind and internet)
	$(BIN)/pytest -q -m cluster

conformance: $(BIN)/.installed substrate  ## every scenario under the real Flagger and canarylab engine -> docs/conformance.md
	$(BIN)/python -m canarylab.conformance --out docs/conformance.md

bench: $(BIN)/.installed
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
