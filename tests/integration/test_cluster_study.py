"""The user's headline path on a cluster shaped like ours: the real ablation script, trials on autoscaled nodes.

The head carries exactly the resources ``ray_cluster.yaml`` gives its head (no CPU, the trial-driver slots), the
worker node types are ``ray_cluster.yaml``'s (CPUs and GPUs, from zero), and the autoscaler is Ray's real one
(fake multi-node provider: its "nodes" are extra raylets on this machine). Training is forced to the CPU (the
GPUs are fake). Mid-study every worker node is killed, as a spot preemption would: the trials come back on new
nodes, resume from their stored checkpoints and finish in the MLflow runs they started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fake_cluster import REPO, fake_cluster, shipped_head_resources, shipped_worker_types
from mlflow import MlflowClient
from studies_testdata import tiny_benchmark, tiny_study_overrides

pytestmark = [pytest.mark.slow, pytest.mark.ray]

STUDY_TIMEOUT_S = 900
STEPS = 40


def _wait_for(predicate, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"the study ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.5)


def test_ablation_places_trials_on_autoscaled_gpu_nodes_and_survives_losing_them(tmp_path):
    head = shipped_head_resources()
    assert head.get("CPU") == 0 and "GPU" not in head  # the shipped head trains nothing
    data = tiny_benchmark(tmp_path)
    overrides = [
        *tiny_study_overrides(tmp_path, data, steps=STEPS),
        f"train.checkpoint_every_steps={STEPS // 4}",
        "study.variants=[a,g]",
        "study.max_concurrent_trials=2",
        "study.gpus_per_trial=1",  # as the cluster presets: each trial asks for a GPU node
        "train.device=cpu",  # the fake GPUs cannot compute: training on the CPU on purpose
        "study.max_trial_failures=2",
    ]
    out = tmp_path / "study.log"
    # The GCS notices a killed raylet within seconds (defaults: about 30 s).
    fast_health = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    with fake_cluster(
        head, shipped_worker_types(max_workers=2), max_workers=3, extra_env=fast_health
    ) as cluster:
        t0 = time.monotonic()
        with out.open("w") as log:
            study = subprocess.Popen(
                [sys.executable, str(REPO / "experiments" / "ablation.py"), "--preset", "smoke"]
                + ["--address", cluster.address]
                + [a for o in overrides for a in ("-o", o)],
                env={**cluster.env, "OMP_NUM_THREADS": "1"},
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            runs = tmp_path / "ray_results"
            first_checkpoint = lambda: any(runs.glob("ablation-smoke-*/runs/g-seed777/checkpoints/step_*.pt"))  # noqa: E731
            _wait_for(first_checkpoint, study, 600, "checkpoint of trial g")
            preempted = cluster.worker_raylets()
            assert preempted, "trials run on worker nodes only, and none is up"
            for pid in preempted:  # a spot preemption: every GPU node of the study at once
                os.kill(pid, signal.SIGKILL)
            t_kill = time.monotonic() - t0
            study.wait(timeout=STUDY_TIMEOUT_S)
        finally:
            if study.poll() is None:
                os.killpg(study.pid, signal.SIGKILL)
        monitor = cluster.monitor_log()
    text = out.read_text(errors="replace")
    print(
        f"fake-cluster study: killed {len(preempted)} node(s) at {t_kill:.0f} s, done at {time.monotonic() - t0:.0f} s"
    )
    assert study.returncode == 0, text[-6000:]
    assert "| a-seed777 | completed |" in text and "| g-seed777 | completed |" in text, text[-4000:]
    assert "No available node types can fulfill" not in monitor  # every trial fits a shipped node type
    assert monitor.count("Adding 1 node(s)") >= 2  # the autoscaler launched the workers (and replacements)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = client.search_experiments(filter_string="name = 'ablation-smoke'")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.run_kind = 'study'")
    trials = client.search_runs([experiment.experiment_id], "tags.run_kind = 'trial'")
    assert parent.info.status == "FINISHED"
    assert sorted(r.data.tags["variant"] for r in trials) == ["a", "g"]  # one child run each, not two
    for run in trials:
        assert run.info.status == "FINISHED" and run.data.metrics["eval/fid_mix"] > 0
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        if (
            run.data.tags["variant"] == "g"
        ):  # lost mid-training: continued from a stored checkpoint, not step 0
            resumed = [int(s) for s in run.data.tags["resumed_at_steps"].split(",")]
            assert resumed and all(0 < s < STEPS for s in resumed), resumed
        steps = sorted({m.step for m in client.get_metric_history(run.info.run_id, "train/g/latent/total")})
        assert steps == list(range(5, STEPS + 1, 5)), steps  # the step count continues across the loss
    assert client.get_registered_model(
        "ablation-smoke-generator"
    ).latest_versions  # best generator from storage
