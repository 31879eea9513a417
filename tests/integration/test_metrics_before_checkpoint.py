"""A checkpoint never exists before the metrics up to its step are written.

A trial's node can be lost at any moment; the trial resumes from the newest checkpoint it finds. If that
checkpoint appeared before the buffered metrics of the steps up to it were written, the resumed trial's
history has a hole (steps reported before the loss, never reported again). The loop hands a checkpoint step's
metrics to ``Reporter.before_checkpoint`` first; the MLflow reporter writes them there.
"""

import torch
from mlflow import MlflowClient

from dtgan.config import load_config
from dtgan.config.tracking import TrackingConfig
from dtgan.data.synth import synthesize_benchmark
from dtgan.tracking import MLflowReporter, Tracker, init_tracking
from dtgan.training.checkpoint import checkpoint_step, list_checkpoints
from dtgan.training.environment import Environment
from dtgan.training.loop import train

METRIC = "train/g/latent/total"


class _WatchingTracker(Tracker):
    """A real tracker that notes, at every metric write, the steps written and the checkpoints on disk."""

    def __init__(self, tracking_uri, artifact_root, run_dir):
        super().__init__(tracking_uri, artifact_root)
        self.run_dir = run_dir
        self.writes: list[tuple[set[int], set[int]]] = []

    def log_metric_batch(self, run_id, rows):
        on_disk = (
            {checkpoint_step(p) for p in list_checkpoints(self.run_dir)} if self.run_dir.exists() else set()
        )
        self.writes.append(({step for step, _ in rows}, on_disk))
        super().log_metric_batch(run_id, rows)


def test_the_metrics_of_a_checkpoint_step_are_written_before_the_checkpoint_exists(tmp_path):
    data = tmp_path / "benchmark.parquet"
    synthesize_benchmark(str(data), size=32, scale=0.02, seed=0)
    run_dir = tmp_path / "runs" / "r"
    config = load_config(
        "smoke",
        [
            f"data.path={data}",
            f"train.out_dir={tmp_path / 'runs'}",
            "train.total_steps=8",
            "train.batch_size=2",
            "train.sample_every_steps=100",
            "train.checkpoint_every_steps=4",
            "train.keep_checkpoints=5",
            "train.log_every_steps=1",
            "model.ablation=a",
        ],
    )
    base = init_tracking(TrackingConfig(), cwd=tmp_path / "mlflow")
    tracker = _WatchingTracker(base.tracking_uri, base.artifact_root, run_dir)
    study = tracker.start_study("before-checkpoint", resume_key="k")
    trial = tracker.start_trial(study.run_id, "a-seed1", config)
    # A flush interval longer than the run: only checkpoints (and close) make the buffer durable.
    with MLflowReporter(tracker, trial.run_id, checkpoints="never", flush_every_s=3600) as reporter:
        train(config, reporter=reporter, run_dir=run_dir, env=Environment(device=torch.device("cpu")))

    for saved in (4, 8):
        write = next(i for i, (steps, _) in enumerate(tracker.writes) if saved in steps)
        assert saved not in tracker.writes[write][1], (saved, tracker.writes)
        written_so_far = set().union(*(steps for steps, _ in tracker.writes[: write + 1]))
        assert written_so_far >= set(range(1, saved + 1))
    history = MlflowClient(tracking_uri=base.tracking_uri).get_metric_history(trial.run_id, METRIC)
    assert [m.step for m in history] == list(range(1, 9))  # each step once: report() does not log it again
