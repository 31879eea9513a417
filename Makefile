# Two commands for a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
# Both create .venv and install the project pinned by cluster/requirements.lock; they re-install
# only when pyproject.toml or the lock file changed (the stamp's name carries their hash).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml cluster/requirements.lock | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
export HF_HUB_OFFLINE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test lint lock clean

setup: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c cluster/requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The smoke ablation (ladder a-g x 1 seed) on the embedded benchmark, tracked in demo/mlflow.db.
demo: setup
	$(PY) -m dtgan data synth --out demo/data
	$(PY) -m dtgan data describe demo/data/benchmark.parquet
	$(PY) experiments/ablation.py --preset demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check platform tests experiments benchmarks

# Regenerate the lock file from the current environment (run after changing dependencies).
lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > cluster/requirements.lock

clean:
	rm -rf $(VENV) demo
