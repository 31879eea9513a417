"""`dtgan evaluate` end to end on the embedded benchmark (32 px, a 2-step run, the offline extractor): the validity
ladder, the defect classifier's quality, defect recall and paint locality reach evaluation.json, the metrics and
tags the studies log to MLflow, and the terminal."""

from __future__ import annotations

import json

import pytest
from evaluate_cli_testdata import two_step_run

from dtgan import keys
from dtgan.cli.main import main

pytestmark = pytest.mark.slow

OPTS = [
    "-o",
    "evaluation.images_per_product_per_defect=16",
    "-o",
    "evaluation.kid_subset_size_min=4",
    "-o",
    "evaluation.kid_subsets=10",
    "-o",
    "evaluation.disentanglement_num_images=8",
    "-o",
    "evaluation.grid_num_sources=2",
    "-o",
    "evaluation.grid_num_styles=1",
    "-o",
    "evaluation.grid_num_references=1",
    "-o",
    "evaluation.defect_cnn.min_steps=20",
    "-o",
    "evaluation.defect_cnn.epochs=1",
    "-o",
    "evaluation.ladder_min_images=4",
    # the default FID extractor, dtgan-pretrained-cnn, on a tiny corpus: seconds to pre-train (cache_dir per test)
    "-o",
    "evaluation.pretrained_cnn.images_per_class=8",
    "-o",
    "evaluation.pretrained_cnn.epochs=1",
    "-o",
    "evaluation.pretrained_cnn.render_sides=[32]",
    "-o",
    "evaluation.pretrained_cnn.widths=[8,16,32]",
]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline_checks")
    run_dir = two_step_run(root)[1].run_dir
    cache = [
        *("-o", f"evaluation.cache_dir={root / 'cache'}"),
        *("-o", f"evaluation.pretrained_cnn.cache_dir={root / 'pretrained'}"),
    ]
    return root, run_dir, cache


def test_evaluation_records_the_ladder_quality_recall_and_paint_locality(evaluated, capsys):
    _, run_dir, cache = evaluated
    assert main(["evaluate", str(run_dir), *OPTS, *cache]) == 0
    out = capsys.readouterr().out
    report = json.loads((run_dir / "evaluation" / "step_00000002" / "evaluation.json").read_text())
    ladder = report["validity_ladder"]
    assert ladder["verdict"] in ("pass", "fail") and ladder["scopes"][0]["product"] == "all"
    assert set(ladder["scopes"][0]["rungs"]) == {"floor", "crop_paste", "blurred", "noised", "paints_nothing"}
    metrics, tags = report["metrics"], report["tags"]
    assert metrics[keys.EVAL_LADDER_PASS] == (1.0 if ladder["verdict"] == "pass" else 0.0)
    assert metrics[keys.EVAL_LADDER_FAILING_SCOPES] == len(ladder["failing"])
    if ladder["failing"]:
        assert tags[keys.TAG_LADDER_VERDICT].startswith("fail: ") and "!!! VALIDITY LADDER FAILED" in out
    else:
        assert tags[keys.TAG_LADDER_VERDICT] == "pass" and "validity ladder passed" in out
    quality = report["defect_classifier"]
    assert quality["left_out_classes"] == ["woven/spot"]  # no gan_train image of it at this scale
    assert quality["classes_in_head"] == 8 and quality["holdout_split"] == "val"
    assert quality["corpus"]["fingerprint"] == report["data"]["reference_fingerprint"]
    assert 0.0 <= metrics[keys.EVAL_DEFECT_CLASSIFIER_ACCURACY] <= 1.0
    assert "defect classifier dtgan-defect-cnn@" in out and "not in its head: woven/spot" in out
    # the FID extractor is the pretrained network, and what it was trained on is printed and recorded
    extractor = report["feature_extractor"]
    assert extractor["extractor"] == "dtgan-pretrained-cnn" and extractor["pretrained"]["corpus_images"] > 0
    assert (
        f"dtgan-pretrained-cnn@{extractor['weights_fingerprint']}: pre-trained on the procedural corpus"
        in out
    )
    for guidance in keys.GUIDANCES:
        assert 0.0 <= metrics[keys.defect_recall_key(guidance)] <= 1.0
        assert keys.defect_recall_key(guidance, "woven", "spot") in metrics
    assert {keys.EVAL_DEFECT_RECALL_CEILING, keys.EVAL_DEFECT_RECALL_FLOOR} <= set(metrics)
    assert "defect recall" in out
    transfer = report["disentanglement"]["transfer"]
    assert 0.0 < transfer[keys.EVAL_PAINT_LOCALITY] <= 1.0 and keys.EVAL_PAINT_BG_PSNR in metrics


def test_a_second_evaluation_reads_the_ladder_back(evaluated):
    root, run_dir, cache = evaluated
    out_dir = root / "again"
    assert main(["evaluate", str(run_dir), *OPTS, *cache, "--out", str(out_dir)]) == 0
    again = json.loads((out_dir / "evaluation.json").read_text())["validity_ladder"]
    first = json.loads((run_dir / "evaluation" / "step_00000002" / "evaluation.json").read_text())
    assert again["cached"] is True and first["validity_ladder"]["cached"] is False
    assert again["verdict"] == first["validity_ladder"]["verdict"]
    assert len(list((root / "cache" / "ladder").glob("ladder-*.json"))) == 1


def test_the_ladder_and_recall_can_be_switched_off(evaluated):
    root, run_dir, cache = evaluated
    out_dir = root / "off"
    off = ["-o", "evaluation.ladder=false", "-o", "evaluation.defect_recall=false"]
    assert main(["evaluate", str(run_dir), *OPTS, *cache, *off, "--out", str(out_dir)]) == 0
    report = json.loads((out_dir / "evaluation.json").read_text())
    assert report["validity_ladder"] is None and report["defect_recall"] is None
    assert not any("ladder" in k or "defect_recall" in k for k in report["metrics"])
