# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test check bench loadtest system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Binaries the tests start as real processes (redis-server, prometheus and its promtool);
# installed only when missing.
system-deps:
	@command -v redis-server >/dev/null || { apt-get update -q && apt-get install -y -q redis-server; }
	@command -v promtool >/dev/null || { apt-get update -q && apt-get install -y -q prometheus; }

demo: $(STAMP)
	$(PY) -m loadtests.demo

test: $(STAMP) system-deps
	$(PY) -m pytest

check: $(STAMP) system-deps
	bash scripts/check

# wrk drives ~10k req/s from one core; the built-in load generator is the fallback.
bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; } || true
	$(PY) -m loadtests.bench overhead --rounds 3

# Locust against the demo fleet (gateway + emulators it starts and stops), with the SLO verdict.
loadtest: $(STAMP)
	$(PY) -m loadtests.run --scenario loadtests/scenarios/default.yaml

clean:
	rm -rf $(VENV) results .mypy_cache .ruff_cache .pytest_cache
