"""The MLflow run tracker: one experiment per study, a parent run per study, a nested run per trial, resumable;
the registry of the best generators (the logged model itself is ``model.py``).

Every call goes through an explicit ``MlflowClient`` bound to one tracking URI (never the process-global
default), so a ``Tracker`` can be pickled into Ray trial processes and talks to the same store there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from dtgan import keys
from dtgan.config import DTGANConfig, flatten, to_yaml
from dtgan.config.model import TOGGLES
from dtgan.config.tracking import TrackingConfig
from dtgan.errors import TrackingError, error_line
from dtgan.tracking.describe import toggle_tags
from dtgan.tracking.locations import (
    check_store_usable,
    resolve_artifact_root,
    resolve_tracking_uri,
    sqlite_path,
)
from dtgan.tracking.mlflow.fluent import fluent_store
from dtgan.tracking.mlflow.model import log_generator_model
from dtgan.tracking.tracker import (
    END_STATUSES,
    EndStatus,
    OpenTrial,
    RegisteredGenerator,
    StudyRun,
    TrialRun,
)

# Runs in these states were cut off without being ended (driver or trial killed, ASHA stop).
_OPEN_STATUSES = ("RUNNING", "SCHEDULED")
# Keys end up inside MLflow filter strings ("tags.trial_key = '...'"): no quotes, no whitespace.
_KEY = re.compile(r"^[A-Za-z0-9._=,+:@/-]{1,250}$")
DATASET_LOG_ATTEMPTS = 4  # concurrent trials logging one data set: see MLflowTracker.log_dataset
_SAMPLE_GRID = re.compile(r"^step_(?P<step>\d+)_(?P<kind>[A-Za-z0-9_-]+)\.png$")
_SEARCH_PAGE = 1000
CONFIG_ARTIFACT = "config.yaml"
PROVENANCE_ARTIFACT = "provenance.json"


def _check_key(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise TrackingError(
            f"{kind} {value!r} must be 1-250 characters of letters, digits and ._=,+:@/- "
            "(no quotes or spaces: it is matched in MLflow search filters)"
        )
    return value


def end_status(error: BaseException) -> EndStatus:
    """How a run that ``error`` stopped ends: FAILED for an Exception, KILLED for KeyboardInterrupt/SystemExit
    (a stopped process must not leave its run RUNNING)."""
    return "FAILED" if isinstance(error, Exception) else "KILLED"


@contextlib.contextmanager
def ended_on_error(end: Callable[[EndStatus, BaseException], None]) -> Iterator[None]:
    """When the block raises anything: ``end(end_status(exc), exc)``, then the error goes on."""
    try:
        yield
    except BaseException as exc:
        end(end_status(exc), exc)
        raise


def _tag_values(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as MLflow strings; None values are left out rather than stored as 'None'."""
    out = {}
    for key, value in (tags or {}).items():
        if value is None:
            continue
        text = str(value)
        if len(key) > MAX_ENTITY_KEY_LENGTH or len(text) > MAX_TAG_VAL_LENGTH:
            raise TrackingError(
                f"tag '{key[:80]}' is too long for MLflow (key <= {MAX_ENTITY_KEY_LENGTH}, "
                f"value <= {MAX_TAG_VAL_LENGTH} characters); shorten it or log it as an artifact"
            )
        out[key] = text
    return out


def config_params(config: DTGANConfig | Mapping[str, Any]) -> dict[str, str]:
    """The flattened config as MLflow params; a key or value over MLflow's limits is a clear error.

    For a DTGANConfig the six ablation toggles are logged resolved (``true``/``false`` from the ladder step
    and any explicit setting), never ``None``: they are what differs between variants in MLflow's diff view.
    """
    flat = flatten(config) if isinstance(config, DTGANConfig) else flatten(dict(config))
    if isinstance(config, DTGANConfig):
        resolved = config.model.toggles
        flat.update({f"model.{name}": getattr(resolved, name) for name in TOGGLES})
    params = {}
    for key, value in flat.items():
        text = str(value)
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            raise TrackingError(
                f"param key '{key[:80]}...' has {len(key)} characters, MLflow allows {MAX_ENTITY_KEY_LENGTH}; "
                "shorten the config key"
            )
        if len(text) > MAX_PARAM_VAL_LENGTH:
            raise TrackingError(
                f"param '{key}' has a {len(text)}-character value, MLflow allows {MAX_PARAM_VAL_LENGTH}; "
                "move the value to a file and reference its path"
            )
        params[key] = text
    return params


