"""The report marks no winner in a column whose scope failed the validity ladder, and says why."""

from __future__ import annotations

import pytest
from report_store import Store

from dtgan import keys
from dtgan.tracking.report import ReportConfig, build_report

CONFIG = ReportConfig(bootstrap_samples=50, bootstrap_seed=0)
FID_MIX = {"a": [37.0, 37.7, 38.4], "c": [27.0, 28.0, 27.5]}
COLUMN = "fid_mix_all@inception-v3"


def _study(store: Store, name: str, failing: str | None) -> None:
    experiment = store.experiment(name)
    parent = store.parent(experiment, name)
    for variant, values in FID_MIX.items():
        for seed, fid in enumerate(values):
            tags = {}
            if failing is not None and variant == "c" and seed == 0:
                tags = {keys.TAG_LADDER_FAILING: failing, keys.TAG_LADDER_VERDICT: "fail: ..."}
            metrics = {"eval/fid_mix": fid, keys.EVAL_DEFECT_CLASSIFIER_ACCURACY: 0.375}
            metrics[keys.EVAL_DEFECT_CLASSIFIER_TRAIN_ACCURACY] = 0.598
            run_id = store.child(experiment, parent, variant, seed, metrics=metrics)
            for key, value in tags.items():
                store.client.set_tag(run_id, key, value)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("mlflow"))
    _study(store, "passes", None)
    _study(store, "fails_all", "all")
    _study(store, "fails_a_product", "A,A.scratch")
    return store


def test_a_passing_ladder_keeps_the_winner(store):
    table = build_report("passes", store.uri, config=CONFIG).table("table15_ablation")
    assert table.cell("(c)", COLUMN).best
    assert not any(keys.LADDER_CANNOT_TELL in note for note in table.notes)


def test_a_failing_ladder_marks_no_winner_and_says_why(store):
    report = build_report("fails_all", store.uri, config=CONFIG)
    table = report.table("table15_ablation")
    assert not any(table.cell(r, COLUMN).best for r in table.rows)
    assert any(keys.LADDER_CANNOT_TELL in note and "FID mix" in note for note in table.notes)
    assert keys.LADDER_CANNOT_TELL in report.markdown()


def test_the_defect_classifiers_quality_is_a_note(store):
    report = build_report("passes", store.uri, config=CONFIG)
    note = "defect classifier of the runs measured with inception-v3: held-out accuracy 0.375, train accuracy 0.598"
    assert note in report.table("table15_ablation").notes and note in report.markdown()


def test_a_failing_product_leaves_the_all_products_column_alone(store):
    table = build_report("fails_a_product", store.uri, config=CONFIG).table("table15_ablation")
    assert table.cell("(c)", COLUMN).best


def test_ladder_scopes_round_trip():
    scopes = [keys.ladder_scope(), keys.ladder_scope("bottle x"), keys.ladder_scope("A", "big scratch")]
    assert scopes == ["all", "bottle-x", "A.big-scratch"]
    assert keys.parse_ladder_failing(",".join(scopes)) == set(scopes)
    assert keys.parse_ladder_failing(None) == set() and keys.parse_ladder_failing("") == set()
