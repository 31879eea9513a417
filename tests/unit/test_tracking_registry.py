"""The best generator becomes an MLflow model version (sqlite registry), once per run."""

import pytest
import torch
from mlflow import MlflowClient
from torch import nn

from dtgan.config import load_config
from dtgan.config.tracking import TrackingConfig
from dtgan.errors import CheckpointError
from dtgan.tracking import init_tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    tracker = init_tracking(TrackingConfig(), cwd=root)
    return tracker, MlflowClient(tracking_uri=tracker.tracking_uri, registry_uri=tracker.tracking_uri)


def _checkpoint(path):
    """A training checkpoint in the documented format, with real (untrained) tiny networks at 16 px: logging
    the model runs its input example through them."""
    from dtgan.models import build_nets
    from dtgan.training.ema import EMA_NETS

    config = load_config("tiny", ["model.img_size=16"])
    torch.manual_seed(0)
    built = build_nets(config.model, num_domains=2, num_products=1)
    nets = {name: built[name].state_dict() for name in EMA_NETS}
    checkpoint = {
        "format_version": 1,
        "config": config.model_dump(mode="json"),
        "vocab": {"products": ["bottle"], "defects": ["normal", "scratch"]},
        "step": 200,
        "nets": {**nets, "discriminator": nn.Linear(3, 1).state_dict()},
        "nets_ema": nets,
        "optimizers": {"generator": {"state": {}, "param_groups": []}},
        "rng": {},
        "loaders": {},
    }
    torch.save(checkpoint, path)
    return checkpoint


def test_best_generator_is_registered_once_with_only_the_ema_nets(store, tmp_path):
    tracker, client = store
    study = tracker.start_study("registry", resume_key="k")
    trial = tracker.start_trial(study.run_id, "g-seed1", {"model": {"ablation": "g"}})
    saved = _checkpoint(tmp_path / "step_00000200.pt")

    registered = tracker.log_best_checkpoint(trial.run_id, tmp_path / "step_00000200.pt")
    assert registered.name == "registry-generator" and registered.version == 1
    version = client.get_model_version("registry-generator", "1")
    assert version.run_id == trial.run_id and version.status == "READY"
    tags = client.get_run(trial.run_id).data.tags
    assert (
        tags["registered_model_version"] == "1" and registered.source == f"models:/{tags['logged_model_id']}"
    )
    model_id = tags["logged_model_id"]
    files = {f.path for f in client.list_logged_model_artifacts(model_id)}
    assert {"MLmodel", "artifacts", "python_env.yaml"} <= files
    best = [f.path for f in client.list_artifacts(trial.run_id, "checkpoints/best")]
    assert best == ["checkpoints/best/step_00000200.pt"]

    import mlflow

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{client.get_logged_model(model_id).artifact_location}/artifacts/generator.pt",
        dst_path=str(tmp_path / "dl"),
    )
    slim = torch.load(local, weights_only=True)
    assert set(slim) == {"format_version", "config", "vocab", "step", "nets_ema"}
    for name, weights in saved["nets_ema"]["generator"].items():
        assert torch.equal(slim["nets_ema"]["generator"][name], weights), name

    # A resumed study registering the same run again gets the same version, not a duplicate.
    assert tracker.register_generator(trial.run_id, tmp_path / "step_00000200.pt") == registered
    assert len(client.search_model_versions("name = 'registry-generator'")) == 1


def test_registration_can_be_switched_off_and_rejects_foreign_files(store, tmp_path):
    tracker, client = store
    tracker.register_best_model = False
    try:
        study = tracker.start_study("registry-off", resume_key="k")
        trial = tracker.start_trial(study.run_id, "a-seed1", {})
        _checkpoint(tmp_path / "best.pt")
        assert tracker.log_best_checkpoint(trial.run_id, tmp_path / "best.pt") is None
        assert client.search_registered_models("name = 'registry-off-generator'") == []
    finally:
        tracker.register_best_model = True
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(
        CheckpointError, match=r"other.pt lacks format_version, config, vocab, step, nets_ema"
    ):
        tracker.register_generator(trial.run_id, tmp_path / "other.pt", name="custom-name")


def test_generators_logged_before_the_adapter_became_a_package_still_find_their_class():
    # MLflow runs the models-from-code file stored with each logged model; the earlier copies import this path
    import importlib

    from dtgan.tracking.mlflow.model import GeneratorModel

    earlier = importlib.import_module("dtgan.tracking.mlflow_backend")
    assert earlier.GeneratorModel is GeneratorModel and callable(earlier.set_model)
