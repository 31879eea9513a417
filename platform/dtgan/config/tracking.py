"""Config of experiment tracking: where MLflow runs, artifacts and registered models go."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from dtgan.config.base import Section

# Backends MLflow 3 can track to; a bare path (the deprecated file store) is rejected on purpose.
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")
# MLflow's registry rejects '/' and ':' in names; keep names readable in URLs (models:/NAME/1).
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
_EXPERIMENT_NAME_MAX_CHARS = 500


class TrackingConfig(Section):
    """MLflow tracking of studies and trials; null fields fall back to the environment and the embedded store."""

    tracking_uri: str | None = Field(
        None,
        description=(
            "MLflow tracking URI (sqlite:///..., http://host:5000, postgresql://...); "
            "null = $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db"
        ),
    )
    artifact_root: str | None = Field(
        None,
        description=(
            "where new experiments store artifacts (a local folder or s3://, gs://, ... URI); "
            "null = <cwd>/mlartifacts for local stores, the server's default for a tracking server"
        ),
    )
    experiment_name: str | None = Field(
        None, description="MLflow experiment of the study; null = the study's name"
    )
    log_system_metrics: bool = Field(
        False,
        description="log CPU/GPU/memory/disk/network use of each trial as system/* metrics (needs psutil)",
    )
    register_best_model: bool = Field(
        True, description="register the best trial's EMA generator in the MLflow model registry"
    )
    registered_model_name: str | None = Field(
        None, description="registry name of the best generator; null = '<experiment name>-generator'"
    )

    @field_validator("tracking_uri")
    @classmethod
    def _known_scheme(cls, uri: str | None) -> str | None:
        if uri is None:
            return None
        scheme = uri.split(":", 1)[0].split("+", 1)[0]
        if scheme not in TRACKING_SCHEMES:
            raise ValueError(
                f"'{uri}' is not a tracking URI; use one of the schemes {', '.join(TRACKING_SCHEMES)} "
                "(e.g. sqlite:///mlflow.db or http://127.0.0.1:5000)"
            )
        return uri

    @field_validator("artifact_root", "experiment_name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank; use null for the default")
        return value

    @field_validator("experiment_name")
    @classmethod
    def _experiment_name_fits(cls, name: str | None) -> str | None:
        if name is not None and len(name) > _EXPERIMENT_NAME_MAX_CHARS:
            raise ValueError(f"must be at most {_EXPERIMENT_NAME_MAX_CHARS} characters")
        return name

    @field_validator("registered_model_name")
    @classmethod
    def _valid_model_name(cls, name: str | None) -> str | None:
        if name is not None and not _MODEL_NAME.match(name):
            raise ValueError(
                f"'{name}' is not a registry name; use letters, digits, '.', '_', '-' and spaces "
                "(no '/' or ':'), at most 255 characters"
            )
        return name
