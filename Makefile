# Two commands for a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
# Both create .venv and install the project pinned by cluster/requirements.lock; they re-install
# only when pyproject.toml or the lock file changed (the stamp's name carries their hash).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml cluster/requirements.lock | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
export HF_HUB_OFFLINE ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export PYTHONUNBUFFERED := 1

.PHONY: setup demo reproduce-cpu test lint lock clean cluster-check cluster-check-kuberay cpu-data reproduce-search confirm-search

setup: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c cluster/requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The ladder's end points (a) and (g) under the CPU preset on the embedded benchmark (scale 0.5, bold defects),
# tracked in demo/mlflow.db; sample grids under demo/ray_results/*/runs/*/evaluation/final/.
demo: setup
	$(PY) -m dtgan data synth --out demo/data --scale 0.5 --defect-boldness 2
	$(PY) -m dtgan data describe demo/data/benchmark.parquet
	$(PY) experiments/ablation.py --preset demo

# docs/results.md: (a) and (g) x 3 seeds under the CPU preset on the benchmark, x 1 seed on a second data set
# (other textures and defect shapes), with curves, grids and the downstream error (~1.5 h on 2 cores).
reproduce-cpu: setup
	$(PY) experiments/reproduce_cpu.py --data-set benchmark
	$(PY) experiments/reproduce_cpu.py --data-set second --seeds 777

# The CPU presets' data: the training set, the confirmation test set (seed 1, 300 held out per cell: 1,890 test
# images) and the search's own held-out set (seed 2), so that the winner is never judged on what chose it.
cpu-data: setup
	test -f data/cpu/benchmark.parquet || $(PY) -m dtgan data synth --out data/cpu/benchmark.parquet --scale 0.5 --defect-boldness 2
	test -f data/cpu/heldout.parquet || $(PY) -m dtgan data synth --out data/cpu/heldout.parquet --scale 0.05 --seed 1 --held-out-per-cell 300 --defect-boldness 2
	test -f data/cpu/search_heldout.parquet || $(PY) -m dtgan data synth --out data/cpu/search_heldout.parquet --scale 0.05 --seed 2 --held-out-per-cell 200 --defect-boldness 2

# The CPU search (<= 2 h on 2 cores: 12 trials, ASHA on the defect-miss signal, objective the downstream mix error),
# its winner exported as a preset, then confirmed on 3 fresh GAN seeds beside cpu32, trad_aug and Crop&Paste, each
# run's generator evaluated too (two runs at a time; the second data set: experiments/confirm_search.py --candidate
# ... --evaluate --data-set second).
reproduce-search: cpu-data
	$(PY) experiments/search.py -c search_cpu --export experiments/presets/search_cpu_winner.yaml

confirm-search: cpu-data
	$(PY) experiments/confirm_search.py --candidate experiments/presets/search_cpu_winner.yaml --evaluate

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check platform tests experiments benchmarks tools
	$(VENV)/bin/ruff format --check platform tests experiments benchmarks tools

# Regenerate the lock file from the current environment (run after changing dependencies).
lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > cluster/requirements.lock

# Before a cluster launch: images pinned by digest (RAY_IMAGE_DIGEST, POSTGRES_IMAGE_DIGEST, MLFLOW_IMAGE_DIGEST)
# and MLflow's credentials in ~/.dtgan/mlflow-client.env (cluster/README.md); `cluster/launch.py up` runs the same.
cluster-check: setup
	$(PY) cluster/launch.py check

cluster-check-kuberay: setup
	$(PY) cluster/launch.py check --kuberay

clean:
	rm -rf $(VENV) demo
