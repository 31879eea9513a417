"""The studies that train classifiers check backbone and weights before their launch, MLflow run or any image."""

import pytest

from dtgan.config import load_config
from dtgan.downstream import preflight
from dtgan.errors import ConfigError
from dtgan.search.augmentation import run_augmentation
from dtgan.search.driver import check_study_config


def test_augmentation_study_with_an_unknown_backbone_stops_before_its_launch(tmp_path):
    db = tmp_path / "mlflow.db"
    config = load_config(
        "downstream_smoke",
        [
            "downstream.backbone=resnet_typo",
            f"tracking.tracking_uri=sqlite:///{db}",
            f"study.storage_path={tmp_path / 'ray'}",
            "downstream.arms=[trad_aug,crop_paste]",
        ],
    )
    with pytest.raises(ConfigError, match="downstream.backbone: unknown timm model 'resnet_typo'"):
        run_augmentation(config, checkpoint=None)
    assert not db.exists() and not (tmp_path / "ray").exists()  # no store, no launch folder


def test_a_study_with_run_downstream_checks_the_paper_weights_before_any_trial(monkeypatch):
    monkeypatch.setattr(preflight, "cached_weights", lambda backbone: None)
    config = load_config("paper", ["study.run_downstream=true"])
    with pytest.raises(ConfigError, match="downstream.weights=imagenet: no ImageNet weights for resnet50"):
        check_study_config(config, early_stopping=False)
    check_study_config(
        load_config("smoke", ["study.run_downstream=true"]), early_stopping=False
    )  # scratch: fine
