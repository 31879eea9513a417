"""The report's IS / IC-LPIPS table: values beside FID/KID, the LPIPS trunk in the column, "not computed" shown."""

from __future__ import annotations

import pytest

from dtgan.evaluation import keys as eval_keys
from dtgan.tracking.report import ReportConfig
from dtgan.tracking.report import keys as report_keys
from dtgan.tracking.report.build import build_report_from_runs
from dtgan.tracking.report.runs import RunRecord, StudyRuns

NO_WEIGHTS = "not computed: no LPIPS weights at /home/u/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth"


def _run(variant: str, seed: int, is_mix: float, ic: float | None, **tags: str) -> RunRecord:
    metrics = {
        eval_keys.fid_key("mix"): 30.0 + seed,
        eval_keys.fid_key("mix", "A"): 31.0 + seed,
        eval_keys.is_key("mix"): is_mix,
        eval_keys.is_key("mix", "A"): is_mix - 0.1,
    }
    if ic is not None:
        metrics[eval_keys.ic_lpips_key("mix")] = ic
        metrics[eval_keys.ic_lpips_key("mix", "A")] = ic + 0.01
        metrics[eval_keys.ic_lpips_key("mix", "A", "scratch")] = ic + 0.02
    base = {"variant": variant, "seed": str(seed), "fid_extractor": "inception-v3-compat"}
    return RunRecord(f"{variant}{seed}", "FINISHED", {**base, **tags}, {}, metrics)


def _report(runs):
    study = StudyRuns("x", None, tuple(runs), 0)
    return build_report_from_runs(study, lambda run_id, path: None, ReportConfig(bootstrap_samples=10))


def test_report_keys_are_the_evaluators():
    for guidance in eval_keys.GUIDANCES:
        for metric, key in (("is", eval_keys.is_key), ("ic_lpips", eval_keys.ic_lpips_key)):
            assert report_keys.diversity_key(metric, guidance) == key(guidance)
            assert report_keys.parse_diversity_key(key(guidance, "A")) == (metric, guidance, "A")
    assert report_keys.parse_fidelity_key(eval_keys.is_key("mix")) is None  # never read as FID/KID


def test_per_defect_keys_are_not_read_as_a_product_scope():
    """``eval/fid_mix_A.scratch`` (A14's per-defect score) once parsed as product "A.scratch"; the tables pool
    defect types, so per-defect keys are not theirs; products with awkward names still round-trip."""
    for metric, key, parse in (
        ("fid", eval_keys.fid_key, report_keys.parse_fidelity_key),
        ("kid", eval_keys.kid_key, report_keys.parse_fidelity_key),
        ("is", eval_keys.is_key, report_keys.parse_diversity_key),
        ("ic_lpips", eval_keys.ic_lpips_key, report_keys.parse_diversity_key),
    ):
        assert parse(key("mix", "A", "scratch")) is None
        assert parse(key("mix", None, "scratch")) is None
        assert parse(key("mix", "metal plate")) == (metric, "mix", "metal-plate")
        assert parse(key("reference")) == (metric, "reference", report_keys.SCOPE_ALL)


def test_is_and_ic_lpips_cells_with_the_lpips_trunk_in_the_column():
    lpips = {eval_keys.TAG_LPIPS_BACKBONE: "alex/0123456789abcdef", eval_keys.TAG_IC_LPIPS_STATUS: "computed"}
    runs = [
        _run("dt_gan", 0, 1.7, 0.30, **lpips),
        _run("dt_gan", 1, 1.9, 0.32, **lpips),
        _run("stargan", 0, 1.5, 0.20, **lpips),
    ]
    report = _report(runs)
    table = report.table("field_is_ic_lpips")
    assert table.higher_is_better and table.rows == ["dt_gan", "stargan"]
    labels = [c.label for c in table.columns]
    assert labels == [
        "IS mix A [inception-v3-compat]",
        "IS mix [inception-v3-compat]",
        "IC-LPIPS mix A [alex/0123456789abcdef]",
        "IC-LPIPS mix [alex/0123456789abcdef]",
    ]
    is_all = table.cell("dt_gan", "is_mix_all@inception-v3-compat")
    assert is_all.mean == pytest.approx(1.8) and is_all.n == 2
    assert table.cell("stargan", "ic_lpips_mix_all@alex/0123456789abcdef").mean == pytest.approx(0.20)
    markdown = report.markdown()
    assert "Field metrics: IS and IC-LPIPS (mix set; higher is better)" in markdown
    assert "Bold: highest mean" in markdown
    # beside Table 1 (FID/KID per product)
    ids = [t.table_id for t in report.tables]
    assert ids.index("field_is_ic_lpips") == ids.index("table1_methods_products") + 1


def test_not_computed_ic_lpips_shows_its_reason_not_a_number():
    runs = [
        _run("dt_gan", 0, 1.7, None, **{eval_keys.TAG_IC_LPIPS_STATUS: NO_WEIGHTS}),
        _run("dt_gan", 1, 1.8, None, **{eval_keys.TAG_IC_LPIPS_STATUS: NO_WEIGHTS}),
    ]
    report = _report(runs)
    table = report.table("field_is_ic_lpips")
    cell = table.cell("dt_gan", "ic_lpips_mix_all@not computed")
    assert not cell.values and cell.missing_reason == NO_WEIGHTS
    markdown = report.markdown()
    assert "IC-LPIPS mix [not computed]" in markdown and NO_WEIGHTS in markdown
    frame = report.cells()
    row = frame[(frame.table == "field_is_ic_lpips") & (frame.metric == "ic_lpips")].iloc[0]
    assert row["mean"] is None or row["mean"] != row["mean"]  # null
    assert row["missing_reason"] == NO_WEIGHTS


def test_from_mlflow_the_values_and_the_not_computed_reason_reach_the_report(tmp_path):
    from report_store import Store

    from dtgan.tracking.report import build_report

    store = Store(tmp_path)
    experiment = store.experiment("field")
    parent = store.parent(experiment, "field")
    metrics = {
        eval_keys.fid_key("mix"): 30.0,
        eval_keys.is_key("mix"): 1.6,
        eval_keys.ic_lpips_key("mix"): 0.25,
    }
    computed = {
        eval_keys.TAG_LPIPS_BACKBONE: "vgg/fedcba9876543210",
        eval_keys.TAG_IC_LPIPS_STATUS: "computed",
    }
    run = store.child(experiment, parent, "dt_gan", 0, metrics=metrics)
    store.client.set_tag(run, eval_keys.TAG_LPIPS_BACKBONE, computed[eval_keys.TAG_LPIPS_BACKBONE])
    offline = store.child(
        experiment,
        parent,
        "crop_paste",
        0,
        metrics={eval_keys.fid_key("mix"): 40.0, eval_keys.is_key("mix"): 1.4},
    )
    store.client.set_tag(offline, eval_keys.TAG_IC_LPIPS_STATUS, NO_WEIGHTS)
    table = build_report("field", store.uri, config=ReportConfig(bootstrap_samples=10)).table(
        "field_is_ic_lpips"
    )
    assert table.cell("dt_gan", "ic_lpips_mix_all@vgg/fedcba9876543210").mean == pytest.approx(0.25)
    assert table.cell("crop_paste", "ic_lpips_mix_all@not computed").missing_reason == NO_WEIGHTS
    assert table.cell("crop_paste", "is_mix_all@inception-v3").mean == pytest.approx(1.4)
