"""The reproduction summary: mean ± sd over seeds from run folders' curve.json / downstream.json, targets met."""

import json

import pytest

from dtgan import keys
from dtgan.errors import DataError
from dtgan.evaluation.reproduction import (
    read_evaluation,
    read_run,
    summarise,
    summary_markdown,
    target_checks,
    write_summary,
)


def _run_dir(tmp_path, name, final, initial, downstream=None):
    run = tmp_path / name
    (run / "evaluation").mkdir(parents=True)
    curve = {
        "run_dir": str(run),
        "tags": {keys.TAG_FID_EXTRACTOR: "dtgan-defect-cnn"},
        "evaluation_config": {},
        "points": [{"step": 0, "metrics": initial}, {"step": 100, "metrics": final}],
    }
    (run / "evaluation" / "curve.json").write_text(json.dumps(curve))
    if downstream is not None:
        (run / "downstream").mkdir()
        (run / "downstream" / "downstream.json").write_text(json.dumps({"metrics": downstream}))
    return run


GOOD = {
    keys.fid_key("mix"): 100.0,
    keys.EVAL_IDENTITY_SSIM: 0.7,
    keys.EVAL_IDENTITY_PSNR: 26.0,
    keys.EVAL_TRANSFER_LOCALITY: 0.6,
    keys.EVAL_TRANSFER_BG_PSNR: 27.0,
    keys.EVAL_PAINT_LOCALITY: 0.6,
    keys.EVAL_PAINT_BG_PSNR: 27.0,
    keys.EVAL_REMOVAL_PSNR: 30.0,
    keys.EVAL_REMOVAL_PSNR_DO_NOTHING: 28.5,
}
INIT = {keys.fid_key("mix"): 1000.0, keys.EVAL_IDENTITY_SSIM: 0.02}


def test_targets_are_checked_against_their_thresholds_and_step_zero(tmp_path):
    record = read_run(_run_dir(tmp_path, "g", GOOD, INIT), "g", 0)
    assert all(target_checks(record).values())
    worse = {**GOOD, keys.fid_key("mix"): 600.0, keys.EVAL_REMOVAL_PSNR: 29.0, keys.EVAL_IDENTITY_PSNR: 24.9}
    checks = target_checks(read_run(_run_dir(tmp_path, "g2", worse, INIT), "g", 1))
    assert not checks["FID-mix <= half of step 0's"]
    assert not checks["removal PSNR >= do-nothing + 1 dB"]  # 29.0 < 28.5 + 1
    assert not checks["identity PSNR >= 25 dB"]
    assert checks["identity SSIM >= 0.6"]


def test_locality_targets_judge_painting_not_reconstruction_error(tmp_path):
    # a painter whose residual spreads the change over the image against the source, but not against its own
    # reconstruction, meets the targets; one that paints everywhere does not
    blurry = {**GOOD, keys.EVAL_TRANSFER_LOCALITY: 0.26, keys.EVAL_TRANSFER_BG_PSNR: 23.0}
    assert all(target_checks(read_run(_run_dir(tmp_path, "b", blurry, INIT), "g", 0)).values())
    spread = {**GOOD, keys.EVAL_PAINT_LOCALITY: 0.2, keys.EVAL_PAINT_BG_PSNR: 20.0}
    checks = target_checks(read_run(_run_dir(tmp_path, "s", spread, INIT), "g", 1))
    assert not checks["paint locality >= 0.5"] and not checks["paint background PSNR >= 25 dB"]


