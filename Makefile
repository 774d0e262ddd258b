# The two commands of the README: `make demo` and `make test`. Both create
# the virtual environment .venv when it is missing or older than the
# requirements, install into it, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := $(wildcard requirements/*.txt) setup.py setup.cfg
LINT_PATHS := mmreid_rcl tools tests configs projects
# Sleeping (not spinning) OpenMP threads: much faster on shared cores.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: test demo lint install benchmark clean-venv

install: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/runtime.txt -r requirements/tests.txt \
		-r requirements/optional.txt
	$(PY) -m pip install -q --no-deps -r requirements/mminstall.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: $(STAMP)
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) tools/demo.py

benchmark: $(STAMP)
	$(PY) tools/benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
