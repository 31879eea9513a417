"""A 2-variant ablation and a 2-trial search on one local Ray (2 CPUs): the MLflow tree they leave behind."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from studies_testdata import tiny_benchmark, tiny_study_overrides

from dtgan.config.loader import load_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shared_ray(tmp_path_factory):
    """One Ray instance for the module (private temp dir, stopped at the end, never a machine-wide stop)."""
    from dtgan.config.study import StudyConfig
    from dtgan.search import ray_tune

    temp_dir = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    ray_tune.start_ray(StudyConfig(local_num_cpus=2), temp_dir=temp_dir)
    yield
    ray_tune.stop_ray()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studies")
    return folder, tiny_benchmark(folder)


def children(client: MlflowClient, parent_run_id: str) -> list:
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_two_variant_ablation_builds_the_mlflow_tree(shared_ray, folder):
    from dtgan.search.runner import run_ablation

    folder, data_path = folder
    config = load_config("smoke", [*tiny_study_overrides(folder, data_path), "study.variants=[a,g]"])
    launch, rows, text = run_ablation(config)

    assert [(r.trial, r.status) for r in rows] == [
        ("a-seed777", "completed"),
        ("g-seed777", "completed"),
    ]
    client = MlflowClient(launch.tracker.tracking_uri, registry_uri=launch.tracker.tracking_uri)
    parent = client.get_run(launch.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["study_kind"] == "ablation"
    assert parent.data.tags["best_trial"] in ("a-seed777", "g-seed777")
    assert {"report/report.md", "report/report_cells.parquet", "study/trials.json"} <= artifact_paths(
        client, parent.info.run_id
    )
    runs = {r.data.tags["trial_key"]: r for r in children(client, launch.parent_run_id)}
    assert set(runs) == {"a-seed777", "g-seed777"}
    for key, run in runs.items():
        variant = key[0]
        assert run.info.status == "FINISHED"
        assert run.data.tags["variant"] == variant and run.data.tags["seed"] == "777"
        assert run.data.tags["study"] == "ablation-smoke" and run.data.tags["ray_trial_id"]
        assert run.data.tags["fid_extractor"] == "dtgan-pretrained-cnn" and run.data.tags["git_sha"]
        assert run.data.params["model.ablation"] == variant and run.data.params["train.total_steps"] == "20"
        assert run.data.metrics["eval/fid_mix"] > 0 and "eval/kid_mix_brushed" in run.data.metrics
        history = client.get_metric_history(run.info.run_id, "train/g/latent/total")
        assert sorted(m.step for m in history) == [5, 10, 15, 20]
        artifacts = artifact_paths(client, run.info.run_id)
        assert {
            "config.yaml",
            "provenance.json",
            "eval/final/evaluation.json",
            "eval/final/latent.png",
        } <= artifacts
        # The features FID/KID were computed on, where the report's bootstrap reads them (and only there).
        features = {
            f"eval/features/{kind}_{scope}.npy"
            for scope in ("all", "brushed", "cast")
            for kind in ("real", "gen_latent", "gen_reference", "gen_mix")
        }
        assert features <= artifacts and not any(p.startswith("eval/final/features") for p in artifacts)
        # Where the trial's time went (benchmarks/trial_overhead.py --study reads it): phases in order.
        timeline = json.loads((Path(launch.runs_uri) / key / "timeline.json").read_text())
        walls = [
            timeline["marks"][m]["wall_s"]
            for m in (
                "trial_start",
                "imported",
                "mlflow_run_started",
                "train_start",
                "train_end",
                "metrics_flushed",
                "evaluation_end",
                "trial_end",
            )
        ]
        assert walls == sorted(walls) and timeline["last_reports"][-1]["step"] == 20
        assert walls[3] < timeline["first_report"]["wall_s"] <= walls[4]
    best = runs[parent.data.tags["best_trial"]]
    assert any(p.startswith("checkpoints/best/step_") for p in artifact_paths(client, best.info.run_id))
    versions = client.search_model_versions("name = 'ablation-smoke-generator'")
    assert [v.run_id for v in versions] == [best.info.run_id]
    _assert_the_ui_can_compare_the_variants(client, launch, parent, runs, best)
    assert "Table 15" in text and "| a-seed777 | completed |" in text
    _assert_report_has_bootstrap_cis(client, parent.info.run_id, folder)


def _assert_the_ui_can_compare_the_variants(client: MlflowClient, launch, parent, runs: dict, best) -> None:
    """What the MLflow UI's runs table, compare view, charts and Models tab read."""
    from dtgan.tracking.describe import variant_run_name

    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on the runs table
    assert "model.ablation" not in parent.data.params and "model.fg_classifier" not in parent.data.params
    assert parent.data.params["study.variants"] and parent.data.params["train.total_steps"] == "20"
    note = parent.data.tags["mlflow.note.content"]
    assert (
        "| a | (a) StarGAN v2 baseline" in note
        and f"#/experiments/{experiment.experiment_id}/runs/{best.info.run_id}" in note
    )
    assert "study/variants_table.json" in artifact_paths(client, parent.info.run_id)
    assert "report/report_cells.csv" not in artifact_paths(client, parent.info.run_id)  # one copy per table
    for key, run in runs.items():
        variant = key[0]
        assert run.info.run_name == variant_run_name(variant, 777)
        assert run.data.tags["mlflow.note.content"].startswith(f"({variant})")
        toggles = {
            k: v
            for k, v in run.data.params.items()
            if k in {"model.style_content", "model.fg_classifier", "model.mapping_noise"}
        }
        assert set(toggles.values()) == ({"False"} if variant == "a" else {"True"})
        assert run.data.tags["toggle.mapping_noise"] == ("true" if variant == "g" else "false")
        assert [m.step for m in client.get_metric_history(run.info.run_id, "final/fid_mix")] == [0]
        assert run.data.metrics["final/fid_mix"] == run.data.metrics["eval/fid_mix"]
        assert run.data.tags["evaluated_step"] == "20" and run.data.tags["mlflow.source.git.commit"]
        assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["bench"]
        assert any(
            p.startswith("images/samples~latent+step+20+") for p in artifact_paths(client, run.info.run_id)
        )
    (logged,) = client.search_logged_models([experiment.experiment_id])
    assert logged.source_run_id == best.info.run_id and logged.name == "generator"