def _data_digest(path: str) -> str:
    """sha256 (first 16 hex digits) of a local data set's file names, sizes and mtimes, else of its URI."""

    digest = hashlib.sha256(path.encode())
    local = Path(path)
    if "://" not in path and local.exists():
        files = sorted(local.rglob("*.parquet")) if local.is_dir() else [local]
        for file in files:
            stat = file.stat()
            digest.update(
                f"{file.relative_to(local) if local.is_dir() else file.name}:{stat.st_size}:"
                f"{stat.st_mtime_ns}".encode()
            )
    return digest.hexdigest()[:16]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Tracker:
    """Writes studies and trials to one MLflow store. Cheap to build; pickles to its settings only."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: str | None = None,
        *,
        experiment_name: str | None = None,
        log_system_metrics: bool = False,
        register_best_model: bool = True,
        registered_model_name: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.experiment_name = experiment_name
        self.log_system_metrics = log_system_metrics
        self.register_best_model = register_best_model
        self.registered_model_name = registered_model_name
        self._client: MlflowClient | None = None
        if log_system_metrics:
            try:
                import psutil  # noqa: F401  (MLflow's system-metrics monitor needs it)
            except ImportError:
                raise TrackingError(
                    "tracking.log_system_metrics=true needs psutil: pip install psutil, or set it to false"
                ) from None

    @classmethod
    def from_config(cls, cfg: TrackingConfig, cwd: str | Path | None = None) -> Tracker:
        """Resolve ``cfg`` (URI from config, env or the embedded default) without touching the store."""
        uri = resolve_tracking_uri(cfg, cwd)
        return cls(
            uri,
            resolve_artifact_root(cfg, uri, cwd),
            experiment_name=cfg.experiment_name,
            log_system_metrics=cfg.log_system_metrics,
            register_best_model=cfg.register_best_model,
            registered_model_name=cfg.registered_model_name,
        )

    def __getstate__(self) -> dict[str, Any]:
        # The client holds a database engine; each process opens its own.
        return {**self.__dict__, "_client": None}

    def __repr__(self) -> str:
        return f"Tracker({self.tracking_uri!r}, artifact_root={self.artifact_root!r})"

    # -- store --------------------------------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        """The store's client. A missing sqlite file is an error here: only ``init`` may create it."""
        if self._client is None:
            db = sqlite_path(self.tracking_uri)
            if db is not None and not db.is_file():
                raise TrackingError(
                    f"tracking database {db} does not exist; the study driver must call "
                    "dtgan.tracking.init_tracking before trials start (concurrent creation corrupts sqlite)"
                )
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def init(self, study: str | None = None) -> str:
        """Create the store (sqlite file + tables) and, given a study, its experiment. Safe to repeat."""
        check_store_usable(self.tracking_uri, "tracking.tracking_uri")  # never MLflow's tables in another db
        db = sqlite_path(self.tracking_uri)
        if db is not None and self._client is None:
            db.parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        try:
            self.client.search_experiments(max_results=1)  # creates the tables of a fresh database
        except MlflowException as exc:
            raise TrackingError(
                f"cannot open the tracking store {self.tracking_uri}: {error_line(exc)}"
            ) from None
        if study is not None:
            self.experiment_id(self.experiment_name_for(study))
        return self.tracking_uri

    def experiment_name_for(self, study: str) -> str:
        """``experiment_name`` from the config, else the study's name."""
        return self.experiment_name or study

    def experiment_id(self, name: str) -> str:
        """Find or create the experiment ``name``, with an absolute artifact location for local stores."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if self.artifact_root is not None:
                safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
                location = f"{self.artifact_root}/{safe}"
            try:
                return self.client.create_experiment(
                    name, artifact_location=location, tags={keys.TAG_EXPERIMENT_KIND: keys.EXPERIMENT_KIND_ML}
                )
            except MlflowException as exc:
                experiment = self.client.get_experiment_by_name(name)  # created meanwhile by another process
                if experiment is None:
                    raise TrackingError(f"cannot create experiment '{name}': {error_line(exc)}") from None
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"experiment '{name}' is deleted; restore it (mlflow experiments restore) or set "
                "tracking.experiment_name to another name"
            )
        if keys.TAG_EXPERIMENT_KIND not in experiment.tags:  # made by an older dtgan or by hand
            self.client.set_experiment_tag(
                experiment.experiment_id, keys.TAG_EXPERIMENT_KIND, keys.EXPERIMENT_KIND_ML
            )
        return experiment.experiment_id

    def _search(self, experiment_id: str, filter_string: str) -> list:
        """All active runs matching ``filter_string``, oldest first."""
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=filter_string,
                max_results=_SEARCH_PAGE,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def latest_study_run(self, experiment_name: str) -> str:
        """The parent run of the latest study in an existing experiment (where a baseline run is added).

        Raises:
            TrackingError: no such experiment, or it holds no study run.
        """
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise TrackingError(
                f"no experiment '{experiment_name}' in {self.tracking_uri}; run its study first or set "
                "-o tracking.tracking_uri=URI to the study's store"
            )
        found = self._search(experiment.experiment_id, f"tags.{keys.TAG_RUN_KIND} = '{keys.RUN_KIND_STUDY}'")
        if not found:
            raise TrackingError(
                f"experiment '{experiment_name}' holds no study run; pass --parent-run RUN_ID"
            )
        return found[-1].info.run_id

    # -- runs ---------------------------------------------------------------------------------------------

    def start_study(
        self,
        study: str,
        *,
        resume_key: str,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> StudyRun:
        """Find (by experiment, study and resume key) or create the study's parent run; it is RUNNING after.

        A fresh launch passes a new ``resume_key``; ``--resume`` passes the same key again and gets the
        same parent run back, so children are found again instead of duplicated.
        """
        _check_key("study", study)
        _check_key("resume_key", resume_key)
        name = self.experiment_name_for(study)
        experiment_id = self.experiment_id(name)
        found = self._search(
            experiment_id,
            f"tags.{keys.TAG_RUN_KIND} = '{keys.RUN_KIND_STUDY}' AND tags.{keys.TAG_STUDY} = '{study}' "
            f"AND tags.{keys.TAG_RESUME_KEY} = '{resume_key}'",
        )
        if found:
            run_id = found[0].info.run_id
            self._reopen(found[0])
        else:
            run_id = self.client.create_run(
                experiment_id,
                run_name=study,
                tags={
                    keys.TAG_RUN_KIND: keys.RUN_KIND_STUDY,
                    keys.TAG_STUDY: study,
                    keys.TAG_RESUME_KEY: resume_key,
                },
            ).info.run_id
        self.set_tags(run_id, tags)
        if params:
            self.log_params(run_id, config_params(params))
        if provenance:
            self.log_provenance(run_id, provenance)
        return StudyRun(run_id, experiment_id, name, resumed=bool(found))

    def start_trial(
        self,
        parent_run_id: str,
        trial_key: str,
        config: DTGANConfig | Mapping[str, Any],
        *,
        tags: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        description: str | None = None,
    ) -> TrialRun:
        """Find (by ``trial_key`` under the parent) or create the trial's nested run.

        ``run_name`` (default the trial key) is what the UI lists, e.g. ``c=b+fg_cls-s777``; ``description``
        becomes the run's note (``mlflow.note.content``). A DTGANConfig also sets one ``toggle.<name>`` tag
        per resolved ablation toggle.

        A run that FINISHED before is returned as ``finished=True`` and left untouched; any other earlier
        run (RUNNING after a crash, KILLED, FAILED) is reopened so a resumed trial continues it. Params are
        the flattened config (plus ``config.yaml`` for a DTGANConfig); resuming with a different config is
        an error, because MLflow params cannot change.
        """
        _check_key("trial_key", trial_key)
        parent = self.client.get_run(parent_run_id)
        experiment_id = parent.info.experiment_id
        study = parent.data.tags.get(keys.TAG_STUDY)
        found = self._search(
            experiment_id,
            f"tags.`{keys.TAG_PARENT_RUN_ID}` = '{parent_run_id}' AND tags.{keys.TAG_TRIAL_KEY} = '{trial_key}'",
        )
        if found and found[0].info.status == RunStatus.to_string(RunStatus.FINISHED):
            return TrialRun(found[0].info.run_id, trial_key, resumed=True, finished=True)
        if found:
            run_id = found[0].info.run_id
            self._reopen(found[0])
        else:
            base_tags = {
                keys.TAG_PARENT_RUN_ID: parent_run_id,
                keys.TAG_RUN_KIND: keys.RUN_KIND_TRIAL,
                keys.TAG_TRIAL_KEY: trial_key,
            }
            if study is not None:
                base_tags[keys.TAG_STUDY] = study
            run_id = self.client.create_run(
                experiment_id, run_name=run_name or trial_key, tags=base_tags
            ).info.run_id
        described: dict[str, Any] = {keys.TAG_NOTE: description}
        if found and run_name:
            described[keys.TAG_RUN_NAME] = run_name
        if isinstance(config, DTGANConfig):
            described.update(
                {
                    keys.TAG_PRESET: config.preset,
                    keys.TAG_SEED: config.train.seed,
                    **toggle_tags(config.model.toggles),
                }
            )
        self.set_tags(run_id, {**described, **(tags or {})})
        self.log_params(run_id, config_params(config))
        if isinstance(config, DTGANConfig):
            self.log_text(run_id, to_yaml(config), CONFIG_ARTIFACT)
        if provenance:
            self.log_provenance(run_id, provenance)
        return TrialRun(run_id, trial_key, resumed=bool(found), finished=False)

    @contextlib.contextmanager
    def trial(
        self, parent_run_id: str, trial_key: str, config: DTGANConfig | Mapping[str, Any], **start: Any
    ) -> Iterator[OpenTrial]:
        """A trial's life cycle: ``start_trial`` (same arguments), then the run ends FINISHED when the block
        exits normally (or at ``trial.finish()``), FAILED when it raises an Exception, KILLED on
        KeyboardInterrupt/SystemExit, the error as the one-line ``error`` tag; an error after ``finish()``
        still ends it FAILED/KILLED. A trial an earlier launch finished (``trial.finished``) is left as it is.
        """
        trial = OpenTrial(self, self.start_trial(parent_run_id, trial_key, config, **start))
        if trial.finished:
            yield trial
            return
        with ended_on_error(lambda status, exc: self.end_run(trial.run_id, status, error=exc)):
            yield trial
        trial.finish()

    def _reopen(self, run) -> None:
        """Mark an earlier run RUNNING again and drop the error of its previous attempt."""
        if run.info.status != RunStatus.to_string(RunStatus.RUNNING):
            self.client.update_run(run.info.run_id, status="RUNNING")
        if keys.TAG_ERROR in run.data.tags:
            self.client.delete_tag(run.info.run_id, keys.TAG_ERROR)

    def end_run(
        self, run_id: str, status: EndStatus = "FINISHED", error: BaseException | str | None = None
    ) -> None:
        """End a run as FINISHED, FAILED or KILLED; ``error`` becomes the one-line ``error`` tag."""
        if status not in END_STATUSES:
            raise TrackingError(f"end_run status must be one of {', '.join(END_STATUSES)}, got {status!r}")
        if error is not None:
            self.client.set_tag(run_id, keys.TAG_ERROR, error_line(error))
        self.client.set_terminated(run_id, status=status)

    def close_orphans(self, parent_run_id: str) -> list[str]:
        """End every child of the study still RUNNING (e.g. trials ASHA stopped) as KILLED; their ids."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        children = self._search(experiment_id, f"tags.`{keys.TAG_PARENT_RUN_ID}` = '{parent_run_id}'")
        closed = []
        for run in children:
            if run.info.status in _OPEN_STATUSES:
                self.client.set_terminated(run.info.run_id, status="KILLED")
                closed.append(run.info.run_id)
        return closed

    def run_tag(self, run_id: str, key: str) -> str | None:
        """The run's tag ``key``; None when the run or the tag does not exist."""
        try:
            return self.client.get_run(run_id).data.tags.get(key)
        except MlflowException:
            return None

    def run_results(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
        """The run's latest metrics and its tags (what a finished trial reports again)."""
        data = self.client.get_run(run_id).data
        return dict(data.metrics), dict(data.tags)

    def run_status(self, run_id: str) -> str:
        """RUNNING, FINISHED, FAILED, KILLED or SCHEDULED."""
        return self.client.get_run(run_id).info.status

    # -- data ---------------------------------------------------------------------------------------------

    def set_tags(self, run_id: str, tags: Mapping[str, Any] | None) -> None:
        """Set tags in one batch; None values are skipped."""
        values = _tag_values(tags)
        for chunk in _chunks(list(values.items()), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in chunk])

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log params not yet on the run; one already there with another value is an error."""
        existing = self.client.get_run(run_id).data.params
        changed = [k for k, v in params.items() if k in existing and existing[k] != v]
        if changed:
            key = changed[0]
            raise TrackingError(
                f"run {run_id} already has param '{key}'={existing[key]!r}, now {params[key]!r}; "
                "resume with the same config, or start a new study (another resume key)"
            )
        new = [Param(k, v) for k, v in params.items() if k not in existing]
        for chunk in _chunks(new, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=chunk)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """Log ``metrics`` at ``step`` with one ``log_batch`` call (per 1000 metrics)."""
        self.log_metric_batch(run_id, [(step, metrics)])

    def log_metric_batch(self, run_id: str, rows: Iterable[tuple[int, Mapping[str, float]]]) -> None:
        """Log several steps' metrics in as few ``log_batch`` calls as MLflow allows."""
        now_ms = int(time.time() * 1000)
        entries = []
        for step, metrics in rows:
            for key, value in metrics.items():
                if len(key) > MAX_ENTITY_KEY_LENGTH:
                    raise TrackingError(f"metric key '{key[:80]}...' is longer than {MAX_ENTITY_KEY_LENGTH}")
                entries.append(Metric(key, float(value), now_ms, int(step)))
        for chunk in _chunks(entries, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)

    def log_artifacts(
        self, run_id: str, paths: str | Path | Iterable[str | Path], artifact_path: str | None = None
    ) -> None:
        """Upload files and folders (a folder keeps its name) under ``artifact_path`` of the run."""
        items = [paths] if isinstance(paths, (str, Path)) else list(paths)
        for item in items:
            path = Path(item)
            if path.is_dir():
                sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
                self.client.log_artifacts(run_id, str(path), sub)
            elif path.is_file():
                self.client.log_artifact(run_id, str(path), artifact_path)
            else:
                raise TrackingError(f"artifact {path} does not exist; nothing was logged for it")

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` (e.g. ``eval/metrics.json``)."""
        self.client.log_text(run_id, text, artifact_file)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
        """Store ``data`` as a JSON artifact (e.g. the evaluation results)."""
        self.log_text(run_id, json.dumps(data, indent=2, sort_keys=True, default=str), artifact_file)

    def log_table(self, run_id: str, table: Any, artifact_file: str) -> None:
        """A pandas DataFrame as an MLflow table (``*.json``): the Evaluation view and the artifact viewer show it."""
        self.client.log_table(run_id, data=table, artifact_file=artifact_file)

    def log_sample_grids(self, run_id: str, folder: str | Path) -> int:
        """The training loop's ``step_XXXXXXXX_<kind>.png`` grids as MLflow images (key ``samples/<kind>``,
        at their step), so the run's Images view pages through them; other files as plain artifacts."""
        from PIL import Image

        logged = 0
        for path in sorted(Path(folder).iterdir()):
            match = _SAMPLE_GRID.match(path.name)
            if match is None:
                self.log_artifacts(run_id, [path], Path(folder).name)
                continue
            with Image.open(path) as image:
                self.client.log_image(
                    run_id, image.copy(), key=f"samples/{match['kind']}", step=int(match["step"])
                )
            logged += 1
        return logged

    def log_dataset(self, run_id: str, path: str, context: str = "training") -> None:
        """The data set as the run's MLflow input (the runs table's Dataset column): name, source, a digest.

        The digest is cheap and says when the files changed: sha256 of the Parquet files' names, sizes and
        modification times (a local path), or of the URI itself (remote data is not listed).
        """
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        try:
            source = resolve_dataset_source(path)
        except MlflowException as exc:
            raise TrackingError(f"cannot log data set {path} as an MLflow input: {error_line(exc)}") from None
        dataset = MetaDataset(source, name=Path(path.rstrip("/")).stem or path, digest=_data_digest(path))
        inputs = [DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])]
        # Trials running at once log the same data set to one experiment: the store looks it up, then inserts it,
        # so two first-time writers race on its unique (experiment, name, digest). The loser finds it next time.
        for attempt in range(DATASET_LOG_ATTEMPTS):
            try:
                self.client.log_inputs(run_id, datasets=inputs)
                return
            except MlflowException as exc:
                if "UNIQUE constraint" not in str(exc) or attempt == DATASET_LOG_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def log_provenance(self, run_id: str, provenance: Mapping[str, Any]) -> None:
        """Scalar entries (git_sha, git_dirty, seed, ...) as tags; everything in ``provenance.json``."""
        scalars = {k: v for k, v in provenance.items() if isinstance(v, (str, int, float, bool))}
        if isinstance(provenance.get(keys.TAG_GIT_SHA), str):
            scalars[keys.TAG_GIT_COMMIT] = provenance[keys.TAG_GIT_SHA]
        self.set_tags(run_id, scalars)
        self.log_dict(run_id, provenance, PROVENANCE_ARTIFACT)

    # -- models -------------------------------------------------------------------------------------------

    def log_best_checkpoint(self, run_id: str, checkpoint_path: str | Path) -> RegisteredGenerator | None:
        """Upload the best checkpoint to ``checkpoints/best`` and, if configured, register its generator."""
        self.log_artifacts(run_id, [checkpoint_path], f"{keys.CHECKPOINT_DIR}/best")
        if not self.register_best_model:
            return None
        return self.register_generator(run_id, checkpoint_path)

    def register_generator(
        self, run_id: str, checkpoint_path: str | Path, name: str | None = None
    ) -> RegisteredGenerator:
        """Log the checkpoint's EMA networks as the run's MLflow logged model ``generator`` and register it.

        ``mlflow.pyfunc.log_model`` from code (``generator_model.py``) with a signature and an input example,
        so the run's "Logged models", the experiment's Models tab and the registry version show inputs and
        outputs, and ``mlflow.pyfunc.load_model(f"models:/{name}/{version}")`` gives the generator back.
        One version per run: calling it again for the same run (e.g. after a resume) returns the existing
        version. The model holds ``generator.pt`` (format_version, config, vocab, step, nets_ema: no
        discriminator, no optimizer state).
        """
        run = self.client.get_run(run_id)
        if name is not None:
            try:
                TrackingConfig(registered_model_name=name)
            except ValueError:
                raise TrackingError(
                    f"'{name}' is not a registry name; use letters, digits, '.', '_', '-'"
                ) from None
        else:
            experiment = self.client.get_experiment(run.info.experiment_id).name
            name = self.registered_model_name or f"{experiment}-generator"
        existing = self.client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'")
        if existing:
            latest = max(existing, key=lambda v: int(v.version))
            return RegisteredGenerator(name, int(latest.version), latest.source)

        info, description = log_generator_model(self.client, self.tracking_uri, run, checkpoint_path)
        try:
            self.client.create_registered_model(
                name, description="dtgan generators (EMA networks) of a study"
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise TrackingError(f"cannot create registered model '{name}': {error_line(exc)}") from None
        with fluent_store(self.tracking_uri):  # the registry resolves models:/<id> through the default client
            # register_model also tags the logged model with its versions: the UI links the two through it.
            version = mlflow.register_model(info.model_uri, name)
        self.client.update_model_version(name, version.version, description=description)
        self.set_tags(
            run_id,
            {
                keys.TAG_REGISTERED_MODEL_NAME: name,
                keys.TAG_REGISTERED_MODEL_VERSION: version.version,
                keys.TAG_LOGGED_MODEL_ID: info.model_id,
            },
        )
        return RegisteredGenerator(name, int(version.version), info.model_uri)

    # -- system metrics -----------------------------------------------------------------------------------

    def start_system_metrics(self, run_id: str):
        """Start MLflow's system-metrics thread for ``run_id`` when configured; the monitor or None.

        Call ``.finish()`` on it when the trial ends (it also stops by itself once the run is not RUNNING).
        """
        if not self.log_system_metrics:
            return None
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, resume_logging=True, tracking_uri=self.tracking_uri)
        monitor.start()
        return monitor


def init_tracking(cfg: TrackingConfig, study: str | None = None, cwd: str | Path | None = None) -> Tracker:
    """From the study driver, before any trial starts: resolve, create the store and the study's experiment."""
    tracker = Tracker.from_config(cfg, cwd)
    tracker.init(study)
    return tracker
