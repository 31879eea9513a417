"""Tracking config: where runs go (config, then $MLFLOW_TRACKING_URI, then ./mlflow.db), validated."""

import subprocess
import sys
from pathlib import Path

import pytest

from dtgan.config import flatten, load_config
from dtgan.config.tracking import TrackingConfig
from dtgan.errors import ConfigError, TrackingError
from dtgan.tracking.locations import resolve_artifact_root, resolve_tracking_uri

REPO = Path(__file__).resolve().parents[2]


def test_embedded_default_is_sqlite_and_mlartifacts_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = TrackingConfig()
    uri = resolve_tracking_uri(cfg, cwd=tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_artifact_root(cfg, uri, cwd=tmp_path) == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert cfg.log_system_metrics is False and cfg.register_best_model is True


def test_environment_uri_is_used_unless_the_config_names_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(TrackingConfig(), cwd=tmp_path) == "http://127.0.0.1:5000"
    cfg = TrackingConfig(tracking_uri="sqlite:////data/runs.db")
    assert resolve_tracking_uri(cfg, cwd=tmp_path) == "sqlite:////data/runs.db"


def test_relative_sqlite_path_is_made_absolute_for_trial_processes(tmp_path):
    cfg = TrackingConfig(tracking_uri="sqlite:///db/mlflow.db")
    assert resolve_tracking_uri(cfg, cwd=tmp_path) == f"sqlite:///{tmp_path.resolve()}/db/mlflow.db"


def test_server_keeps_its_artifact_store_unless_one_is_configured(tmp_path):
    assert resolve_artifact_root(TrackingConfig(), "http://127.0.0.1:5000", cwd=tmp_path) is None
    cfg = TrackingConfig(artifact_root="s3://bucket/dtgan/")
    assert resolve_artifact_root(cfg, "http://127.0.0.1:5000", cwd=tmp_path) == "s3://bucket/dtgan"
    cfg = TrackingConfig(artifact_root="arts")
    assert (
        resolve_artifact_root(cfg, "sqlite:////x.db", cwd=tmp_path) == (tmp_path.resolve() / "arts").as_uri()
    )


def test_unknown_scheme_names_the_key_and_the_allowed_schemes():
    with pytest.raises(ConfigError, match=r"tracking\.tracking_uri.*sqlite, file, http"):
        load_config(None, ["tracking.tracking_uri=mlruns"])


def test_bad_environment_uri_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlruns")
    with pytest.raises(TrackingError, match=r"\$MLFLOW_TRACKING_URI='mlruns'"):
        resolve_tracking_uri(TrackingConfig(), cwd=tmp_path)


def test_registered_model_name_rejects_slashes_and_blank_names():
    with pytest.raises(ConfigError, match="tracking.registered_model_name"):
        load_config(None, ["tracking.registered_model_name=a/b"])
    with pytest.raises(ConfigError, match="tracking.experiment_name.*blank"):
        load_config(None, ["tracking.experiment_name=' '"])


def test_tracking_is_a_section_of_the_run_config_and_becomes_params():
    cfg = load_config(None, ["tracking.experiment_name=ablation-smoke"])
    assert cfg.tracking.experiment_name == "ablation-smoke"
    assert flatten(cfg)["tracking.experiment_name"] == "ablation-smoke"


def test_tracking_package_and_keys_import_without_mlflow():
    # The training loop may import dtgan.tracking.* (locations) and dtgan.keys; it must not pay for MLflow.
    code = "import sys, dtgan.tracking, dtgan.keys, dtgan.tracking.locations; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
