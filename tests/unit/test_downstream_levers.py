"""The levers of the synthetic defects: the combined Crop&Paste + mix arm, the synthetic share and the quality
filter's selection, on tiny in-memory study data (real: 5 + 2 scratches, 3 + 7 spots over products A and B)."""

import pytest
import torch
from downstream_fixtures import make_study_data
from pydantic import ValidationError

from dtgan import keys
from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream.arms import Cell, build_training_set, synthetic_draws, synthetic_requirements
from dtgan.downstream.power import GAN_ARMS, arm_series
from dtgan.downstream.study import plan_cells
from dtgan.downstream.synthetic_filter import candidates_for, keep_best


@pytest.fixture(scope="module")
def data():
    return make_study_data(normals_per_product=40)


def test_crop_paste_mix_takes_half_from_crop_paste_and_half_from_mix_with_the_same_total(data):
    need = synthetic_requirements(data, [Cell("crop_paste_mix", 20)])
    # scratch deficit 33 -> A 17, B 16; A: mix half 9 (latent 5, reference 4), Crop&Paste 8
    assert need["latent/all/A/scratch"] == 5 and need["reference/all/A/scratch"] == 4
    assert need["crop_paste/all/A/scratch"] == 8
    assert need["latent/all/B/scratch"] == 4 and need["reference/all/B/scratch"] == 4
    assert need["crop_paste/all/B/scratch"] == 8
    assert sum(need.values()) == 33 + 30 == sum(synthetic_requirements(data, [Cell("mix", 20)]).values())
    ts = build_training_set(data, Cell("crop_paste_mix", 20), seed=0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 40, "spot": 40}
    assert ts.num_synthetic == 63 and ts.augment
    # its images are the first ones of the sets the crop_paste and mix arms draw from
    pasted = data.synthetic["crop_paste/all/A/scratch"][:8]
    assert any(torch.equal(pasted, ts.images[i : i + 8]) for i in range(len(ts.images) - 7))


def test_crop_paste_mix_is_a_generator_arm_with_defect_sources(data):
    cfg = DownstreamConfig(arms=("trad_aug", "crop_paste_mix"), defect_sources=("all", "A"))
    assert cfg.synthetic_arms == ("crop_paste_mix",) and cfg.balanced_arms == ("crop_paste_mix",)
    assert [c.label() for c in plan_cells(cfg)] == [
        "trad_aug_n4000",
        "crop_paste_mix_n4000",
        "crop_paste_mix_vA_n4000",
    ]
    draws = synthetic_draws(data, Cell("crop_paste_mix", 20, defect_source="A"))
    assert "reference/A/B/spot" in draws and "crop_paste/all/B/spot" in draws  # references from A only
    assert "crop_paste_mix" in GAN_ARMS  # paired by GAN seed in the power analysis
    payload = {"jobs": [{"cell": {"arm": "crop_paste_mix"}, "seed": 3, "test_error_pct": 30.0}]}
    assert arm_series(payload, "g", 777) == {"g crop_paste_mix": {("777", 3): 30.0}}


def test_crop_paste_mix_metric_key_is_not_read_as_crop_paste():
    key = keys.downstream_key("crop_paste_mix", "resnet10t")
    assert keys.parse_error_key(key) == ("crop_paste_mix", "resnet10t")
    assert keys.parse_error_key(keys.downstream_key("crop_paste", "mixnet_s")) == ("crop_paste", "mixnet_s")


@pytest.mark.parametrize(("share", "scratch", "spot"), [(2.0, 66, 60), (0.5, 16, 15), (1.0, 33, 30)])
def test_synthetic_share_scales_every_deficit(data, share, scratch, spot):
    for arm in ("mix", "crop_paste", "crop_paste_mix"):
        ts = build_training_set(data, Cell(arm, 20), seed=0, share=share)
        # real 7 scratches and 10 spots stay; round(share x deficit) synthetic ones are added
        assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 7 + scratch, "spot": 10 + spot}
        assert ts.num_synthetic == scratch + spot
    need = synthetic_requirements(data, [Cell("mix", 20)], share)
    assert sum(need.values()) == scratch + spot


def test_share_one_is_the_balanced_set_bit_for_bit(data):
    default = build_training_set(data, Cell("mix", 20), seed=0)
    explicit = build_training_set(data, Cell("mix", 20), seed=0, share=1.0)
    assert torch.equal(default.images, explicit.images) and torch.equal(default.index, explicit.index)
    cfg = DownstreamConfig()
    assert (cfg.synthetic_share, cfg.synthetic_filter) == (1.0, "none")


def test_share_beyond_the_prepared_sets_says_to_prepare_again(data):
    from dtgan.errors import DataError

    with pytest.raises(DataError, match="prepare the study data again"):
        build_training_set(data, Cell("latent", 20), seed=0, share=4.0)  # 66 per product, the sets hold 40


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"synthetic_share": 0.0}, "greater than 0"),
        ({"synthetic_filter_keep": 0.0}, "greater than 0"),
        ({"synthetic_filter": "sharpness"}, "none"),
        (
            {"synthetic_filter": "defect_classifier", "arms": ("trad_aug", "crop_paste")},
            "filters the generator",
        ),
        (
            {"synthetic_filter": "defect_classifier", "arms": ("mix",), "synthetic_filter_keep": 1.0},
            "keeps every",
        ),
    ],
)
def test_bad_lever_settings_are_refused_with_what_to_do(settings, message):
    with pytest.raises(ValidationError, match=message):
        DownstreamConfig(**settings)


def test_the_filter_keeps_the_highest_scores_in_rendering_order():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.2, 0.7])
    assert keep_best(scores, 3).tolist() == [1, 3, 5]
    assert keep_best(torch.tensor([0.3, 0.3, 0.3]), 2).tolist() == [0, 1]  # ties: the earlier candidate
    assert candidates_for(52, 0.5) == 104 and candidates_for(52, 0.3) == 174 and candidates_for(5, 1.0) == 5


def test_the_power_analysis_names_arms_by_their_levers():
    def payload(arm, **config):
        return {"config": config, "jobs": [{"cell": {"arm": arm}, "seed": 0, "test_error_pct": 1.0}]}

    assert list(arm_series(payload("mix"), "g", 7)) == ["g mix"]
    assert list(arm_series(payload("mix", synthetic_share=2.0), "g", 7)) == ["g mix share2"]
    assert list(arm_series(payload("crop_paste", synthetic_share=0.5), "g", 7)) == ["crop_paste share0.5"]
    assert list(arm_series(payload("trad_aug", synthetic_share=2.0), "g", 7)) == [
        "trad_aug"
    ]  # no synthetic images
    filtered = dict(synthetic_filter="defect_classifier", synthetic_filter_keep=0.5)
    assert list(arm_series(payload("mix", **filtered), "g", 7)) == ["g mix filter0.5"]
    assert list(arm_series(payload("crop_paste", **filtered), "g", 7)) == [
        "crop_paste"
    ]  # pastes are not filtered
