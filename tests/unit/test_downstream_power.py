"""The downstream power analysis: paired differences, the seed-level verdict, the detectable difference and the
per-cell errors, against values computed by hand (t quantiles from tables: t(0.975, 2) = 4.302653,
t(0.8, 2) = 1.060660; the t CDF with 2 df is 1/2 + t / (2 sqrt(2 + t^2)))."""

from __future__ import annotations

import math

import pytest
import torch
from downstream_fixtures import make_study_data

from dtgan.data.labelled import LabelledImages
from dtgan.downstream.power import (
    NO_GAN,
    arm_series,
    cell_errors,
    compare,
    markdown,
    merge,
    paired_values,
    seeds_needed,
)
from dtgan.downstream.recipe import cell_counts
from dtgan.downstream.study import named_cells


def _payload(arm_errors: dict[str, dict[int, float]], cells: dict | None = None) -> dict:
    jobs = []
    for arm, by_seed in arm_errors.items():
        for seed, error in by_seed.items():
            jobs.append(
                {
                    "cell": {"arm": arm},
                    "seed": seed,
                    "test_error_pct": error,
                    "test_cells": (cells or {}).get((arm, seed), {}),
                }
            )
    return {"jobs": jobs}


TRAD = {0: 10.0, 1: 12.0, 2: 14.0}
MIX_GAN7 = {0: 9.0, 1: 10.0, 2: 12.0}  # mix - trad: -1, -2, -2
MIX_GAN8 = {0: 11.0, 1: 12.0, 2: 13.0}  # mix - trad: +1, 0, -1


def test_paired_difference_over_classifier_seeds_matches_the_hand_computed_t_test():
    rows = arm_series(_payload({"trad_aug": TRAD, "mix": MIX_GAN7}), "g", 7)
    assert rows["trad_aug"] == {(NO_GAN, 0): 10.0, (NO_GAN, 1): 12.0, (NO_GAN, 2): 14.0}
    assert rows["g mix"] == {("7", 0): 9.0, ("7", 1): 10.0, ("7", 2): 12.0}
    [c] = compare(rows, [("g mix", "trad_aug")])
    assert c.pairs == 3
    assert c.mean_difference == pytest.approx(-5 / 3)
    sd = math.sqrt(1 / 3)  # deviations 2/3, -1/3, -1/3
    assert c.sd_difference == pytest.approx(sd)
    t = (-5 / 3) / (sd / math.sqrt(3))  # = -5
    p = 2 * (0.5 - abs(t) / (2 * math.sqrt(2 + t * t)))
    assert c.test.p_value == pytest.approx(p, rel=1e-6)
    assert c.test.p_adjusted == pytest.approx(p, rel=1e-6)  # one comparison: Holm changes nothing
    assert c.test.significant  # p = 0.0377 < 0.05
    assert c.test.min_detectable == pytest.approx((4.302653 + 1.060660) * sd / math.sqrt(3), rel=1e-5)
    assert c.seeds_for_target == 3  # 1.79 <= 2 at n = 3; at n = 2: (12.706 + 1.376) * 0.577 / 1.414 = 5.75
    assert c.gan_seeds == 1 and c.gan_test is None
    assert c.per_gan == {"7": pytest.approx(-5 / 3)}


def test_two_gan_seeds_pool_the_pairs_and_test_the_gan_means_apart():
    rows = merge(
        [
            arm_series(_payload({"trad_aug": TRAD, "mix": MIX_GAN7}), "g", 7),
            arm_series(_payload({"trad_aug": TRAD, "mix": MIX_GAN8}), "g", 8),
        ]
    )
    a, b = paired_values(rows["g mix"], rows["trad_aug"])
    assert sorted(a) == ["7/0", "7/1", "7/2", "8/0", "8/1", "8/2"]
    assert b["8/2"] == 14.0  # trad_aug's seed-2 run paired with each GAN seed's
    [c] = compare(rows, [("g mix", "trad_aug")])
    assert c.pairs == 6
    assert c.mean_difference == pytest.approx(-5 / 6)
    assert c.per_gan == {"7": pytest.approx(-5 / 3), "8": pytest.approx(0.0)}
    # GAN level: differences of the means -5/3 and 0 -> t = -1 with 1 df, p = 0.5 (Cauchy: sf(1) = 1/4)
    assert c.gan_test.p_value == pytest.approx(0.5, rel=1e-6)
    assert c.gan_test.kind == "paired t"


