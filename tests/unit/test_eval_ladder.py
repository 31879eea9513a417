"""The validity ladder on tiny data: a trained extractor orders the controlled sets as it must, a broken one
(random or constant weights) is flagged, and the verdict reaches the report's metrics and tags."""

from __future__ import annotations

import pytest
import torch
from tiny_eval_data import tiny_data

from dtgan import keys
from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig
from dtgan.evaluation import ladder as ladder_mod
from dtgan.evaluation.defect_cnn import DefectCNN, save_defect_cnn
from dtgan.evaluation.extractors import DEFECT_CNN, ExtractorSpec, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_file
from dtgan.evaluation.fidelity import FeatureExtractor
from dtgan.evaluation.inputs import offline_training_images

CPU = torch.device("cpu")
PRODUCTS = ("A", "B")


def cfg_for(cache_dir, **overrides) -> EvaluationConfig:
    fields = dict(
        cache_dir=str(cache_dir),
        feature_extractor=DEFECT_CNN,
        kid_subset_size_min=4,
        kid_subsets=20,
        ladder_min_images=6,
        defect_cnn=DefectCNNConfig(epochs=6, batch_size=16, min_steps=150),
    )
    fields.update(overrides)
    return EvaluationConfig(**fields)


@pytest.fixture(scope="module")
def tiny():
    return tiny_data()


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    data, _ = tiny
    cfg = cfg_for(tmp_path_factory.mktemp("cache"))
    return cfg, resolve_extractor(cfg, lambda: offline_training_images(data))


def _broken(tmp_path, scale: float) -> ExtractorSpec:
    torch.manual_seed(1)
    net = DefectCNN(6)
    with torch.no_grad():
        for param in net.parameters():
            param.mul_(scale)
    path = tmp_path / "broken.pt"
    save_defect_cnn(net, 6, path, [f"c{i}" for i in range(6)], 0.0)
    return ExtractorSpec(DEFECT_CNN, str(path), fingerprint_file(path))


def test_trained_extractor_passes_the_ladder_in_every_scope(tiny, trained):
    data, bank = tiny
    cfg, spec = trained
    out = ladder_mod.validity_ladder(data, FeatureExtractor(spec, cfg, CPU), cfg, bank)
    assert out["verdict"] == "pass" and out["failing"] == [] and out["message"] is None
    labels = [ladder_mod.scope_label(r) for r in out["scopes"]]
    assert labels == ["all products", "product A", "product B", "A/scratch", "A/spot", "B/scratch", "B/spot"]
    for record in out["scopes"]:
        fid = {name: scores["fid"] for name, scores in record["rungs"].items()}
        assert set(fid) == set(ladder_mod.RUNGS)
        # no rung beats the real other half by more than the sampling tolerance
        assert record["checks"]["fid"]["floor_best"]
        assert fid["paints_nothing"] == max(fid.values())  # normals offered as defects are the farthest
        assert record["checks"]["fid"]["separation"] >= cfg.ladder_min_separation
    metrics, tags = ladder_mod.ladder_metrics(out), ladder_mod.ladder_tag(out)
    assert metrics[keys.EVAL_LADDER_PASS] == 1.0 and metrics[keys.EVAL_LADDER_FAILING_SCOPES] == 0.0
    assert tags == {keys.TAG_LADDER_VERDICT: "pass"}
    assert ladder_mod.ladder_lines(out)[0].startswith("validity ladder passed")


def test_the_ladder_is_cached_per_data_and_extractor(tiny, trained, monkeypatch):
    data, bank = tiny
    cfg, spec = trained
    first = ladder_mod.validity_ladder(data, FeatureExtractor(spec, cfg, CPU), cfg, bank)

    def no_scoring(*args, **kwargs):
        raise AssertionError("a cached ladder is not scored again")

    monkeypatch.setattr(ladder_mod, "_cell_rungs", no_scoring)
    again = ladder_mod.validity_ladder(data, FeatureExtractor(spec, cfg, CPU), cfg, bank)
    assert again["cached"] and again["verdict"] == first["verdict"]
    assert again["scopes"][0]["rungs"]["crop_paste"] == pytest.approx(
        first["scopes"][0]["rungs"]["crop_paste"]
    )
    other = cfg.model_copy(update={"ladder_noise_std": 0.2})
    with pytest.raises(AssertionError, match="not scored again"):
        ladder_mod.validity_ladder(data, FeatureExtractor(spec, other, CPU), other, bank)


def test_random_weights_are_flagged_in_some_scope(tiny, trained, tmp_path):
    data, bank = tiny
    cfg, _ = trained
    out = ladder_mod.validity_ladder(data, FeatureExtractor(_broken(tmp_path, 1.0), cfg, CPU), cfg, bank)
    assert out["failing"], "random features must not pass every scope"
    assert ladder_mod.CANNOT_TELL in out["message"]
    assert ladder_mod.ladder_lines(out)[0].startswith("!!! VALIDITY LADDER FAILED")
    assert ladder_mod.ladder_tag(out)[keys.TAG_LADDER_VERDICT].startswith("fail: ")
    assert ladder_mod.ladder_metrics(out)[keys.EVAL_LADDER_FAILING_SCOPES] == len(out["failing"])


