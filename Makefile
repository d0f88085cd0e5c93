# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/mobile-app-session.pcapng

.PHONY: demo test lint typecheck unit system-deps example bench bench-detect clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# byte-compile our own modules, as a wheel install would (the editable install does not)
	$(BIN)/python -m compileall -q src >/dev/null
	touch $(STAMP)

# Debian packages the tests need: tshark is the independent reference the capture tests
# compare against.
system-deps:
	@if ! command -v tshark >/dev/null 2>&1; then \
	  echo "installing tshark (Debian package) for the cross-check tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null) \
	    || { echo "could not install tshark: run 'apt-get install tshark' as root"; exit 1; }; \
	fi

demo: $(STAMP)
	$(BIN)/datareach audit $(EXAMPLE) --profile examples/profile.toml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: $(STAMP) system-deps lint unit

example: $(STAMP)
	$(BIN)/python examples/generate_example.py

bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_vs_tshark.py

bench-detect: $(STAMP)
	$(BIN)/python benchmarks/bench_detection.py
	$(BIN)/python benchmarks/bench_matcher.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
