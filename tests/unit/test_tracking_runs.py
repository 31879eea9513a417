"""MLflow tracking on a real sqlite store: study -> nested trials, failures, orphans, resume, reporter."""

import json
import os
import pickle
import time

import pytest
from mlflow import MlflowClient

from dtgan.config import flatten, load_config
from dtgan.config.tracking import TrackingConfig
from dtgan.errors import TrackingError
from dtgan.tracking import MLflowReporter, Tracker, init_tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One initialised sqlite store for the module (MLflow's import and schema creation take seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    tracker = init_tracking(TrackingConfig(), cwd=root)
    return tracker, MlflowClient(tracking_uri=tracker.tracking_uri), root


@pytest.fixture(scope="module")
def smoke():
    return load_config("smoke")


def _children(client, study_run):
    return client.search_runs(
        [study_run.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{study_run.run_id}'"
    )


def test_study_tree_has_nested_trials_with_params_tags_metrics_and_artifacts(store, smoke, tmp_path):
    tracker, client, root = store
    study = tracker.start_study(
        "tree", resume_key="launch-1", tags={"preset": "smoke"}, params={"num_seeds": 2}
    )
    trial = tracker.start_trial(
        study.run_id,
        "a-seed1",
        smoke,
        tags={"variant": "a", "fid_extractor": "inception-v3-compat", "ray_trial_id": "t_0001"},
        provenance={"git_sha": "0123abc", "git_dirty": False, "versions": {"torch": "2.14"}},
    )
    for step in (10, 20, 30):
        tracker.log_metrics(trial.run_id, {"train/loss_d": 1.0 / step, "train/loss_g": 2.0}, step=step)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "step_30.png").write_bytes(b"\x89PNG")
    tracker.log_artifacts(trial.run_id, [tmp_path / "samples"])
    tracker.log_dict(trial.run_id, {"eval/fid_latent": 42.0}, "eval/metrics.json")
    tracker.end_run(trial.run_id)
    tracker.end_run(study.run_id)

    experiment = client.get_experiment(study.experiment_id)
    assert experiment.name == "tree"
    assert experiment.artifact_location == (root.resolve() / "mlartifacts" / "tree").as_uri()
    parent = client.get_run(study.run_id)
    assert parent.info.status == "FINISHED" and parent.data.params == {"num_seeds": "2"}
    assert parent.data.tags["run_kind"] == "study" and parent.data.tags["resume_key"] == "launch-1"
    (child,) = _children(client, study)
    assert child.info.run_id == trial.run_id and child.info.status == "FINISHED"
    # The flattened config, with the ablation toggles resolved from the ladder step (never None).
    resolved = {f"model.{name}": str(value) for name, value in smoke.model.toggles._asdict().items()}
    assert child.data.params == {**{k: str(v) for k, v in flatten(smoke).items()}, **resolved}
    assert "None" not in resolved.values()
    tags = child.data.tags
    assert tags["trial_key"] == "a-seed1" and tags["variant"] == "a" and tags["study"] == "tree"
    assert tags["preset"] == "smoke" and tags["seed"] == str(smoke.train.seed)
    assert tags["git_sha"] == "0123abc" and tags["git_dirty"] == "False" and tags["ray_trial_id"] == "t_0001"
    history = client.get_metric_history(trial.run_id, "train/loss_d")
    assert [(m.step, m.value) for m in history] == [(10, 0.1), (20, 0.05), (30, 1.0 / 30)]
    files = {f.path for f in client.list_artifacts(trial.run_id)}
    assert {"config.yaml", "provenance.json", "samples", "eval"} <= files
    assert client.list_artifacts(trial.run_id, "samples")[0].path == "samples/step_30.png"
    provenance = json.loads(
        (root / "mlartifacts" / "tree" / trial.run_id / "artifacts" / "provenance.json").read_text()
    )
    assert provenance["versions"] == {"torch": "2.14"}


def test_failed_trial_ends_failed_with_one_line_error_tag(store, smoke):
    tracker, client, _ = store
    study = tracker.start_study("fail", resume_key="k")
    trial = tracker.start_trial(study.run_id, "b-seed1", smoke)
    try:
        raise FloatingPointError("loss_g is nan at step 120\nTraceback lines that must not be in the tag")
    except FloatingPointError as exc:
        tracker.end_run(trial.run_id, "FAILED", error=exc)
    run = client.get_run(trial.run_id)
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["error"] == "FloatingPointError: loss_g is nan at step 120"
    with pytest.raises(TrackingError, match="FINISHED, FAILED, KILLED"):
        tracker.end_run(trial.run_id, "DONE")


def test_trial_block_ends_its_run_finished_failed_or_killed(store, smoke):
    tracker, client, _ = store
    study = tracker.start_study("lifecycle", resume_key="k")
    with tracker.trial(study.run_id, "ok", smoke, tags={"variant": "g"}, run_name="ok-run") as ok:
        assert tracker.run_status(ok.run_id) == "RUNNING" and not ok.finished
    with pytest.raises(FloatingPointError), tracker.trial(study.run_id, "nan", smoke) as failed:
        raise FloatingPointError("loss_g is nan at step 120\nTraceback lines that must not be in the tag")
    with pytest.raises(KeyboardInterrupt), tracker.trial(study.run_id, "stopped", smoke) as stopped:
        raise KeyboardInterrupt
    # finish() ends it before the block does (the last report); an error after it still ends it FAILED
    with pytest.raises(RuntimeError), tracker.trial(study.run_id, "late", smoke) as late:
        late.finish()
        assert tracker.run_status(late.run_id) == "FINISHED"
        late.finish()  # idempotent
        raise RuntimeError("the scheduler's report failed")
    runs = {r.info.run_id: r for r in _children(client, study)}
    assert runs[ok.run_id].info.status == "FINISHED" and "error" not in runs[ok.run_id].data.tags
    assert runs[ok.run_id].data.tags["variant"] == "g" and runs[ok.run_id].info.run_name == "ok-run"
    assert runs[failed.run_id].info.status == "FAILED"
    assert runs[failed.run_id].data.tags["error"] == "FloatingPointError: loss_g is nan at step 120"
    assert runs[stopped.run_id].info.status == "KILLED"
    assert runs[late.run_id].info.status == "FAILED"
    # A trial an earlier launch finished is left as it is, even when the block raises.
    with pytest.raises(ValueError), tracker.trial(study.run_id, "ok", smoke) as again:
        assert again.finished and again.run_id == ok.run_id
        raise ValueError("reporting the earlier result failed")
    assert tracker.run_status(ok.run_id) == "FINISHED" and "error" not in client.get_run(ok.run_id).data.tags


def test_ended_on_error_ends_failed_or_killed_and_reraises():
    from dtgan.tracking.mlflow.runs import end_status, ended_on_error

    ended = []
    with ended_on_error(lambda status, exc: ended.append((status, type(exc)))):
        pass
    for error in (ValueError("x"), SystemExit(3), KeyboardInterrupt()):
        with (
            pytest.raises(type(error)),
            ended_on_error(lambda status, exc: ended.append((status, type(exc)))),
        ):
            raise error
    assert ended == [("FAILED", ValueError), ("KILLED", SystemExit), ("KILLED", KeyboardInterrupt)]
    assert end_status(RuntimeError()) == "FAILED" and end_status(KeyboardInterrupt()) == "KILLED"


def test_close_orphans_marks_running_children_killed(store, smoke):
    tracker, client, _ = store
    study = tracker.start_study("orphans", resume_key="k")
    done = tracker.start_trial(study.run_id, "a-seed1", smoke)
    tracker.end_run(done.run_id)
    stopped = [tracker.start_trial(study.run_id, f"c-seed{i}", smoke).run_id for i in (1, 2)]
    assert sorted(tracker.close_orphans(study.run_id)) == sorted(stopped)
    statuses = {r.info.run_id: r.info.status for r in _children(client, study)}
    assert statuses == {done.run_id: "FINISHED", stopped[0]: "KILLED", stopped[1]: "KILLED"}
    assert tracker.close_orphans(study.run_id) == []
    assert client.get_run(study.run_id).info.status == "RUNNING"  # the study itself is the caller's to end


def test_resume_finds_the_same_parent_and_children_without_duplicates(store, smoke):
    tracker, client, _ = store
    first = tracker.start_study("resume", resume_key="launch-7", params={"num_seeds": 2})
    finished = tracker.start_trial(first.run_id, "a-seed1", smoke)
    tracker.log_metrics(finished.run_id, {"eval/fid_latent": 50.0}, step=200)
    tracker.end_run(finished.run_id)
    failed = tracker.start_trial(first.run_id, "b-seed1", smoke)
    tracker.end_run(failed.run_id, "FAILED", error="worker died")
    crashed = tracker.start_trial(first.run_id, "c-seed1", smoke)  # the driver is killed here: RUNNING

    again = tracker.start_study("resume", resume_key="launch-7", params={"num_seeds": 2})
    assert again.run_id == first.run_id and again.resumed and not first.resumed
    skip = tracker.start_trial(again.run_id, "a-seed1", smoke)
    assert skip.run_id == finished.run_id and skip.finished and skip.resumed
    assert tracker.run_status(skip.run_id) == "FINISHED"
    metrics, tags = tracker.run_results(skip.run_id)  # what a skipped trial reports again
    assert metrics == {"eval/fid_latent": 50.0} and tags["trial_key"] == "a-seed1"
    retry = tracker.start_trial(again.run_id, "b-seed1", smoke)
    assert retry.run_id == failed.run_id and retry.resumed and not retry.finished
    assert (
        tracker.run_status(retry.run_id) == "RUNNING"
        and "error" not in client.get_run(retry.run_id).data.tags
    )
    cont = tracker.start_trial(again.run_id, "c-seed1", smoke)
    assert cont.run_id == crashed.run_id and cont.resumed

    keys = sorted(r.data.tags["trial_key"] for r in _children(client, first))
    assert keys == ["a-seed1", "b-seed1", "c-seed1"]
    studies = client.search_runs([first.experiment_id], filter_string="tags.run_kind = 'study'")
    assert len(studies) == 1
    fresh = tracker.start_study("resume", resume_key="launch-8")
    assert fresh.run_id != first.run_id and not fresh.resumed


def test_resume_with_a_changed_config_names_the_param(store, smoke):
    tracker, _, _ = store
    study = tracker.start_study("changed", resume_key="k")
    tracker.start_trial(study.run_id, "a-seed1", smoke)
    changed = smoke.model_copy(update={"loss": smoke.loss.model_copy(update={"lambda_cyc": 2.0})})
    with pytest.raises(TrackingError, match=r"param 'loss.lambda_cyc'='1.0', now '2.0'"):
        tracker.start_trial(study.run_id, "a-seed1", changed)


def test_param_over_mlflow_limits_is_a_clear_error(store):
    tracker, _, _ = store
    study = tracker.start_study("limits", resume_key="k")
    with pytest.raises(
        TrackingError, match=r"param 'data.path' has a 6001-character value, MLflow allows 6000"
    ):
        tracker.start_trial(study.run_id, "x", {"data": {"path": "p" * 6001}})
    with pytest.raises(TrackingError, match="trial_key"):
        tracker.start_trial(study.run_id, "variant 'a'", {})


def test_trial_process_refuses_to_create_a_missing_sqlite_store(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/never-initialised.db")
    with pytest.raises(TrackingError, match="init_tracking"):
        tracker.start_study("x", resume_key="k")
    assert not (tmp_path / "never-initialised.db").exists()


def test_init_is_safe_to_repeat_and_creates_the_study_experiment_once(store):
    tracker, client, root = store
    again = init_tracking(TrackingConfig(experiment_name="shared-exp"), study="ignored", cwd=root)
    assert again.tracking_uri == tracker.tracking_uri
    init_tracking(TrackingConfig(experiment_name="shared-exp"), study="ignored", cwd=root)
    assert [e.name for e in client.search_experiments(filter_string="name = 'shared-exp'")] == ["shared-exp"]
    assert client.get_experiment_by_name("ignored") is None


def test_tracker_pickles_to_its_settings_for_trial_processes(store):
    tracker, _, _ = store
    tracker.client  # noqa: B018  (opens the database engine)
    clone = pickle.loads(pickle.dumps(tracker))
    assert clone.tracking_uri == tracker.tracking_uri and clone._client is None


class _CountingTracker(Tracker):
    """Counts metric writes to show the reporter batches them (the store underneath is real)."""

    writes = 0

    def log_metric_batch(self, run_id, rows):
        type(self).writes += 1
        super().log_metric_batch(run_id, rows)


def test_reporter_batches_metrics_and_uploads_only_the_final_checkpoint(store, smoke, tmp_path):
    tracker, client, _ = store
    counting = _CountingTracker(tracker.tracking_uri, tracker.artifact_root)
    study = counting.start_study("reporter", resume_key="k")
    trial = counting.start_trial(study.run_id, "g-seed1", smoke)
    ckpt = [tmp_path / f"step_{s:08d}.pt" for s in (50, 100)]
    for path in ckpt:
        path.write_bytes(b"weights")
    with MLflowReporter(counting, trial.run_id, flush_every_s=3600) as reporter:
        for step in range(1, 101):
            reporter.report(step, {"train/loss_g": float(step), "train/loss_d": 0.5})
            if step in (50, 100):
                reporter.report(step, {}, checkpoint_path=str(ckpt[step // 50 - 1]))
        assert client.list_artifacts(trial.run_id, "checkpoints") == []
    assert _CountingTracker.writes == 2  # one flush per checkpoint, nothing left for close()
    history = client.get_metric_history(trial.run_id, "train/loss_g")
    assert [m.step for m in history] == list(range(1, 101)) and history[-1].value == 100.0
    assert [f.path for f in client.list_artifacts(trial.run_id, "checkpoints")] == [
        "checkpoints/step_00000100.pt"
    ]
    with pytest.raises(RuntimeError, match="after close"):
        reporter.report(101, {"train/loss_g": 1.0})


def test_system_metrics_are_logged_while_the_reporter_is_open(store, smoke, monkeypatch):
    tracker, client, _ = store
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.1")
    monitored = Tracker(tracker.tracking_uri, tracker.artifact_root, log_system_metrics=True)
    study = monitored.start_study("system", resume_key="k")
    trial = monitored.start_trial(study.run_id, "a-seed1", smoke)
    with MLflowReporter(monitored, trial.run_id):
        deadline = time.monotonic() + 10
        while "system/cpu_utilization_percentage" not in client.get_run(trial.run_id).data.metrics:
            assert time.monotonic() < deadline, "no system metrics within 10 s"
            time.sleep(0.1)
    monitored.end_run(trial.run_id)
    assert client.get_metric_history(trial.run_id, "system/cpu_utilization_percentage")[0].value >= 0.0


def test_fluent_store_puts_the_environment_back_exactly(tmp_path, monkeypatch):
    # mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI; putting back the *default* URI would have left it
    # pointing later TrackingConfig() stores (and subprocesses) at the current folder's mlflow.db.
    import mlflow

    from dtgan.tracking.mlflow.fluent import fluent_store

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with fluent_store(uri):
        assert mlflow.get_tracking_uri() == uri and os.environ["MLFLOW_TRACKING_URI"] == uri
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert init_tracking(TrackingConfig(), cwd=tmp_path / "x").tracking_uri.endswith("/x/mlflow.db")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    with fluent_store(uri):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
