"""The pure parts of the studies: ladder trials, YAML search spaces, Pareto fronts, study config checks, trial
outcomes and rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtgan.config.loader import load_config, nest
from dtgan.config.model import toggles_of_step
from dtgan.errors import ConfigError
from dtgan.search.driver import check_study_config, resolve_run_name
from dtgan.search.ladder import apply_overrides, ladder_trials
from dtgan.search.pareto import pareto_front
from dtgan.search.spaces import load_search_space
from dtgan.search.trial import FinalReport, TrialOutcome
from dtgan.tracking.trial_rows import TrialRow, TrialStatus

REPO = Path(__file__).resolve().parents[2]


def test_ladder_is_variants_times_seeds_with_stable_keys():
    specs = ladder_trials(("a", "g"), (1, 2))
    assert [s.trial_key for s in specs] == ["a-seed1", "a-seed2", "g-seed1", "g-seed2"]


def test_ladder_variant_resets_explicit_toggles_so_the_step_decides():
    base = load_config("smoke", ["model.fg_classifier=true", "model.ablation=c"])
    (spec,) = ladder_trials(("a",), (5,))
    config = apply_overrides(base, spec.overrides, run_name=spec.trial_key)
    assert config.model.toggles == toggles_of_step("a") and config.train.seed == 5
    assert config.train.run_name == "a-seed5"


def test_invalid_trial_config_names_the_key():
    with pytest.raises(ConfigError, match="mapping_noise needs style_content"):
        apply_overrides(load_config("smoke"), {"model": {"ablation": "a", "mapping_noise": True}})


def test_search_space_yaml_is_checked_against_the_schema(tmp_path):
    dims = load_search_space(REPO / "experiments" / "search" / "lambdas.yaml")
    assert (
        dims[0].key == "loss.lambda_sty"
        and dims[0].type == "loguniform"
        and (dims[0].low, dims[0].high) == (0.1, 10)
    )
    assert dims[-1].values == ("d", "e", "f", "g")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss.lambda_cyk: {type: uniform, low: 0, high: 1}\n")
    with pytest.raises(ConfigError, match="'loss.lambda_cyk' is not a config key"):
        load_search_space(bad)
    bad.write_text("loss.lambda_cyc: {type: loguniform, low: 0, high: 1}\n")
    with pytest.raises(ConfigError, match="loguniform needs low > 0"):
        load_search_space(bad)
    bad.write_text(
        "loss.lambda_cyc: {type: uniform, low: 0, high: 1}\nloss.lambda_cyc: {type: uniform, low: 1, high: 2}\n"
    )
    with pytest.raises(
        ConfigError, match="bad.yaml line 2: not valid YAML \\(duplicate key 'loss.lambda_cyc'\\)"
    ):
        load_search_space(bad)


def test_sampled_params_nest_into_a_config_delta():
    assert nest({"loss.lambda_cyc": 2.0, "model.ablation": "f"}) == {
        "loss": {"lambda_cyc": 2.0},
        "model": {"ablation": "f"},
    }


def test_pareto_front_keeps_the_non_dominated_trials():
    points = {
        "t1": (10.0, 0.30),
        "t2": (12.0, 0.20),
        "t3": (11.0, 0.35),
        "t4": (9.0, 0.40),
        "t5": (12.0, 0.25),
    }
    assert pareto_front(points, ["min", "min"]) == ["t4", "t1", "t2"]
    assert pareto_front({"a": (1.0, 5.0), "b": (2.0, 4.0)}, ["max", "min"]) == ["b"]


def test_asha_with_two_objectives_is_refused():
    with pytest.raises(ConfigError, match="scheduler=asha works with one objective only"):
        load_config(
            "smoke",
            ["study.objectives=[{metric: eval/fid_mix}, {metric: downstream/error_mix_resnet10t_mean}]"],
        )


def test_intermediate_fid_must_fall_on_checkpoints():
    config = load_config("smoke", ["study.intermediate_fid_every_steps=30"])
    with pytest.raises(ConfigError, match="multiple of train.checkpoint_every_steps=100"):
        check_study_config(config, early_stopping=True)
    config = load_config(
        "smoke",
        [
            "study.objectives=[{metric: downstream/error_mix_resnet10t_mean}]",
            "study.intermediate_fid_every_steps=100",
        ],
    )
    with pytest.raises(ConfigError, match="estimates eval/fid_mix only"):
        check_study_config(config, early_stopping=True)


def test_resume_picks_the_latest_launch_of_the_study(tmp_path):
    for name in (
        "ablation-smoke-20260101-000000",
        "ablation-smoke-20260102-000000",
        "search-smoke-20270101-000000",
    ):
        (tmp_path / name).mkdir()
    assert resolve_run_name(str(tmp_path), "ablation-smoke", True) == "ablation-smoke-20260102-000000"
    assert resolve_run_name(str(tmp_path), "ablation-smoke", "ablation-smoke-20260101-000000").endswith(
        "0101-000000"
    )
    with pytest.raises(ConfigError, match="no earlier launch of study 'ablation-sdi'"):
        resolve_run_name(str(tmp_path), "ablation-sdi", True)
    assert resolve_run_name(str(tmp_path), "ablation-smoke", False).startswith("ablation-smoke-2")


def test_trial_timeline_keeps_the_first_and_last_two_reports_and_ordered_marks(tmp_path):
    import json

    from dtgan.search.timeline import TIMELINE_FILE, TrialTimeline

    timeline = TrialTimeline()
    for step in range(1, 6):
        timeline.training_report(step, {"train/step_ms": 10.0 * step, "train/g/latent/total": 1.0})
    timeline.mark("trial_end")
    written = json.loads(timeline.write(tmp_path).read_text())

    assert (tmp_path / TIMELINE_FILE).is_file() and not list(tmp_path.glob(".*.tmp"))
    assert written["first_report"]["step"] == 1 and written["first_report"]["step_ms"] == 10.0
    assert [r["step"] for r in written["last_reports"]] == [4, 5]
    marks = written["marks"]
    assert list(marks) == ["trial_start", "trial_end"]
    assert (
        marks["trial_start"]["wall_s"]
        <= marks["trial_end"]["wall_s"]
        <= written["last_reports"][1]["wall_s"] + 1
    )


def test_trial_timeline_phases_mark_start_on_entry_and_end_only_when_the_block_completes():
    from dtgan.search.timeline import TrialTimeline

    timeline = TrialTimeline()
    with timeline.phase("train_start", "train_end"):
        assert list(timeline.marks) == ["trial_start", "train_start"]
    with timeline.phase(end="evaluation_end"):
        pass
    with pytest.raises(RuntimeError), timeline.phase("downstream_start", "downstream_end"):
        raise RuntimeError("boom")
    assert list(timeline.marks) == [
        "trial_start",
        "train_start",
        "train_end",
        "evaluation_end",
        "downstream_start",
    ]
    walls = [m["wall_s"] for m in timeline.marks.values()]
    assert walls == sorted(walls)


def test_trial_timeline_with_a_single_report_uses_it_as_first_and_last():
    from dtgan.search.timeline import TrialTimeline

    timeline = TrialTimeline()
    timeline.training_report(7, {"train/step_ms": 3.0})
    written = timeline.as_dict()
    assert written["first_report"]["step"] == 7 and [r["step"] for r in written["last_reports"]] == [7]


def test_a_trial_outcome_carries_its_key_status_run_and_checkpoint_from_its_results():
    final = FinalReport("trial-old", 20, "run-1", "/store/runs/trial-old/step_20.pt", {"eval/fid_mix": 41.5})
    done = TrialOutcome.from_result(
        {**final.result(), "trial_id": "b2", "date": "today"}, trial_id="b2", planned_key="trial-b2"
    )
    assert (done.trial_key, done.status, done.run_id) == ("trial-old", TrialStatus.COMPLETED, "run-1")
    assert done.checkpoint.endswith("step_20.pt") and done.metrics["eval/fid_mix"] == 41.5
    assert "date" not in done.metrics and "trial_key" not in done.metrics  # numbers only
    stopped = TrialOutcome.from_result(
        {"step": 10, "trial_key": "trial-c3", "search/intermediate_fid": 70.0}, trial_id="c3", planned_key="x"
    )
    assert (stopped.trial_key, stopped.status, stopped.run_id) == ("trial-c3", TrialStatus.STOPPED, None)
    failed = TrialOutcome.from_result({}, trial_id="d4", planned_key="a-seed1", error="ValueError: boom")
    assert (failed.trial_key, failed.status, failed.error) == (
        "a-seed1",
        TrialStatus.FAILED,
        "ValueError: boom",
    )


def test_trial_rows_serialise_as_before():
    row = TrialRow("a-seed1", "x1", TrialStatus.COMPLETED, metrics={"eval/fid_mix": 3.0}, variant="a")
    record = json.loads(json.dumps(row.record()))
    assert record["status"] == "completed" and record["variant"] == "a" and "run_name" not in record
    assert f"{row.status}" == "completed" and row.status == "completed"
