"""A resumed search rebuilds its searcher from dtgan's JSON records, never from Tune's pickles.

Each search trial records its sampled point (``runs/<trial key>/search_point.json``) before it trains; on
``--resume`` the driver reads them back and Optuna proposes those points first, and a trial whose point is a
recorded one takes that trial's key (and so its MLflow run and checkpoints).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtgan.config.loader import load_config
from dtgan.errors import ConfigError
from dtgan.search import ray_tune
from dtgan.search.search_points import (
    SEARCH_POINT_FILE,
    canonical_point,
    earlier_search_points,
    record_search_point,
)
from dtgan.search.spaces import load_search_space
from dtgan.search.trial import TrialContext

REPO = Path(__file__).resolve().parents[2]


def _context(runs: Path, earlier=()) -> TrialContext:
    return TrialContext(
        tracker=None,
        parent_run_id="p",
        study="search-smoke",
        runs_dir=str(runs),
        intermediate_fid_every_steps=None,
        intermediate_fid_images_per_cell=2,
        git_state={},
        earlier_points=tuple((k, canonical_point(p)) for k, p in earlier),
    )


def test_points_recorded_by_trials_come_back_oldest_first_and_keep_their_keys(tmp_path, monkeypatch):
    runs = tmp_path / "launch" / "runs"
    clock = iter([100.0, 50.0])
    monkeypatch.setattr("dtgan.search.search_points.time.time", lambda: next(clock))
    first = {"loss.lambda_ds": 0.31, "model.ablation": "g"}
    second = {"loss.lambda_ds": 2.5, "model.ablation": "e"}
    record_search_point(str(runs), "trial-b", first)
    record_search_point(str(runs), "trial-a", second)
    record_search_point(str(runs), "trial-a", first)  # once recorded, a trial's point never changes
    (runs / "a-seed777").mkdir()  # a folder without a record (not a search trial) is passed over

    earlier = earlier_search_points(str(runs))
    assert earlier == [("trial-a", second), ("trial-b", first)]
    ctx = _context(runs, earlier)
    assert ctx.earlier_trial_key({"model.ablation": "g", "loss.lambda_ds": 0.31}) == "trial-b"  # key order
    assert ctx.earlier_trial_key({"loss.lambda_ds": 0.3100001, "model.ablation": "g"}) is None


def test_a_record_that_is_not_ours_is_one_line_naming_it(tmp_path):
    runs = tmp_path / "runs"
    (runs / "trial-x").mkdir(parents=True)
    (runs / "trial-x" / SEARCH_POINT_FILE).write_bytes(b"\x80\x04pickled?")
    with pytest.raises(ConfigError, match=r"trial-x/search_point.json: not a search point record") as err:
        earlier_search_points(str(runs))
    assert "\n" not in str(err.value)
    (runs / "trial-x" / SEARCH_POINT_FILE).write_text(
        json.dumps({"trial_key": "trial-y", "point": {}, "recorded_unix": 1})
    )
    with pytest.raises(ConfigError, match="does not match its folder"):
        earlier_search_points(str(runs))


def test_optuna_proposes_the_earlier_points_first(tmp_path):
    config = load_config(
        "search_smoke",
        [f"study.search_space={REPO / 'experiments/search/lambdas.yaml'}", "study.max_concurrent_trials=3"],
    )
    space = load_search_space(config.study.search_space)
    earlier = [
        {d.key: (d.values[-1] if d.type == "choice" else d.low * 1.5) for d in space},
        {d.key: (d.values[0] if d.type == "choice" else d.high / 2) for d in space},
    ]
    searcher = ray_tune._searcher(config.study, space, earlier)
    param_space = {"search": {d.key: ray_tune.tune_distribution(d) for d in space}}
    assert searcher.set_search_properties(None, None, param_space)
    proposed = [searcher.suggest(f"t{i}")["search"] for i in range(3)]
    assert proposed[:2] == earlier  # exactly, so the trials find their records by value
    assert proposed[2] not in earlier  # then TPE samples anew
