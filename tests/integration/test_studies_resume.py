"""Killing the study driver and re-running with --resume continues the study: every variant exactly once."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from studies_testdata import tiny_benchmark, tiny_study_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FIRST_TRIAL_TIMEOUT_S = 300


class _Planted:
    """Unpickling it creates a file: the stand-in for arbitrary code in a planted pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def ablation_command(folder: Path, data_path: Path, ray_temp_dir: str, *extra: str) -> list[str]:
    overrides = [*tiny_study_overrides(folder, data_path), "study.variants=[a,b]"]
    return [
        sys.executable,
        str(REPO / "experiments" / "ablation.py"),
        "--preset",
        "smoke",
        *[arg for o in overrides for arg in ("-o", o)],
        "--ray-temp-dir",
        ray_temp_dir,
        *extra,
    ]


@pytest.fixture()
def ray_temp_dir():
    path = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    yield path
    shutil.rmtree(path, ignore_errors=True)


def finished_trials(db: Path) -> int:
    """FINISHED child runs, read straight from the sqlite store (no MLflow client in the polling loop)."""
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(
                "SELECT COUNT(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
                "WHERE tags.key = 'run_kind' AND tags.value = 'trial' AND runs.status = 'FINISHED'"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resumed_study_after_killed_driver_has_each_variant_once(tmp_path, ray_temp_dir):
    data_path = tiny_benchmark(tmp_path)
    log = (tmp_path / "first.log").open("w")
    # A session of its own: the driver's local Ray shares its fate, and the kill reaches only our processes.
    first = subprocess.Popen(
        ablation_command(tmp_path, data_path, ray_temp_dir),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + FIRST_TRIAL_TIMEOUT_S
    while finished_trials(tmp_path / "mlflow.db") < 1:
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the first trial did not finish in time"
        time.sleep(1)
    os.killpg(first.pid, signal.SIGKILL)  # the driver, its local Ray and the running trial, all at once
    first.wait(timeout=60)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    before = {r.data.tags["trial_key"]: r for r in client.search_runs(["1"], "tags.run_kind = 'trial'")}
    done_before = {k: r.info.run_id for k, r in before.items() if r.info.status == "FINISHED"}
    assert len(done_before) == 1

    # An attacker with write access to the (shared) storage replaces Tune's saved state with pickles that run
    # code when loaded: --resume must not load them (it resumes from dtgan's own records).
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(str(marker)))
    (launch,) = [p for p in (tmp_path / "ray_results").iterdir() if p.is_dir()]
    planted = [*launch.glob("*.pkl"), launch / "tuner.pkl", launch / "searcher-state-planted.pkl"]
    for path in planted:
        path.write_bytes(payload)
    for state in launch.glob("experiment_state*.json"):
        state.write_text(json.dumps({"trial_data": [[payload.hex(), payload.hex()]], "runner_data": {}}))

    second = subprocess.run(
        ablation_command(tmp_path, data_path, ray_temp_dir, "--resume"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert not marker.exists(), "resuming the study unpickled a file planted in its storage"

    parents = client.search_runs(["1"], "tags.run_kind = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = client.search_runs(["1"], "tags.run_kind = 'trial'")
    keys = sorted(r.data.tags["trial_key"] for r in trials)
    assert keys == ["a-seed777", "b-seed777"]  # each variant exactly once: no duplicate, no orphan
    assert all(r.info.status == "FINISHED" for r in trials)
    after = {r.data.tags["trial_key"]: r.info.run_id for r in trials}
    assert all(after[k] == run_id for k, run_id in done_before.items())  # the finished trial was not redone
    assert "| a-seed777 | completed |" in second.stdout and "| b-seed777 | completed |" in second.stdout