def test_a_blind_extractor_fails_the_data_set(tiny, trained, tmp_path):
    data, bank = tiny
    cfg, _ = trained
    out = ladder_mod.validity_ladder(data, FeatureExtractor(_broken(tmp_path, 0.0), cfg, CPU), cfg, bank)
    assert out["verdict"] == "fail" and len(out["failing"]) == len(out["scopes"])
    assert ladder_mod.ladder_metrics(out)[keys.EVAL_LADDER_PASS] == 0.0
    assert ladder_mod.ladder_fails(out) and ladder_mod.ladder_fails(out, "A", "spot")


def _rungs(**fid) -> dict:
    return {name: {"fid": value, "kid": value} for name, value in fid.items()}


def test_paints_nothing_scoring_better_than_crop_paste_fails():
    """The field's failure: generators that paint nothing scored FID 11-16, pasted real defects 39."""
    checks = ladder_mod.judge(
        _rungs(floor=5.0, crop_paste=39.0, blurred=20.0, noised=9.0, paints_nothing=14.0), 0.5, 0.1
    )
    assert checks["fid"]["verdict"] == "fail" and checks["fid"]["separation"] < 0
    good = ladder_mod.judge(
        _rungs(floor=5.0, crop_paste=9.0, blurred=20.0, noised=9.0, paints_nothing=40.0), 0.5, 0.1
    )
    assert good["fid"] == {
        "floor_best": True,
        "separation": pytest.approx(31 / 35),
        "degradations_seen": {"blurred": True, "noised": True},
        "verdict": "pass",
    }
    beaten = ladder_mod.judge(
        _rungs(floor=10.0, crop_paste=12.0, blurred=20.0, noised=5.0, paints_nothing=40.0), 0.5, 0.1
    )
    assert not beaten["fid"]["floor_best"] and beaten["fid"]["verdict"] == "fail"
    # pasted real defects are real defects: scoring a little below the floor's noisy halves is no failure
    pasted = ladder_mod.judge(
        _rungs(floor=14.0, crop_paste=7.0, blurred=300.0, noised=150.0, paints_nothing=31.0), 0.5, 0.1
    )
    assert pasted["fid"]["floor_best"] and pasted["fid"]["verdict"] == "pass"


def test_small_cells_are_untested_not_passed(tiny, trained):
    data, bank = tiny
    cfg, spec = trained
    strict = cfg.model_copy(update={"ladder_min_images": 13})  # cells have 12 per half, products 24
    out = ladder_mod.validity_ladder(data, FeatureExtractor(spec, strict, CPU), strict, bank)
    verdicts = {ladder_mod.scope_label(r): r["verdict"] for r in out["scopes"]}
    assert verdicts["A/spot"] == "untested" and verdicts["all products"] == "pass"
    assert "A/spot" in out["untested"]


def test_blur_and_noise_change_the_images_and_keep_their_shape():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    blurred = ladder_mod.gaussian_blur(x, 1.5)
    assert blurred.shape == x.shape and blurred.dtype == torch.uint8
    assert blurred.float().std() < x.float().std()  # smoothing lowers the pixel spread
    flat = torch.full((1, 1, 8, 8), 100, dtype=torch.uint8)
    assert torch.equal(ladder_mod.gaussian_blur(flat, 2.0), flat)
    noised = ladder_mod.add_noise(flat, 0.1, seed=0)
    assert torch.equal(noised, ladder_mod.add_noise(flat, 0.1, seed=0))
    assert 15 < (noised.float() - 100).std() < 35


def test_the_ladder_judges_the_mean_of_several_half_splits(tiny, trained, tmp_path):
    data, bank = tiny
    cfg, spec = trained
    one = cfg.model_copy(update={"ladder_splits": 1, "cache_dir": str(tmp_path / "one")})
    three = cfg.model_copy(update={"ladder_splits": 3, "cache_dir": str(tmp_path / "three")})
    single = ladder_mod.validity_ladder(data, FeatureExtractor(spec, one, CPU), one, bank)
    pooled = ladder_mod.validity_ladder(data, FeatureExtractor(spec, three, CPU), three, bank)
    # the cells' real defects split three ways, one of them the single-split ladder's
    cells = ladder_mod._Cells(data, FeatureExtractor(spec, three, CPU), spec, three)
    for splits in cells.splits.values():
        assert len(splits) == 3 and len({tuple(ref.tolist()) for ref, _ in splits}) == 3
        for ref, other in splits:
            assert not set(ref.tolist()) & set(other.tolist()) and len(ref) == len(other)
    for a, b in zip(single["scopes"], pooled["scopes"], strict=True):
        assert (a["splits"], b["splits"]) == (1, 3) and a["n"] == b["n"]
        assert all(r["fid_sd"] == 0.0 == r["kid_sd"] for r in a["rungs"].values())
        assert all(r["kid_sd"] == 0.0 for r in b["rungs"].values())  # KID from the first split only
        assert b["rungs"]["floor"]["fid_sd"] > 0  # another reference half, another floor
        # "paints nothing" is one set scored against three reference halves: its mean is not the single split's
        assert b["rungs"]["paints_nothing"]["fid"] != pytest.approx(a["rungs"]["paints_nothing"]["fid"])
    assert pooled["verdict"] == "pass" and pooled["failing"] == []