def test_summary_gives_mean_and_sd_over_seeds_and_counts_targets(tmp_path):
    records = [
        read_run(
            _run_dir(
                tmp_path,
                f"g{s}",
                {**GOOD, keys.EVAL_IDENTITY_SSIM: v},
                INIT,
                {"downstream/error_mix_resnet10t_mean": e},
            ),
            "g",
            s,
        )
        for s, v, e in [(0, 0.5, 30.0), (1, 0.7, 34.0)]
    ]
    records.append(read_run(_run_dir(tmp_path, "a0", GOOD, INIT), "a", 0))
    summary = summarise(records)
    g = summary["variants"]["g"]
    assert g["seeds"] == [0, 1]
    assert g["final"][keys.EVAL_IDENTITY_SSIM] == [0.5, 0.7]
    assert g["targets_met"]["identity SSIM >= 0.6"] == 1
    text = summary_markdown(summary)
    assert "| identity_ssim | 0.6 ± 0.14 |" in text  # mean 0.6, sample sd 0.141
    assert "error_mix_resnet10t_mean (%) | 32 ± 2.8 | – |" in text
    assert "1 of 2 seeds" in text and "(a) final" in text
    paths = write_summary(records, tmp_path / "out")
    assert paths["curves"].stat().st_size > 1000
    assert json.loads(paths["json"].read_text())["variants"]["a"]["seeds"] == [0]
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_a_run_without_a_curve_is_refused_with_the_command_to_make_it(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(
        DataError, match=r"no learning curve; run `dtgan evaluate .*run --all-checkpoints` first"
    ):
        read_run(tmp_path / "run", "g", 0)


def _evaluated_run(tmp_path, name, step, metrics, downstream=None, verdict="pass"):
    """A run folder as `dtgan evaluate RUN` leaves it: one checkpoint's evaluation.json (and a downstream.json)."""
    run = tmp_path / name
    folder = run / "evaluation" / f"step_{step:08d}"
    folder.mkdir(parents=True)
    tags = {
        keys.TAG_FID_EXTRACTOR: "dtgan-pretrained-cnn",
        keys.TAG_FID_WEIGHTS: "4b6b",
        keys.TAG_LADDER_VERDICT: verdict,
    }
    (folder / "evaluation.json").write_text(
        json.dumps({"metrics": {**metrics, "eval/note": "text"}, "tags": tags})
    )
    if downstream is not None:
        (run / "downstream").mkdir()
        (run / "downstream" / "downstream.json").write_text(json.dumps({"metrics": downstream}))
    return run


def test_runs_evaluated_at_their_last_step_only_give_a_table_without_step_zero(tmp_path):
    # a confirmation's GAN seeds: one evaluation each (no curve), recipes side by side with their downstream error
    recall = keys.defect_recall_key("mix")
    records = [
        read_evaluation(
            _evaluated_run(
                tmp_path,
                f"{recipe}-seed{seed}",
                1500,
                {**GOOD, keys.fid_key("mix"): fid, recall: 0.5},
                {"downstream/error_mix_resnet10t_mean": error},
            ),
            recipe,
            seed,
            1500,
        )
        for recipe, seed, fid, error in [
            ("w", 101, 1600.0, 35.8),
            ("w", 102, 5000.0, 35.6),
            ("p", 101, 1900.0, 37.1),
        ]
    ]
    assert records[0].final_step == 1500 and records[0].initial is None
    summary = summarise(records)
    assert summary["extractors"] == ["dtgan-pretrained-cnn@4b6b (validity ladder: pass)"]
    assert summary["variants"]["w"]["final"][keys.fid_key("mix")] == [1600.0, 5000.0]
    # the FID target needs step 0: not counted, not printed, rather than "0 of 2 seeds"
    assert "FID-mix <= half of step 0's" not in summary["variants"]["w"]["targets_met"]
    assert summary["variants"]["w"]["targets_met"]["identity SSIM >= 0.6"] == 2
    text = summary_markdown(summary)
    assert "step 0" not in text
    assert "| metric | (w) final | (p) final |" in text
    assert "| fid_mix | 3.3e+03 ± 2.4e+03 | 1.9e+03 |" in text
    assert "| defect_recall_mix | 0.5 ± 0 | 0.5 |" in text
    assert "| error_mix_resnet10t_mean (%) | 35.7 ± 0.14 | 37.1 |" in text


def test_a_run_without_that_evaluation_is_refused_with_the_command_to_make_it(tmp_path):
    _evaluated_run(tmp_path, "run", 500, GOOD)
    with pytest.raises(DataError, match=r"no evaluation of step 1500; run `dtgan evaluate .*run` first"):
        read_evaluation(tmp_path / "run", "g", 0, 1500)
