"""The augmentation study's runs end as its trials do (one trial life cycle): FINISHED, or FAILED with the
error tag and the study's parent run FAILED too; a resumed launch skips the finished ones. Ray and the classifier
jobs are replaced by in-process fakes, MLflow is a real sqlite store."""

from __future__ import annotations

import contextlib

import pytest
from mlflow import MlflowClient

from dtgan.config import load_config
from dtgan.search import augmentation, ray_tune


def _fake_job(spec) -> dict:
    if spec.seed == 778 and spec.cell.arm == "trad_aug" and _fake_job.fail:
        raise RuntimeError("classifier diverged\nsecond line")
    return {
        "cell": {k: getattr(spec.cell, k) for k in spec.cell.__dataclass_fields__},
        "seed": spec.seed,
        "test_error_pct": 10.0 if spec.cell.arm == "no_aug" else 8.0,
        "val_error_pct": 12.0,
        "pretrained": "none",
    }


@pytest.fixture()
def study(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_tune, "ray_session", lambda *a, **k: contextlib.nullcontext(False))
    monkeypatch.setattr(ray_tune, "check_job_resources", lambda gpus, autoscaled: None)
    monkeypatch.setattr(ray_tune, "downstream_map_fn", lambda gpus: lambda fn, specs: [fn(s) for s in specs])
    monkeypatch.setattr(
        augmentation, "_prepare", lambda launch, checkpoint: launch.run_storage.child("study_data.pt").uri
    )
    monkeypatch.setattr(augmentation, "_job", _fake_job)
    config = load_config(
        "downstream_smoke",
        [
            f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            f"tracking.artifact_root={tmp_path}/mlartifacts",
            f"study.storage_path={tmp_path}/studies",
            "downstream.arms=[no_aug,trad_aug]",
            "downstream.seed=777",
            "downstream.num_seeds=2",
        ],
    )
    return config, tmp_path


def _runs(tmp_path, launch):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    children = client.search_runs(
        [client.get_experiment_by_name(launch.experiment_name).experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{launch.parent_run_id}'",
    )
    return client, {r.data.tags["trial_key"]: r for r in children}


def test_a_failed_group_ends_its_run_and_the_study_failed_and_a_resume_skips_the_finished(study):
    config, tmp_path = study
    _fake_job.fail = True
    with pytest.raises(RuntimeError, match="classifier diverged"):
        augmentation.run_augmentation(config, checkpoint=None, method="dtgan")
    launch_folder = next((tmp_path / "studies").iterdir())
    _fake_job.fail = False
    launch, rows, text = augmentation.run_augmentation(
        config, checkpoint=None, method="dtgan", resume=launch_folder.name
    )
    client, runs = _runs(tmp_path, launch)
    assert [(r["trial"], r["status"]) for r in rows] == [
        ("n40-seed777", "completed (earlier launch)"),
        ("n40-seed778", "completed"),
    ]
    assert {k: r.info.status for k, r in runs.items()} == {
        "n40-seed777": "FINISHED",
        "n40-seed778": "FINISHED",
    }
    assert runs["n40-seed777"].data.metrics["downstream/error_no_aug_resnet10t"] == pytest.approx(0.10)
    assert "error" not in runs["n40-seed778"].data.tags  # reopened: the failed attempt's error is gone
    assert client.get_run(launch.parent_run_id).info.status == "FINISHED"
    assert "2 (size, seed) runs of method 'dtgan'" in text


def test_the_failed_attempt_is_recorded_failed(study):
    config, tmp_path = study
    _fake_job.fail = True
    with pytest.raises(RuntimeError):
        augmentation.run_augmentation(config, checkpoint=None, method="dtgan")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    by_key = {r.data.tags.get("trial_key", "parent"): r for r in runs}
    assert by_key["n40-seed777"].info.status == "FINISHED"
    assert by_key["n40-seed778"].info.status == "FAILED"
    assert by_key["n40-seed778"].data.tags["error"] == "RuntimeError: classifier diverged"
    assert by_key["parent"].info.status == "FAILED"
    assert by_key["parent"].data.tags["error"] == "RuntimeError: classifier diverged"
