"""experiments/confirm_search.py on tiny settings: a candidate and a baseline preset retrained on a fresh seed, the
powered downstream study of each, and the seed-level verdict against trad_aug and Crop&Paste."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from downstream_testdata import tiny_benchmark

from dtgan.data.synth import synthesize_benchmark

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def run_python(args: list[str], env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_confirm_retrains_both_recipes_and_prints_the_verdict(tmp_path):
    data = tiny_benchmark(tmp_path)
    held_out = tmp_path / "held_out.parquet"
    synthesize_benchmark(
        str(held_out), size=32, scale=0.01, seed=1, products=2, threads=1, held_out_per_cell=20
    )
    train = (
        f"base: smoke\ndata: {{path: {data}}}\n"
        "train: {total_steps: 4, checkpoint_every_steps: 2, sample_every_steps: 4, log_every_steps: 2}\n"
    )
    # --evaluate's settings come from the baseline preset alone (one evaluation for every recipe): tiny sets, the
    # offline extractor pre-trained on a tiny corpus in seconds, cached under tmp_path
    evaluation = (
        f"evaluation: {{images_per_product_per_defect: 8, kid_subset_size_min: 4, kid_subsets: 5, "
        f"disentanglement_num_images: 8, grid_num_sources: 2, grid_num_styles: 2, grid_num_references: 2, "
        f"cache_dir: {tmp_path / 'cache'}, defect_cnn: {{min_steps: 10, epochs: 1}}, "
        f"pretrained_cnn: {{images_per_class: 4, epochs: 1, render_sides: [32], widths: [8, 16, 32], "
        f"cache_dir: {tmp_path / 'cache'}}}}}\n"
    )
    (tmp_path / "search_tiny_winner.yaml").write_text(
        train + "loss: {lambda_fg: 2.0, self_rec_final_fraction: 0.5}\n"
    )
    (tmp_path / "paper_tiny.yaml").write_text(train + evaluation)
    (tmp_path / "downstream_tiny.yaml").write_text(
        "base: downstream_cpu_power\n"
        f"downstream: {{held_out_data: {held_out}, epochs: 1, num_seeds: 2, normal_images_per_product: [10], "
        "synthesis_sources_per_product: 10, batch_size: 8}\n"
    )
    out = tmp_path / "confirm"
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "OMP_NUM_THREADS": "1"}
    done = run_python(
        [
            str(REPO / "experiments" / "confirm_search.py"),
            "--candidate",
            str(tmp_path / "search_tiny_winner.yaml"),
            "--baseline",
            str(tmp_path / "paper_tiny.yaml"),
            "--seeds",
            "5",
            "--downstream-preset",
            str(tmp_path / "downstream_tiny.yaml"),
            "--out",
            str(out),
            "--evaluate",
        ],
        env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((out / "confirmation.json").read_text())
    pairs = [(c["a"], c["b"]) for c in result["comparisons"]]
    assert pairs == [
        ("search_tiny_winner mix", "trad_aug"),
        ("search_tiny_winner mix", "crop_paste"),
        ("search_tiny_winner mix", "paper_tiny mix"),
        ("paper_tiny mix", "trad_aug"),
        ("paper_tiny mix", "crop_paste"),
        ("crop_paste", "trad_aug"),
    ]
    assert all(c["pairs"] == 2 for c in result["comparisons"])  # one GAN seed x two classifier seeds
    assert set(result["rows"]["trad_aug"]) == {"-/0", "-/1"}
    # the no-GAN arms were trained once, with the first run; the second run trained the mix arm alone
    second = json.loads((out / "runs" / "paper_tiny-seed5" / "downstream" / "downstream.json").read_text())
    assert {job["cell"]["arm"] for job in second["jobs"]} == {"mix"}
    text = (out / "confirmation.md").read_text()
    assert "The unseen cell(s)" in text and "cast/spot" in text.split("The unseen cell(s)")[1]
    assert "verdict: search_tiny_winner mix - trad_aug:" in done.stdout
    # --evaluate: each run's last checkpoint evaluated with the baseline's settings, the generators side by side
    generators = result["generators"]["variants"]
    assert set(generators) == {"search_tiny_winner", "paper_tiny"}
    for recipe, measured in generators.items():
        assert measured["seeds"] == [5] and measured["final_steps"] == [4]
        evaluation = json.loads(
            (
                out / "runs" / f"{recipe}-seed5" / "evaluation" / "step_00000004" / "evaluation.json"
            ).read_text()
        )
        assert evaluation["evaluation_config"]["images_per_product_per_defect"] == 8
        assert measured["final"]["eval/fid_mix"] == [evaluation["metrics"]["eval/fid_mix"]]
    assert "The generators" in text and "| metric | (search_tiny_winner) final | (paper_tiny) final |" in text
    # resumable: a second call recomputes nothing
    again = run_python(done.args[1:], env, timeout=300)
    assert again.returncode == 0 and "done in" not in again.stdout

    # --baseline-seeds: a second candidate seed, the baseline on the first alone; seed 5's runs are reused
    more = [*done.args[1:]]
    more[more.index("--seeds") + 1] = "5,6"
    more.remove("--evaluate")
    wider = run_python([*more, "--baseline-seeds", "5"], env, timeout=600)
    assert wider.returncode == 0, wider.stdout[-2000:] + wider.stderr[-2000:]
    assert "(baseline [5])" in wider.stdout and "paper_tiny-seed6" not in wider.stdout
    assert not (out / "runs" / "paper_tiny-seed6").exists()
    result = json.loads((out / "confirmation.json").read_text())
    assert result["gan_seeds"] == [5, 6] and result["baseline_gan_seeds"] == [5]
    pairs = {(c["a"], c["b"]): c["pairs"] for c in result["comparisons"]}
    assert pairs[("search_tiny_winner mix", "trad_aug")] == 4  # two GAN seeds x two classifier seeds
    assert pairs[("search_tiny_winner mix", "paper_tiny mix")] == 2  # the shared GAN seed only
    refused = run_python([*more, "--baseline-seeds", "7"], env, timeout=300)
    assert (
        refused.returncode == 2
        and "--baseline-seeds [7]: each must be one of --seeds [5, 6]" in refused.stderr
    )
