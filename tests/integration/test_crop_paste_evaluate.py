"""`dtgan evaluate-crop-paste`: Crop&Paste scored on the GAN protocol, logged under a study, a row of its report."""

from __future__ import annotations

import json

from dtgan import keys
from dtgan.cli.main import main
from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.tracking import init_tracking
from dtgan.tracking.report.build import build_report

EVAL_OPTS = [
    *("-o", "evaluation.images_per_product_per_defect=16"),
    *("-o", "evaluation.kid_subset_size_min=4"),
    *("-o", "evaluation.kid_subsets=10"),
    *("-o", "evaluation.disentanglement_num_images=12"),
    *("-o", "evaluation.grid_num_sources=3"),
    *("-o", "evaluation.grid_num_styles=2"),
    *("-o", "evaluation.feature_extractor=dtgan-defect-cnn"),
    *("-o", "evaluation.defect_cnn.min_steps=20"),
    *("-o", "evaluation.defect_cnn.epochs=1"),
]


def test_crop_paste_is_scored_like_a_gan_run_and_reported_beside_them(tmp_path, capsys):
    data = str(tmp_path / "bench.parquet")
    synthesize_benchmark(data, size=32, scale=0.05, seed=0)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = [
        "-o",
        f"tracking.tracking_uri={uri}",
        "-o",
        f"tracking.artifact_root={tmp_path / 'artifacts'}",
    ]
    config = load_config("smoke", [o for o in tracking if o != "-o"])
    tracker = init_tracking(config.tracking, study="ablation-smoke")
    parent = tracker.start_study("ablation-smoke", resume_key="k1").run_id
    out = tmp_path / "cp"
    cache = ["-o", f"evaluation.cache_dir={tmp_path / 'cache'}"]
    argv = [
        "evaluate-crop-paste",
        "-c",
        "smoke",
        "--data",
        data,
        "--out",
        str(out),
        *EVAL_OPTS,
        *cache,
        *tracking,
    ]
    assert main([*argv, "--experiment", "ablation-smoke"]) == 0
    printed = capsys.readouterr().out
    assert "Crop&Paste at 32 px" in printed and f"under study run {parent}" in printed

    report = json.loads((out / "evaluation.json").read_text())
    metrics = report["metrics"]
    products = report["data"]["products"]
    assert {keys.fid_key("mix"), keys.kid_key("mix")} <= set(metrics)
    assert all(keys.fid_key("mix", p) in metrics for p in products)
    assert keys.fid_key("latent") not in metrics  # no guidance: one set, scored under the mix keys
    assert metrics[keys.EVAL_TRANSFER_LOCALITY] > 0.5  # a paste changes few pixels, by construction
    assert (
        report["tags"][keys.TAG_METHOD] == "crop_paste" and (out / "features" / "gen_mix_all.npy").is_file()
    )
    assert (out / "crop_paste.png").is_file()

    table = build_report("ablation-smoke", uri).table("table1_methods_products")
    assert table.rows == ["crop_paste"]
    fid_all = next(c for c in table.columns if c.metric == "fid" and c.scope == "all")
    cell = table.cell("crop_paste", fid_all.key)
    assert (
        cell.mean == metrics[keys.fid_key("mix")] and cell.ci is not None
    )  # features logged: a bootstrap CI


def test_logging_into_a_missing_experiment_stops_before_any_image(tmp_path, capsys):
    tracking = ["-o", f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    init_tracking(load_config("smoke", [tracking[1]]).tracking)  # an empty store
    argv = ["evaluate-crop-paste", "-c", "smoke", "--data", str(tmp_path / "missing.parquet"), *tracking]
    assert main([*argv, "--experiment", "nope"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "mlflow.store" not in line]  # its own log
    assert len(err) == 1 and err[0].startswith("dtgan: error: no experiment 'nope' in sqlite:///")
