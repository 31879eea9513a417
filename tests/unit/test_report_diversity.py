"""The report's IS / IC-LPIPS table: values beside FID/KID, the LPIPS trunk in the column, "not computed" shown."""

from __future__ import annotations

import pytest

from dtgan import keys
from dtgan.tracking.report import ReportConfig
from dtgan.tracking.report.build import build_report_from_runs
from dtgan.tracking.report.runs import RunRecord, StudyRuns

NO_WEIGHTS = "not computed: no LPIPS weights at /home/u/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth"


def _run(variant: str, seed: int, is_mix: float, ic: float | None, **tags: str) -> RunRecord:
    metrics = {
        keys.fid_key("mix"): 30.0 + seed,
        keys.fid_key("mix", "A"): 31.0 + seed,
        keys.is_key("mix"): is_mix,
        keys.is_key("mix", "A"): is_mix - 0.1,
    }
    if ic is not None:
        metrics[keys.ic_lpips_key("mix")] = ic
        metrics[keys.ic_lpips_key("mix", "A")] = ic + 0.01
        metrics[keys.ic_lpips_key("mix", "A", "scratch")] = ic + 0.02
    base = {"variant": variant, "seed": str(seed), "fid_extractor": "inception-v3-compat"}
    return RunRecord(f"{variant}{seed}", "FINISHED", {**base, **tags}, {}, metrics)


def _report(runs):
    study = StudyRuns("x", None, tuple(runs), 0)
    return build_report_from_runs(study, lambda run_id, path: None, ReportConfig(bootstrap_samples=10))


def test_is_and_ic_lpips_cells_with_the_lpips_trunk_in_the_column():
    lpips = {keys.TAG_LPIPS_BACKBONE: "alex/0123456789abcdef", keys.TAG_IC_LPIPS_STATUS: "computed"}
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
        _run("dt_gan", 0, 1.7, None, **{keys.TAG_IC_LPIPS_STATUS: NO_WEIGHTS}),
        _run("dt_gan", 1, 1.8, None, **{keys.TAG_IC_LPIPS_STATUS: NO_WEIGHTS}),
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
        keys.fid_key("mix"): 30.0,
        keys.is_key("mix"): 1.6,
        keys.ic_lpips_key("mix"): 0.25,
    }
    computed = {
        keys.TAG_LPIPS_BACKBONE: "vgg/fedcba9876543210",
        keys.TAG_IC_LPIPS_STATUS: "computed",
    }
    run = store.child(experiment, parent, "dt_gan", 0, metrics=metrics)
    store.client.set_tag(run, keys.TAG_LPIPS_BACKBONE, computed[keys.TAG_LPIPS_BACKBONE])
    offline = store.child(
        experiment,
        parent,
        "crop_paste",
        0,
        metrics={keys.fid_key("mix"): 40.0, keys.is_key("mix"): 1.4},
    )
    store.client.set_tag(offline, keys.TAG_IC_LPIPS_STATUS, NO_WEIGHTS)
    table = build_report("field", store.uri, config=ReportConfig(bootstrap_samples=10)).table(
        "field_is_ic_lpips"
    )
    assert table.cell("dt_gan", "ic_lpips_mix_all@vgg/fedcba9876543210").mean == pytest.approx(0.25)
    assert table.cell("crop_paste", "ic_lpips_mix_all@not computed").missing_reason == NO_WEIGHTS
    assert table.cell("crop_paste", "is_mix_all@inception-v3").mean == pytest.approx(1.4)
