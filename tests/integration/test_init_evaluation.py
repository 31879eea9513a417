"""A study trial's ceiling: with train.checkpoint_at_start, the step-0 networks are evaluated like the final
ones and logged as eval_init/... (the report's ceiling row); a 2-step smoke run at 32 px, offline extractor."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.evaluation.evaluate import evaluate
from dtgan.search.trial import _evaluate_initial
from dtgan.training.checkpoint import checkpoint_path
from dtgan.training.loop import train

EVAL = [
    "evaluation.images_per_product_per_defect=24",
    "evaluation.kid_subset_size_min=4",
    "evaluation.kid_subsets=10",
    "evaluation.disentanglement_num_images=12",
    "evaluation.grid_num_sources=3",
    "evaluation.grid_num_styles=2",
    "evaluation.grid_num_references=2",
    "evaluation.defect_cnn.min_steps=20",
    "evaluation.defect_cnn.epochs=1",
    # the pretrained offline extractor on a corpus of a few images per class (seconds, cached per HOME)
    "evaluation.pretrained_cnn.images_per_class=8",
    "evaluation.pretrained_cnn.epochs=1",
    "evaluation.pretrained_cnn.render_sides=[32]",
]


class RecordingTracker:
    def __init__(self) -> None:
        self.artifacts: list[tuple[str, list[Path], str]] = []

    def log_artifacts(self, run_id: str, paths, artifact_path: str) -> None:
        self.artifacts.append((run_id, list(paths), artifact_path))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("init_eval")
    data = str(root / "bench.parquet")
    synthesize_benchmark(data, size=32, scale=0.05, seed=0)
    overrides = [
        f"data.path={data}",
        "train.total_steps=2",
        "train.checkpoint_every_steps=2",
        "train.sample_every_steps=2",
        f"train.out_dir={root / 'runs'}",
        "train.run_name=r",
        "train.checkpoint_at_start=true",
        f"evaluation.cache_dir={root / 'cache'}",
        *EVAL,
    ]
    config = load_config("smoke", overrides)
    return config, train(config)


def test_step0_evaluation_is_logged_as_eval_init_metrics(run):
    config, result = run
    tracker = RecordingTracker()
    metrics = _evaluate_initial(config, Path(result.run_dir), tracker, "RUN")
    direct = evaluate(
        checkpoint_path(result.run_dir, 0),
        config.evaluation,
        data_path=config.data.path,
        out_dir=Path(result.run_dir) / "evaluation" / "direct_init",
    )
    assert metrics["eval_init/fid_mix"] == pytest.approx(direct.metrics["eval/fid_mix"])
    assert metrics["eval_init/kid_mix"] == pytest.approx(direct.metrics["eval/kid_mix"])
    assert not any(k.startswith("eval/") for k in metrics)
    ((run_id, paths, where),) = tracker.artifacts
    assert run_id == "RUN" and where == "eval_init" and paths[0].name == "evaluation.json"


def test_nothing_is_evaluated_without_the_step0_checkpoint(run):
    config, result = run
    tracker = RecordingTracker()
    off = config.model_copy(update={"train": config.train.model_copy(update={"checkpoint_at_start": False})})
    assert _evaluate_initial(off, Path(result.run_dir), tracker, "RUN") == {}
    assert _evaluate_initial(config, Path(result.run_dir) / "elsewhere", tracker, "RUN") == {}
    assert tracker.artifacts == []