def test_holm_corrects_over_the_listed_comparisons():
    rows = arm_series(
        _payload({"trad_aug": TRAD, "mix": MIX_GAN7, "crop_paste": {0: 10.0, 1: 13.0, 2: 13.0}}), "g", 7
    )
    first, second = compare(rows, [("g mix", "trad_aug"), ("crop_paste", "trad_aug")])
    p_small, p_large = sorted([first.test.p_value, second.test.p_value])
    adjusted = sorted([first.test.p_adjusted, second.test.p_adjusted])
    assert adjusted == pytest.approx([2 * p_small, max(2 * p_small, p_large)])
    assert second.mean_difference == pytest.approx(0.0)
    assert not second.test.significant


def test_a_no_gan_arm_seen_twice_must_agree():
    with pytest.raises(ValueError, match="trad_aug classifier seed 1"):
        merge(
            [
                arm_series(_payload({"trad_aug": TRAD}), "g", 7),
                arm_series(_payload({"trad_aug": {1: 99.0}}), "g", 8),
            ]
        )


def test_seeds_needed_grows_with_the_spread():
    assert seeds_needed(0.0, 2.0, 0.05) == 2
    assert seeds_needed(math.sqrt(1 / 3), 2.0, 0.05) == 3
    small, large = seeds_needed(2.0, 2.0, 0.05), seeds_needed(4.0, 2.0, 0.05)
    assert small < large
    assert seeds_needed(1000.0, 0.01, 0.05, limit=10) is None


def test_cell_counts_and_names_mark_the_unseen_cell():
    split = LabelledImages(
        torch.zeros(5, 1, 4, 4, dtype=torch.uint8),
        torch.tensor([0, 0, 1, 2, 2]),
        torch.tensor([0, 1, 0, 1, 1]),
    )
    predicted = torch.tensor([0, 1, 1, 2, 0])
    counts = cell_counts(predicted, split)
    assert counts == {"0,0": [1, 0], "0,1": [1, 0], "1,0": [1, 1], "1,2": [2, 1]}
    data = make_study_data(real_defects={(0, 1): 5, (0, 2): 3, (1, 1): 2})  # no real B/spot
    named = named_cells(data, counts)
    assert named["B/spot"] == {"images": 2, "wrong": 1, "error_pct": 50.0, "unseen": True}
    assert named["B/normal"]["unseen"] is False and named["B/normal"]["error_pct"] == 100.0
    assert named["A/scratch"]["unseen"] is False


def test_cell_table_reports_the_unseen_cell_apart():
    cells = {
        ("trad_aug", 0): {"B/spot": {"images": 10, "wrong": 6, "error_pct": 60.0, "unseen": True}},
        ("trad_aug", 1): {"B/spot": {"images": 10, "wrong": 4, "error_pct": 40.0, "unseen": True}},
        ("mix", 0): {
            "B/spot": {"images": 10, "wrong": 2, "error_pct": 20.0, "unseen": True},
            "A/normal": {"images": 10, "wrong": 1, "error_pct": 10.0, "unseen": False},
        },
    }
    payload = _payload({"trad_aug": {0: 30.0, 1: 20.0}, "mix": {0: 15.0}}, cells)
    table = cell_errors([("g", 7, payload), ("g", 8, payload)])
    assert table["trad_aug"]["B/spot"]["errors"] == [60.0, 40.0]  # not repeated for the second GAN run
    assert table["g mix"]["B/spot"]["errors"] == [20.0, 20.0]  # one per GAN run
    rows = arm_series(payload, "g", 7)
    text = markdown(rows, compare(rows, [("g mix", "trad_aug")]), table)
    unseen = text.split("The unseen cell(s)")[1]
    assert "| cell | images | trad_aug | g mix |" in unseen
    assert "| B/spot | 10 | 50.0 ± 14.1 | 20.0 ± 0.0 |" in unseen
    assert "A/normal" not in unseen and "A/normal" in text.split("The unseen cell(s)")[0]
    assert "fewer than 2 shared seed pairs" in text  # one pair: no test


def test_the_benchmark_holds_out_as_many_images_per_cell_as_asked():
    from dtgan.data.synth import plan_benchmark
    from dtgan.errors import DataError

    plan = plan_benchmark(["brushed", "cast", "woven"], 0.05, held_out_per_cell=300)
    assert {(c.val, c.test) for c in plan.values()} == {(90, 210)}  # 3:7 in every cell, the unseen one too
    assert plan[("woven", "spot")].gan_train == 0
    assert (
        plan_benchmark(["brushed"], 0.5)[("brushed", "spot")].test == 17
    )  # default: 50 x 0.5 = 25 -> 8 + 17
    with pytest.raises(DataError, match="--held-out-per-cell 1"):
        plan_benchmark(["brushed"], 0.5, held_out_per_cell=1)
