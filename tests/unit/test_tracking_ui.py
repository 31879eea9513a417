"""What the MLflow UI shows of a study, read back from a real sqlite store the way the UI's REST calls read it:
variant run names and descriptions, resolved toggles, final/ metrics, images, the logged generator, the summary."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from dtgan.config import load_config
from dtgan.config.model import TOGGLES
from dtgan.config.tracking import TrackingConfig
from dtgan.search.driver import runs_table_url
from dtgan.search.ladder import apply_overrides, ladder_trials
from dtgan.tracking import init_tracking
from dtgan.tracking.describe import final_metrics, toggle_tags, variant_description, variant_run_name
from dtgan.tracking.mlflow.fluent import fluent_store
from dtgan.tracking.summary import study_note, variants_table
from dtgan.tracking.trial_rows import TrialRow, TrialStatus


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    tracker = init_tracking(TrackingConfig(), cwd=root)
    return tracker, MlflowClient(tracking_uri=tracker.tracking_uri, registry_uri=tracker.tracking_uri)


def test_variants_name_and_describe_themselves():
    assert variant_run_name("a", 777) == "a=stargan-s777"
    assert variant_run_name("c", 777) == "c=b+fg_cls-s777"
    assert variant_run_name("g", 1) == "g=f+noise-s1"
    assert variant_description("c").startswith("(c) = (b) + FG classifier (model.fg_classifier=true)")
    assert "every DT-GAN toggle off" in variant_description("a")
    assert "full DT-GAN" in variant_description("g", 3) and variant_description("g", 3).endswith("seed 3")


def test_ladder_trials_set_every_toggle_explicitly():
    base = load_config("smoke")
    for spec in ladder_trials(("a", "c", "g"), (777,)):
        config = apply_overrides(base, spec.overrides)
        assert all(isinstance(getattr(config.model, t), bool) for t in TOGGLES), spec
        assert config.model.toggles == config.model.toggles.__class__(
            **{t: getattr(config.model, t) for t in TOGGLES}
        )
        assert spec.run_name == variant_run_name(spec.variant, 777) and spec.description.startswith(
            f"({spec.variant})"
        )
    (c,) = ladder_trials(("c",), (1,))
    assert apply_overrides(base, c.overrides).model.fg_classifier is True
    assert apply_overrides(base, c.overrides).model.bg_classifier is False


def test_final_metrics_rename_the_headline_results_and_drop_the_rest():
    final = final_metrics(
        {
            "eval/fid_mix": 30.0,
            "eval/kid_latent": 0.01,
            "eval/fid_mix_bottle": 40.0,
            "eval/identity_psnr": 20.0,
            "downstream/error_mix_resnet18_mean": 0.1,
            "downstream/error_mix_resnet18_std": 0.01,
            "eval/fid_latent": float("nan"),
            "eval/is_mix": 1.7,
            "eval/ic_lpips_mix": 0.3,
            "eval/ic_lpips_mix_bottle": 0.2,
        }
    )
    assert final == {
        "final/fid_mix": 30.0,
        "final/kid_latent": 0.01,
        "final/error_mix_resnet18": 0.1,
        "final/is_mix": 1.7,
        "final/ic_lpips_mix": 0.3,
    }


def test_trial_run_logs_resolved_toggles_a_name_a_note_and_the_git_commit(store):
    tracker, client = store
    study = tracker.start_study("ui-trial", resume_key="k", params={"study.variants": "c"})
    (spec,) = ladder_trials(("c",), (777,))
    config = apply_overrides(load_config("smoke"), spec.overrides)
    # An untouched config (toggles None) must log resolved values too: the tracker resolves them itself.
    raw = load_config("smoke", ["model.ablation=c"])
    assert raw.model.fg_classifier is None
    for key, cfg in (("c-seed777", config), ("c-raw", raw)):
        trial = tracker.start_trial(
            study.run_id,
            key,
            cfg,
            run_name=spec.run_name,
            description=spec.description,
            provenance={"git_sha": "0123abc", "git_dirty": False},
        )
        run = client.get_run(trial.run_id)
        params = run.data.params
        assert {t: params[f"model.{t}"] for t in TOGGLES} == {
            "style_content": "True",
            "fg_classifier": "True",
            "bg_classifier": "False",
            "separate_decoders": "False",
            "anchor_normal": "False",
            "mapping_noise": "False",
        }
        assert run.info.run_name == "c=b+fg_cls-s777"
        assert run.data.tags["mlflow.note.content"] == spec.description
        assert run.data.tags["mlflow.source.git.commit"] == "0123abc"
        assert {k: run.data.tags[k] for k in toggle_tags(config.model.toggles)} == toggle_tags(
            config.model.toggles
        )
        assert (
            run.data.tags["toggle.fg_classifier"] == "true"
            and run.data.tags["toggle.mapping_noise"] == "false"
        )
    # Reopening a run (resume) keeps its name and note.
    again = tracker.start_trial(
        study.run_id, "c-seed777", config, run_name=spec.run_name, description=spec.description
    )
    assert again.resumed and client.get_run(again.run_id).info.run_name == spec.run_name


def test_sample_grids_become_images_at_their_step(store, tmp_path):
    from PIL import Image

    tracker, client = store
    study = tracker.start_study("ui-images", resume_key="k")
    trial = tracker.start_trial(study.run_id, "a-seed1", {})
    folder = tmp_path / "samples"
    folder.mkdir()
    for step in (10, 20):
        for kind in ("latent", "reference"):
            Image.fromarray(np.full((8, 8, 3), step, dtype=np.uint8)).save(
                folder / f"step_{step:08d}_{kind}.png"
            )
    (folder / "notes.txt").write_text("kept as a plain artifact")
    assert tracker.log_sample_grids(trial.run_id, folder) == 4
    images = {f.path for f in client.list_artifacts(trial.run_id, "images")}
    assert len([p for p in images if p.endswith(".png")]) == 4  # (and a compressed .webp of each)
    # The Images view groups by key and step: MLflow's file names carry both ("/" written as "~").
    assert any(p.startswith("images/samples~latent+step+10+") for p in images), images
    assert {f.path for f in client.list_artifacts(trial.run_id, "samples")} == {"samples/notes.txt"}


def _generator_checkpoint(path):
    """A real (untrained) tiny-variant checkpoint in the documented format."""
    from dtgan.models import build_nets
    from dtgan.training.ema import EMA_NETS

    config = load_config("tiny", ["model.img_size=16", "model.ablation=c"])
    torch.manual_seed(0)
    nets = build_nets(config.model, num_domains=2, num_products=1)
    ema = {name: nets[name].state_dict() for name in EMA_NETS}
    torch.save(
        {
            "format_version": 1,
            "config": config.model_dump(mode="json"),
            "vocab": {"products": ["bottle"], "defects": ["normal", "scratch"]},
            "step": 20,
            "nets_ema": ema,
            "nets": ema,
        },
        path,
    )
    return config


def test_the_best_generator_is_a_logged_model_with_a_schema_that_loads_back(store, tmp_path):
    import mlflow

    tracker, client = store
    study = tracker.start_study("ui-model", resume_key="k")
    trial = tracker.start_trial(study.run_id, "c-seed1", {"model": {"ablation": "c"}})
    tracker.end_run(trial.run_id)
    _generator_checkpoint(tmp_path / "step_00000020.pt")

    registered = tracker.register_generator(trial.run_id, tmp_path / "step_00000020.pt")
    assert registered.name == "ui-model-generator" and registered.version == 1
    run = client.get_run(trial.run_id)
    assert run.info.status == "FINISHED"  # logging the model does not leave the run reopened
    model_id = run.data.tags["logged_model_id"]
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == trial.run_id and logged.name == "generator"
    assert [m.model_id for m in client.search_logged_models([study.experiment_id])] == [model_id]
    version = client.get_model_version("ui-model-generator", "1")
    assert version.status == "READY" and version.source == f"models:/{model_id}"
    assert "ablation (c)" in version.description and version.run_id == trial.run_id
    assert json.loads(client.get_logged_model(model_id).tags["mlflow.modelVersions"]) == [  # the UI's link
        {"name": "ui-model-generator", "version": 1}
    ]

    uri = "models:/ui-model-generator/1"
    with fluent_store(tracker.tracking_uri):
        info = mlflow.models.get_model_info(uri)
        model = mlflow.pyfunc.load_model(uri)
    inputs = info.signature.inputs.to_dict()
    assert [i["name"] for i in inputs] == ["sources", "y_trg", "references"]
    assert inputs[0]["tensor-spec"]["dtype"] == "uint8" and list(inputs[0]["tensor-spec"]["shape"]) == [
        -1,
        3,
        16,
        16,
    ]
    assert {p.name for p in info.signature.params.params} == {"guidance", "seed"}
    assert info.saved_input_example_info is not None
    sources = np.random.default_rng(0).integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    batch = {"sources": sources, "y_trg": np.array([1, 1, 0]), "references": sources[:1]}
    latent = model.predict(batch, params={"guidance": "latent", "seed": 5})
    assert latent.dtype == np.uint8 and latent.shape == (3, 3, 16, 16)
    assert np.array_equal(latent, model.predict(batch, params={"guidance": "latent", "seed": 5}))
    assert not np.array_equal(latent, model.predict(batch, params={"guidance": "latent", "seed": 6}))
    reference = model.predict({**batch, "references": sources}, params={"guidance": "reference"})
    assert reference.shape == (3, 3, 16, 16)

    # One version per run: a resumed study registering again gets it back.
    assert tracker.register_generator(trial.run_id, tmp_path / "step_00000020.pt") == registered


def _rows():
    def row(variant, seed, status, fid, kid, error=None):
        metrics = {"eval/fid_mix": fid, "eval/kid_mix": kid}
        if error is not None:
            metrics["downstream/error_mix_resnet18_mean"] = error
        return TrialRow(
            trial=f"{variant}-seed{seed}",
            trial_id=f"{variant}{seed}",
            variant=variant,
            run_name=variant_run_name(variant, seed),
            status=TrialStatus(status),
            metrics=metrics,
            run_id=f"run-{variant}{seed}",
        )

    return [
        row("a", 1, "completed", 40.0, 0.02, 0.3),
        row("a", 2, "completed", 42.0, 0.04, 0.2),
        row("c", 1, "completed", 30.0, 0.01, 0.1),
        row("c", 2, "failed", 99.0, 0.9),
    ]


def test_variants_table_has_one_row_per_variant_with_toggles_and_report_cis():
    cells = pd.DataFrame(
        [
            {
                "table": "table15_ablation",
                "row": "(a)",
                "column": "FID mix",
                "metric": "fid",
                "ci_low": 38.0,
                "ci_high": 44.0,
            },
            {
                "table": "table15_ablation",
                "row": "(c)",
                "column": "KID mix",
                "metric": "kid",
                "ci_low": 0.005,
                "ci_high": 0.02,
            },
            {
                "table": "table15_ablation",
                "row": "(c)",
                "column": "FID latent",
                "metric": "fid",
                "ci_low": 1.0,
                "ci_high": 2.0,
            },
            {
                "table": "table1_methods_products",
                "row": "c",
                "column": "FID mix",
                "metric": "fid",
                "ci_low": 0.0,
                "ci_high": 1.0,
            },
        ]
    )
    table = variants_table(_rows(), cells)
    assert list(table["variant"]) == ["a", "c"]
    a, c = table.to_dict("records")
    assert a["fid_mix"] == 41.0 and a["fid_mix_ci_low"] == 38.0 and a["fid_mix_ci_high"] == 44.0
    assert (
        a["completed"] == 2 and a["style_content"] is False and a["error_mix_resnet18"] == pytest.approx(0.25)
    )
    assert c["fid_mix"] == 30.0 and c["trials"] == 2 and c["completed"] == 1  # the failed seed is left out
    assert pd.isna(c["fid_mix_ci_low"]) and c["kid_mix_ci_low"] == 0.005  # no CI in the report: empty
    assert c["fg_classifier"] is True and c["bg_classifier"] is False
    assert c["runs"] == "c=b+fg_cls-s1, c=b+fg_cls-s2" and c["description"].startswith(
        "(c) = (b) + FG classifier"
    )


def test_study_note_has_the_table_the_best_run_link_and_the_limits():
    rows = _rows()
    table = variants_table(rows)
    note = study_note(
        kind="ablation",
        study="abl",
        experiment_id="7",
        table=table,
        rows=rows,
        best=rows[2],
        objective="eval/fid_mix",
        seeds=(1, 2),
        total_steps=200,
        fid_extractor="dtgan-defect-cnn",
    )
    assert (
        "3/4 trials completed" in note
        and "| c | (c) = (b) + FG classifier (model.fg_classifier=true) |" in note
    )
    assert "[c=b+fg_cls-s1](#/experiments/7/runs/run-c1) (30)" in note
    assert "What this establishes" in note and "What it does not" in note and "dtgan-defect-cnn" in note
    assert "one seed" not in note
    single = study_note(
        kind="ablation",
        study="abl",
        experiment_id="7",
        table=table,
        rows=rows,
        best=None,
        objective="eval/fid_mix",
        seeds=(1,),
        total_steps=200,
        fid_extractor=None,
    )
    assert "one seed" in single and "none (no completed trial has it)" in single


def test_the_printed_link_opens_the_study_runs_table():
    url = runs_table_url("http://127.0.0.1:5000/", "3", "abc123")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&")
    assert "searchFilter=tags.%60mlflow.parentRunId%60%20%3D%20%27abc123%27" in url


def test_the_study_run_logs_the_study_and_ends_with_its_summary(tmp_path):
    """The driver's side without Ray: the parent run's params, its note, the per-variant table."""
    from dtgan.search.driver import launch_study
    from dtgan.search.runner import LADDER_VARIED, _describe_study

    config = load_config(
        "smoke",
        [
            f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            f"tracking.artifact_root={tmp_path}/mlartifacts",
            f"study.storage_path={tmp_path}/ray_results",
            "study.variants=[a,c]",
            "study.seeds=[1,2]",
        ],
    )
    launch = launch_study(config, "ablation", False, varied=LADDER_VARIED, description="ladder (a, c)")
    client = MlflowClient(launch.tracker.tracking_uri)
    parent = client.get_run(launch.parent_run_id)
    assert not set(LADDER_VARIED) & set(parent.data.params) and parent.data.params["train.total_steps"]
    assert parent.data.tags["mlflow.note.content"] == "ladder (a, c)"
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    _describe_study(launch, _rows(), None)
    note = client.get_run(launch.parent_run_id).data.tags["mlflow.note.content"]
    assert f"[c=b+fg_cls-s1](#/experiments/{experiment.experiment_id}/runs/run-c1)" in note
    # The JSON the UI's table viewer reads (MLflow's table format: columns + data rows).
    logged = json.loads(
        Path(
            client.download_artifacts(launch.parent_run_id, "study/variants_table.json", str(tmp_path))
        ).read_text()
    )
    table = pd.DataFrame(logged["data"], columns=logged["columns"])
    assert list(table["variant"]) == ["a", "c"] and list(table["fid_mix"]) == [41.0, 30.0]
    assert "mlflow.loggedArtifacts" in client.get_run(launch.parent_run_id).data.tags  # listed as a table