def _assert_report_has_bootstrap_cis(client: MlflowClient, parent_run_id: str, folder: Path) -> None:
    """Every FID/KID cell of the parent's report has a numeric CI and every pairwise comparison a verdict."""
    cells = pd.read_parquet(
        client.download_artifacts(parent_run_id, "report/report_cells.parquet", str(folder))
    )
    fidelity = cells[cells["metric"].isin(["fid", "kid"]) & (cells["n"] > 0) & (cells["role"] == "trained")]
    assert {"table15_ablation", "table1_methods_products"} <= set(fidelity["table"])
    assert set(fidelity[fidelity["table"] == "table15_ablation"]["row"]) == {"(a)", "(g)"}
    assert fidelity["ci_missing_reason"].isna().all(), fidelity["ci_missing_reason"].dropna().tolist()
    assert (fidelity["ci_low"] <= fidelity["ci_high"]).all() and fidelity["ci_high"].notna().all()
    fid_mix = fidelity[
        (fidelity["table"] == "table15_ablation") & fidelity["column"].str.startswith("FID mix")
    ]
    assert len(fid_mix) == 2 and (fid_mix["ci_low"] > 0).all()
    comparisons = pd.read_parquet(
        client.download_artifacts(parent_run_id, "report/report_comparisons.parquet", str(folder))
    )
    ablation = comparisons[comparisons["table"] == "table15_ablation"]
    # 3 guidances x FID, KID; one seed per variant: no verdict, with its reason
    assert len(ablation) == 6 and set(ablation["significant"]) == {"n/a"} and ablation["reason"].notna().all()
    assert (ablation["ci_low"] <= ablation["ci_high"]).all()
    markdown = Path(client.download_artifacts(parent_run_id, "report/report.md", str(folder))).read_text()
    assert "CI —" not in markdown and "logged no eval/features" not in markdown


