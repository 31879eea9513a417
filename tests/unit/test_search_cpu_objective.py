"""The CPU search's pieces: the self-reconstruction schedule, the defect-miss signal standing in for a downstream
objective, the winner exported as a preset, Optuna's importances, and their record on an MLflow parent run."""

from __future__ import annotations

import random

import pytest
import torch
from mlflow import MlflowClient

from dtgan import keys
from dtgan.config.loader import load_config
from dtgan.config.loss import LossConfig
from dtgan.errors import ConfigError
from dtgan.search.driver import check_study_config
from dtgan.search.export import best_trial, export_winner, recipe_overrides
from dtgan.search.intermediate import (
    IntermediateDefectMiss,
    IntermediateFID,
    defect_miss_pct,
)
from dtgan.search.signals import final_signal, signal_key, stands_in_for
from dtgan.search.spaces import Dimension, load_search_space
from dtgan.training.schedules import lambda_self_rec

DOWNSTREAM_MIX = "downstream/error_mix_resnet10t_mean"


def test_self_rec_weight_decays_linearly_to_its_final_fraction_then_stays():
    cfg = LossConfig(lambda_self_rec=10.0, self_rec_final_fraction=0.2, ds_decay_steps=100)
    assert lambda_self_rec(0, cfg) == pytest.approx(10.0)
    assert lambda_self_rec(50, cfg) == pytest.approx(6.0)  # 10 * (1 - 0.5 * 0.8)
    assert lambda_self_rec(100, cfg) == pytest.approx(2.0)
    assert lambda_self_rec(500, cfg) == pytest.approx(2.0)
    assert (
        lambda_self_rec(70, LossConfig(lambda_self_rec=10.0, ds_decay_steps=100)) == 10.0
    )  # default: constant


def test_search_cpu_preset_stands_defect_miss_in_for_the_downstream_error():
    config = load_config("search_cpu")
    assert [o.metric for o in config.study.objectives] == [DOWNSTREAM_MIX]
    assert stands_in_for(config) == (DOWNSTREAM_MIX,)
    assert signal_key(config.study) == keys.SEARCH_INTERMEDIATE_DEFECT_MISS
    with pytest.raises(ConfigError, match="downstream.held_out_data /nowhere.parquet does not exist"):
        check_study_config(load_config("search_cpu", ["downstream.held_out_data=/nowhere.parquet"]), True)
    rendered_apart = load_config("search_cpu", ["downstream.held_out_data=null"])  # no data files in a test
    check_study_config(rendered_apart, early_stopping=True)  # accepted: the signal estimates the objective
    space = load_search_space("experiments/search/cpu.yaml")
    assert {"loss.lambda_self_rec", "loss.self_rec_final_fraction", "model.ablation"} <= {
        d.key for d in space
    }
    fid_signal = load_config(
        "search_cpu", ["study.intermediate_signal=fid_mix", "downstream.held_out_data=null"]
    )
    assert stands_in_for(fid_signal) == ()
    with pytest.raises(ConfigError, match="estimates eval/fid_mix only, not the objective"):
        check_study_config(fid_signal, early_stopping=True)
    smoke = load_config("search_smoke")  # the FID-mix search is unchanged
    assert (
        stands_in_for(smoke) == (keys.fid_key("mix"),)
        and signal_key(smoke.study) == keys.SEARCH_INTERMEDIATE_FID
    )
    assert IntermediateFID.key == keys.SEARCH_INTERMEDIATE_FID
    assert IntermediateDefectMiss.key == keys.SEARCH_INTERMEDIATE_DEFECT_MISS


def test_final_signal_is_what_the_full_evaluation_measured():
    config = load_config("search_cpu")
    assert final_signal(config, {keys.defect_recall_key("mix"): 0.35}) == {
        keys.SEARCH_INTERMEDIATE_DEFECT_MISS: pytest.approx(65.0)
    }
    assert final_signal(config, {}) == {}
    smoke = load_config("search_smoke")
    assert final_signal(smoke, {keys.fid_key("mix"): 12.5}) == {keys.SEARCH_INTERMEDIATE_FID: 12.5}


