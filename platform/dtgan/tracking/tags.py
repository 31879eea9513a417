"""Names of the MLflow run tags dtgan sets: how study and trial runs are found again on resume."""

from __future__ import annotations

# Set by MLflow itself; a child run points at its study run through it.
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
# An experiment tag: MLflow 3's UI opens a "custom_model_development" experiment on its runs table, not on
# the GenAI overview (traces) it shows an experiment of unknown kind.
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_ML = "custom_model_development"
# Shown by the MLflow UI as the run's (and the study's) description.
NOTE = "mlflow.note.content"
# The commit MLflow's UI shows in the runs table's "Source"/"Version" columns (mirrors git_sha).
GIT_COMMIT = "mlflow.source.git.commit"

# "study" on the parent run of a study, "trial" on each child run.
RUN_KIND = "run_kind"
RUN_KIND_STUDY = "study"
RUN_KIND_TRIAL = "trial"

STUDY = "study"
# Identifies one launch of a study; the same key on --resume finds the same parent run.
RESUME_KEY = "resume_key"
# Identifies one trial inside its study (e.g. variant + seed); the same key finds the same child run.
TRIAL_KEY = "trial_key"
# One line: why a run ended FAILED (or KILLED).
ERROR = "error"

# DESIGN.md's descriptive tags, set by the callers (studies, trainer, evaluation).
GIT_SHA = "git_sha"
GIT_DIRTY = "git_dirty"
PRESET = "preset"
VARIANT = "variant"
SEED = "seed"
FID_EXTRACTOR = "fid_extractor"
FID_WEIGHTS = "fid_weights"
RAY_TRIAL_ID = "ray_trial_id"

# Where register_generator left the generator of a run.
REGISTERED_MODEL_NAME = "registered_model_name"
REGISTERED_MODEL_VERSION = "registered_model_version"
LOGGED_MODEL_ID = "logged_model_id"