def test_two_trial_search_reports_intermediate_fid_and_samples_the_space(shared_ray, folder):
    from dtgan.search.runner import run_search

    folder, data_path = folder
    config = load_config(
        "search_smoke",
        [
            *tiny_study_overrides(folder, data_path),
            "study.num_samples=2",
            "study.intermediate_fid_every_steps=10",
            "study.intermediate_fid_images_per_cell=4",
            "model.ablation=c",
            f"study.search_space={REPO}/experiments/search/lambdas_small.yaml",
        ],
    )
    launch, rows, text = run_search(config)

    assert len(rows) == 2 and all(r.status in ("completed", "stopped") for r in rows)
    assert any(r.status == "completed" for r in rows)
    client = MlflowClient(launch.tracker.tracking_uri, registry_uri=launch.tracker.tracking_uri)
    parent = client.get_run(launch.parent_run_id)
    assert parent.data.tags["search_objectives"] == "eval/fid_mix:min" and parent.info.status == "FINISHED"
    runs = children(client, launch.parent_run_id)
    assert len(runs) == 2 and all(r.info.status in ("FINISHED", "KILLED") for r in runs)
    sampled = {(r.data.params["loss.lambda_cyc"], r.data.params["loss.lambda_fg"]) for r in runs}
    assert len(sampled) == 2 and all(0.1 <= float(c) <= 10 and 0.1 <= float(f) <= 10 for c, f in sampled)
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "search/fid_mix_intermediate")]
        assert 10 in steps
    trials = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "study/trials.json", str(folder))).read_text()
    )
    assert {t["trial"] for t in trials} == {r.data.tags["trial_key"] for r in runs}
    assert "Sampled parameters:" in text


def test_a_search_cuts_on_the_downstream_probe_it_logs_at_every_rung(shared_ray, folder):
    """study.intermediate_signal=downstream_probe on the real Ray Tune path: at step 10 the trial trains a
    classifier on its checkpoint's synthetic defects, reports the validation error under the probe's key and as the
    downstream objective's stand-in, and logs it to MLflow; the completed trial's objective is the full study's."""
    from dtgan import keys
    from dtgan.search.runner import run_search

    folder, data_path = folder
    objective = "downstream/error_mix_resnet10t_mean"
    config = load_config(
        "search_smoke",
        [
            *tiny_study_overrides(folder, data_path),
            "study.num_samples=1",
            "study.intermediate_fid_every_steps=10",
            "study.intermediate_signal=downstream_probe",
            "study.run_downstream=true",
            f"study.objectives=[{{metric: {objective}, mode: min}}]",
            "model.ablation=c",
            f"study.search_space={REPO}/experiments/search/lambdas_small.yaml",
            "downstream.backbone=resnet10t",
            "downstream.weights=scratch",
            "downstream.img_size=32",
            "downstream.arms=[mix]",
            "downstream.num_seeds=1",
            "downstream.epochs=1",
            "downstream.batch_size=8",
            "downstream.normal_images_per_product=[10]",
            "downstream.synthesis_sources_per_product=10",
        ],
    )
    launch, rows, _ = run_search(config)

    assert [r.status for r in rows] == ["completed"]
    client = MlflowClient(launch.tracker.tracking_uri, registry_uri=launch.tracker.tracking_uri)
    (run,) = children(client, launch.parent_run_id)
    probe = client.get_metric_history(run.info.run_id, keys.SEARCH_INTERMEDIATE_PROBE)
    assert [m.step for m in probe] == [10] and 0.0 <= probe[0].value <= 100.0
    assert objective in run.data.metrics  # the full study at the end
    (result,) = (Path(launch.storage_path) / launch.run_name).glob("trial_*/result.json")
    reports = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    at_rung = next(r for r in reports if r.get("step") == 10 and keys.SEARCH_INTERMEDIATE_PROBE in r)
    assert at_rung[objective] == at_rung[keys.SEARCH_INTERMEDIATE_PROBE] == pytest.approx(probe[0].value)


def test_multi_worker_trial_trains_on_a_torch_trainer_launched_from_the_tune_trial(shared_ray, folder):
    from dtgan.search.runner import run_ablation

    folder, data_path = folder
    config = load_config(
        "smoke",
        [
            *tiny_study_overrides(folder, data_path),
            "study.variants=[b]",
            "distributed.workers=2",
            "study.name=ablation-two-workers",
        ],
    )
    launch, rows, _ = run_ablation(config)

    assert [(r.trial, r.status) for r in rows] == [("b-seed777", "completed")]
    client = MlflowClient(launch.tracker.tracking_uri, registry_uri=launch.tracker.tracking_uri)
    (run,) = children(client, launch.parent_run_id)
    assert run.info.status == "FINISHED" and run.data.params["distributed.workers"] == "2"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/g/latent/total")) == [
        5,
        10,
        15,
        20,
    ]
    assert run.data.metrics["eval/fid_mix"] > 0
    assert (
        launch.storage_path
        and Path(launch.storage_path, launch.run_name, "train", "train-b-seed777").is_dir()
    )