def test_the_downstream_probe_stands_in_for_a_downstream_objective_and_ends_on_it():
    probe = load_config(
        "search_cpu", ["study.intermediate_signal=downstream_probe", "downstream.held_out_data=null"]
    )
    assert signal_key(probe.study) == keys.SEARCH_INTERMEDIATE_PROBE
    assert stands_in_for(probe) == (DOWNSTREAM_MIX,)
    check_study_config(probe, early_stopping=True)  # accepted: it estimates the downstream objective
    # at the last rung the full study has run: the objective itself is the signal
    assert final_signal(probe, {DOWNSTREAM_MIX: 31.5, keys.defect_recall_key("mix"): 0.2}) == {
        keys.SEARCH_INTERMEDIATE_PROBE: 31.5
    }
    assert final_signal(probe, {}) == {}
    fid_objective = load_config("search_smoke", ["study.intermediate_signal=downstream_probe"])
    assert stands_in_for(fid_objective) == ()  # a probe of the classifier does not estimate FID-mix
    with pytest.raises(ConfigError, match="downstream_probe estimates a downstream error only"):
        check_study_config(fid_objective, early_stopping=True)


class _BrightnessJudge:
    """A defect classifier of known behaviour: defect type = 1 if the image mean is below 128, else 2."""

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(1, 2, 3))[:, None]

    def defects(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.where(logits[:, 0] < 128, 1, 2)


class _Sets:
    def __init__(self, images):
        self.images = images


def test_defect_miss_counts_the_mix_images_not_called_their_defect():
    dark, bright = (
        torch.zeros(3, 1, 4, 4, dtype=torch.uint8),
        torch.full((2, 1, 4, 4), 200, dtype=torch.uint8),
    )
    sets = _Sets(
        {
            ("mix", 0, 1): torch.cat([dark, bright]),  # 3 of 5 called defect 1: 2 misses
            ("mix", 1, 2): bright,  # 2 of 2 hits
            ("latent", 0, 1): bright,  # not the mix set: ignored
        }
    )
    assert defect_miss_pct(_BrightnessJudge(), sets) == pytest.approx(100 * 2 / 7)


def _rows():
    return [
        {
            "trial": "trial-a",
            "status": "completed",
            "params": {"loss.lambda_cyc": 2.0},
            "metrics": {"m": 30.0},
        },
        {
            "trial": "trial-b",
            "status": "completed",
            "params": {"loss.lambda_cyc": 0.5},
            "metrics": {"m": 25.0},
            "run_id": "r-b",
        },
        {"trial": "trial-c", "status": "stopped", "params": {"loss.lambda_cyc": 3.0}, "metrics": {"m": 10.0}},
    ]


def test_the_winner_is_exported_as_a_preset_that_loads_with_its_provenance(tmp_path):
    assert best_trial(_rows(), "m")["trial"] == "trial-b"  # a stopped trial's last value is not final
    assert best_trial(_rows(), "m", "max")["trial"] == "trial-a"
    out = tmp_path / "search_cpu_winner.yaml"
    path, best = export_winner(
        _rows(),
        "m",
        "min",
        base="search_cpu",
        out_path=out,
        study="search-cpu",
        launch="search-cpu-20261206",
        parent_run_id="abc123",
        overrides={"train.total_steps": 40},
    )
    text = path.read_text()
    for expected in (
        "# study: search-cpu",
        "# trial: trial-b",
        "# mlflow_parent_run: abc123",
        "m = 25 (min)",
        "# git_sha: ",
        "# exported_utc: ",
    ):
        assert expected in text
    config = load_config(str(path))
    assert config.loss.lambda_cyc == 0.5 and config.train.total_steps == 40
    assert config.loss.lambda_self_rec == load_config("search_cpu").loss.lambda_self_rec  # the rest: the base
    with pytest.raises(ConfigError, match="must contain 'search'"):
        export_winner(_rows(), "m", "min", "search_cpu", tmp_path / "winner.yaml", "s", "l", None)
    with pytest.raises(ConfigError, match="no completed trial"):
        export_winner(_rows(), "other", "min", "search_cpu", out, "s", "l", None)


def test_recipe_overrides_keep_what_the_launch_changed_and_drop_where_it_ran(tmp_path):
    config = load_config(
        "search_cpu", ["train.total_steps=40", f"study.storage_path={tmp_path}", "loss.lambda_fg=2.0"]
    )
    assert recipe_overrides(config, "search_cpu") == {"train.total_steps": 40, "loss.lambda_fg": 2.0}


def test_recipe_overrides_leave_out_the_extractor_the_study_pinned():
    pinned = [  # what dtgan.search.study_extractor.pin_extractor sets on a machine without Inception weights
        "evaluation.feature_extractor=dtgan-pretrained-cnn",
        "evaluation.defect_cnn_weights_path=/root/.cache/dtgan/evaluation/defect_cnn/a.pt",
        "evaluation.pretrained_cnn.weights_path=/root/.cache/dtgan/pretrained_cnn/b.pt",
    ]
    config = load_config("search_cpu", [*pinned, "loss.lambda_fg=2.0"])
    assert load_config("search_cpu").evaluation.feature_extractor == "auto"
    assert recipe_overrides(config, "search_cpu") == {"loss.lambda_fg": 2.0}


def test_fanova_importance_finds_the_parameter_that_drives_the_objective():
    from dtgan.search.ray_tune import param_importances

    space = [
        Dimension("loss.lambda_cyc", "loguniform", 0.3, 3.0),
        Dimension("loss.self_rec_final_fraction", "uniform", 0.0, 1.0),
        Dimension("model.ablation", "choice", values=("e", "f", "g")),
    ]
    rng = random.Random(0)
    trials = []
    for _ in range(16):
        params = {
            "loss.lambda_cyc": rng.uniform(0.3, 3.0),
            "loss.self_rec_final_fraction": rng.random(),
            "model.ablation": rng.choice("efg"),
        }
        trials.append((params, 40.0 - 20.0 * params["loss.self_rec_final_fraction"] + rng.random() * 0.1))
    importances = param_importances(trials, space)
    assert list(importances)[0] == "loss.self_rec_final_fraction"
    assert importances["loss.self_rec_final_fraction"] > 0.8
    assert sum(importances.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=">= 2 completed trials"):
        param_importances(trials[:1], space)


def test_importances_and_confirmation_land_on_the_parent_run(tmp_path):
    from dtgan.tracking import Tracker, search_record

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    tracker.init("search-cpu")
    client = MlflowClient(tracker.tracking_uri)
    run_id = client.create_run(tracker.experiment_id(tracker.experiment_name_for("search-cpu"))).info.run_id
    search_record.log_importances(
        tracker, run_id, {"loss.lambda_fg": 0.7, "model.ablation": 0.3}, DOWNSTREAM_MIX, "Optuna fANOVA"
    )
    search_record.log_pareto(tracker, run_id, [{"trial": "t1", "a": 1.0, "b": 2.0, "params": {"x": 3}}])
    search_record.log_confirmation(tracker, run_id, "| a | b |", "winner mix - trad_aug: -2.00")
    run = client.get_run(run_id)
    assert run.data.metrics["search/importance/loss.lambda_fg"] == pytest.approx(0.7)
    assert run.data.tags[search_record.TAG_IMPORTANCES].startswith("Optuna fANOVA for " + DOWNSTREAM_MIX)
    assert run.data.tags[search_record.TAG_CONFIRMATION] == "winner mix - trad_aug: -2.00"
    stored = {a.path for a in client.list_artifacts(run_id, "study")}
    assert {
        search_record.IMPORTANCES_TABLE,
        search_record.PARETO_TABLE,
        search_record.CONFIRMATION_ARTIFACT,
    } <= stored
    figures = {a.path for a in client.list_artifacts(run_id, search_record.IMPORTANCES_FIGURE_DIR)}
    assert f"{search_record.IMPORTANCES_FIGURE_DIR}/param_importances.png" in figures


def test_g_step_weighs_self_reconstruction_with_the_weight_of_its_step():
    from test_training_step import VOCAB, _batch

    from dtgan.training.environment import Environment
    from dtgan.training.state import build_train_state
    from dtgan.training.steps import g_step

    config = load_config(
        "tiny",
        [
            "train.batch_size=4",
            "loss.lambda_self_rec=10",
            "loss.self_rec_final_fraction=0.2",
            "loss.ds_decay_steps=100",
        ],
    )
    state = build_train_state(config, len(VOCAB.defects), len(VOCAB.products), Environment())
    state.step = 50  # weight 10 * (1 - 0.5 * 0.8) = 6
    terms = g_step(state, _batch(torch.Generator().manual_seed(0), 0), "latent", config)
    weights = {
        "adv": 1.0,
        "sty": config.loss.lambda_sty,
        "con_sty": config.loss.lambda_sty,
        "cyc": config.loss.lambda_cyc,
        "con": config.loss.lambda_con,
        "self_rec": 6.0,
        "fg_cls": config.loss.lambda_fg,
        "bg_cls": config.loss.lambda_bg,
        "ds": -config.loss.lambda_ds * 0.5,
    }
    parts = {k.rsplit("/", 1)[1]: float(v) for k, v in terms.items() if not k.endswith("/total")}
    assert terms_total(terms) == pytest.approx(sum(weights[k] * v for k, v in parts.items()), rel=1e-5)
    assert parts["self_rec"] > 0


def terms_total(terms) -> float:
    return float(next(v for k, v in terms.items() if k.endswith("/total")))
