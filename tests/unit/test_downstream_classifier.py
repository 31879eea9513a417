"""timm classifier factory: pooled-feature domain head, local or cached pretrained weights, never the hub unasked."""

import os

import pytest
import timm
import torch

from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream import preflight
from dtgan.downstream.classifier import build_classifier
from dtgan.downstream.preflight import check_downstream, weights_source
from dtgan.errors import ConfigError


def tiny(**kw) -> DownstreamConfig:
    return DownstreamConfig(**{"backbone": "resnet10t", "img_size": 32, "weights": "scratch", **kw})


def test_classifier_logits_equal_the_plain_timm_forward():
    torch.manual_seed(0)
    model, source = build_classifier(tiny(), num_classes=3, with_domain_head=True)
    model.eval()
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    plain = model.backbone((x - model.mean) / model.std)
    torch.testing.assert_close(out.logits, plain)
    assert out.domain_logits.shape == (2,)
    assert source == "scratch" and os.environ["HF_HUB_OFFLINE"] == "1"


def test_without_synthetic_data_there_is_no_domain_head():
    model, _ = build_classifier(tiny(), num_classes=3, with_domain_head=False)
    assert model.domain_head is None and model(torch.rand(2, 3, 32, 32)).domain_logits is None


def test_efficientnet_gets_a_three_layer_domain_head():
    cfg = DownstreamConfig(backbone="efficientnet_b0", domain_head_hidden_dim=8)
    assert cfg.resolved_domain_head_layers == 3
    assert tiny().resolved_domain_head_layers == 2


def test_local_pretrained_file_is_loaded(tmp_path):
    torch.manual_seed(1)
    donor = timm.create_model("resnet10t", num_classes=1000)
    path = tmp_path / "resnet10t.pth"
    torch.save(donor.state_dict(), path)
    cfg = tiny(pretrained_paths={"resnet10t": str(path)}, in_chans=1, weights="imagenet")
    model, source = build_classifier(cfg, num_classes=3, with_domain_head=False)
    assert source == f"file:{path}" == weights_source(cfg)
    # layer1 is copied as is; the stem is adapted to one channel by summing over RGB
    torch.testing.assert_close(model.backbone.layer1[0].conv1.weight, donor.layer1[0].conv1.weight)
    stem = donor.conv1[0].weight
    torch.testing.assert_close(model.backbone.conv1[0].weight, stem.sum(dim=1, keepdim=True))
    assert model.backbone.get_classifier().out_features == 3
    assert model(torch.rand(2, 1, 32, 32)).logits.shape == (2, 3)


def test_missing_weights_file_names_the_key(tmp_path):
    cfg = tiny(pretrained_paths={"resnet10t": str(tmp_path / "nope.pth")}, weights="auto")
    with pytest.raises(ConfigError, match=r"downstream.pretrained_paths.resnet10t: .*nope.pth"):
        build_classifier(cfg, num_classes=3, with_domain_head=False)


def test_unknown_backbone_is_a_config_error():
    with pytest.raises(ConfigError, match="downstream.backbone: unknown timm model 'resnet_typo'"):
        build_classifier(DownstreamConfig(backbone="resnet_typo"), num_classes=3, with_domain_head=False)


def test_efficientnet_trains_with_batch_128_and_resnet_with_256_by_default():
    assert DownstreamConfig(backbone="efficientnet_b4").resolved_batch_size == 128
    assert DownstreamConfig(backbone="resnet50").resolved_batch_size == 256
    assert DownstreamConfig(backbone="efficientnet_b4", batch_size=64).resolved_batch_size == 64


def test_imagenet_weights_required_without_any_stop_with_the_fix(monkeypatch):
    monkeypatch.setattr(preflight, "cached_weights", lambda backbone: None)
    cfg = tiny(weights="imagenet")
    with pytest.raises(ConfigError) as err:
        check_downstream(cfg, checkpoint="ckpt.pt")
    message = str(err.value)
    assert (
        message.startswith("downstream.weights=imagenet: no ImageNet weights for resnet10t")
        and "\n" not in message
    )
    assert "downstream.pretrained_paths.resnet10t=FILE" in message and "hub_download=true" in message
    assert weights_source(tiny(weights="auto")) == "scratch"  # auto falls back, and says so in the label
    assert weights_source(tiny(weights="imagenet", hub_download=True)) == "hub"


def test_weights_in_the_timm_cache_are_used_offline(monkeypatch, tmp_path):
    torch.manual_seed(2)
    donor = timm.create_model("resnet10t", num_classes=1000)
    path = tmp_path / "model.pth"
    torch.save(donor.state_dict(), path)
    monkeypatch.setattr(preflight, "cached_weights", lambda backbone: str(path))
    model, source = build_classifier(tiny(weights="imagenet"), num_classes=3, with_domain_head=False)
    assert source == f"cache:{path}"
    torch.testing.assert_close(model.backbone.layer1[0].conv1.weight, donor.layer1[0].conv1.weight)


def test_precheck_names_an_unknown_backbone_before_any_work():
    with pytest.raises(ConfigError, match="downstream.backbone: unknown timm model 'resnet_typo'"):
        check_downstream(DownstreamConfig(backbone="resnet_typo"), checkpoint="ckpt.pt")


def test_scratch_with_a_weights_file_is_refused_at_load():
    with pytest.raises(ValueError, match="weights=scratch but pretrained_paths"):
        tiny(pretrained_paths={"resnet10t": "x.pth"})


class _Planted:
    """Pickled by reference: loading it for real would import and call this class (code in a weights file)."""

    def __reduce__(self):
        return (print, ("ran",))


@pytest.mark.parametrize(
    "content",
    [b"not a weights file", b"PK\x03\x04 truncated zip", "pickle", "other model"],
    ids=["text", "truncated", "planted-object", "another-model"],
)
def test_a_bad_weights_file_is_one_line_without_the_loaders_advice(tmp_path, content):
    path = tmp_path / "resnet10t.pth"
    if content == "pickle":
        torch.save({"conv1.weight": _Planted()}, path)
    elif content == "other model":
        torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), path)
    else:
        path.write_bytes(content)
    cfg = tiny(pretrained_paths={"resnet10t": str(path)}, weights="imagenet")
    with pytest.raises(ConfigError) as err:
        build_classifier(cfg, num_classes=3, with_domain_head=False)
    message = str(err.value)
    assert message.startswith(f"downstream.pretrained_paths.resnet10t: {path} is not loadable")
    assert "\n" not in message and "weights_only" not in message
