"""Helpers that were written twice with small differences and are now one: each keeps what both
callers relied on."""

from __future__ import annotations

import json

import pytest
import torch

from dtgan.errors import ConfigError, error_line
from dtgan.training.environment import resolve_device


def test_error_line_is_the_first_line_or_for_wrapping_errors_the_last():
    error = RuntimeError("loss_g is nan at step 120\nTraceback (most recent call last):\n  File ...")
    assert error_line(error) == "RuntimeError: loss_g is nan at step 120"
    # Ray's errors carry the remote traceback in the message and end with the cause.
    wrapped = RuntimeError("ray::ImplicitFunc.train() (pid=1)\n  File x.py, line 3\nValueError: boom\n")
    assert error_line(wrapped, last=True) == "RuntimeError: ValueError: boom"
    assert error_line("  worker died \n more") == "worker died" and error_line("") == "unknown error"
    long = error_line(ValueError("x" * 600))
    assert len(long) == 500 and long.endswith("...") and "\n" not in long


def test_one_device_rule_for_every_section(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "downstream.device") == torch.device("cpu")
    with pytest.raises(
        ConfigError, match=r"^evaluation.device=cuda but no CUDA device is visible; use evaluation"
    ):
        resolve_device("cuda", "evaluation.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") == resolve_device("cuda")


@pytest.mark.parametrize("flag", ["-c", "--config", "--preset"])
def test_study_scripts_take_the_preset_like_the_cli(flag):
    from dtgan.search.driver import study_arguments

    parser = study_arguments("a study", "smoke")
    assert parser.parse_args([]).config == "smoke"
    args = parser.parse_args([flag, "tiny", "-o", "train.seed=3"])
    assert args.config == "tiny" and args.override == ["train.seed=3"]


class _FakeRay:
    def __init__(self, initialized=False):
        self.initialized, self.calls = initialized, []

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture()
def fake_ray(monkeypatch):
    import sys
    import types

    fake = _FakeRay()
    module = types.SimpleNamespace(is_initialized=fake.is_initialized, init=fake.init)
    monkeypatch.setitem(sys.modules, "ray", module)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a user's opt-out: not for the private local Ray
    return fake


def test_one_ray_connection_policy_for_studies_and_distributed_training(fake_ray, monkeypatch):
    import os

    from dtgan.training import ray_train

    assert ray_train.connect_ray(num_cpus=2, resources={"TRAIN_DRIVER": 4}, temp_dir="/tmp/x") is True
    ray_train.ensure_ray(workers=64, cpus_per_worker=1.5)  # more than this machine: a local Ray that large
    local, train = fake_ray.calls
    # Its gRPC servers listen on every interface (Ray has no loopback-only option): no opt-out of Ray's
    # token default for a new local cluster (test_studies.py checks the real one has it on).
    assert "RAY_AUTH_MODE" not in os.environ
    shipped = {"py_modules": [str(ray_train.dtgan_package_dir())], "excludes": ["__pycache__", "*.pyc"]}
    # a private local Ray (never one `ray start` left running), dashboard on, dtgan shipped to the workers
    common = {
        "address": "local",
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "runtime_env": shipped,
    }
    assert local == {**common, "num_cpus": 2, "resources": {"TRAIN_DRIVER": 4}, "_temp_dir": "/tmp/x"} | {
        "log_to_driver": True
    }
    assert train["num_cpus"] == max(os.cpu_count() or 1, 96) and train["address"] == "local"
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    ray_train.ensure_ray(workers=2, cpus_per_worker=1.0)
    assert fake_ray.calls[-1] == {
        "address": "http://head:8265",
        "runtime_env": shipped,
        "log_to_driver": True,
    }
    fake_ray.initialized = True
    assert ray_train.connect_ray(address="ray://elsewhere:10001") is False and len(fake_ray.calls) == 3


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from dtgan.data.synth import synthesize_benchmark

    path = str(tmp_path_factory.mktemp("labelled") / "bench.parquet")
    synthesize_benchmark(path, size=32, scale=0.02, seed=0)
    return path


def test_one_labelled_container_for_evaluation_and_the_classifier_study(bench):
    from dtgan.data.dataset import DefectImageDataset
    from dtgan.data.labelled import LabelledImages
    from dtgan.evaluation.extractors import ClassLabelledImages

    ds = DefectImageDataset(bench, splits=("gan_train",), img_size=32)
    rows = ds.labelled()  # what the evaluation's references were: images_uint8, y, p and the ids as str
    assert rows.images is ds.images_uint8 and rows.y is ds.y and rows.p is ds.p
    assert rows.ids == tuple(ds.ids) and len(rows) == len(ds)
    normal = rows.where(rows.y == 0)  # the evaluation's sources: the old select(nonzero(y == 0).flatten())
    index = torch.nonzero(ds.y == 0).flatten()
    assert torch.equal(normal.images, ds.images_uint8[index]) and torch.equal(normal.p, ds.p[index])
    assert normal.ids == tuple(ds.ids[i] for i in index.tolist())
    # the classifier study's files keep images, y and p only (format 1), and read back equal
    study_rows = LabelledImages(ds.images_uint8[:, :1].contiguous(), ds.y, ds.p)
    assert set(study_rows.to_dict()) == {"images", "y", "p"}
    back = LabelledImages.from_dict(study_rows.to_dict())
    assert (
        back.ids is None
        and torch.equal(back.images, study_rows.images)
        and len(LabelledImages.empty_like(back)) == 0
    )
    with pytest.raises(ValueError, match=r"ids must have"):
        LabelledImages(rows.images, rows.y, rows.p, ("one",))
    # the offline extractor's training set is built from it: one class per product x defect that has images
    vocab = ds.vocab
    classes = ClassLabelledImages.from_labelled(rows, tuple(vocab.products), tuple(vocab.defects), "fp")
    codes = ds.p * len(vocab.defects) + ds.y
    present = [
        f"{p}/{d}"
        for i, p in enumerate(vocab.products)
        for j, d in enumerate(vocab.defects)
        if bool((codes == i * len(vocab.defects) + j).any())
    ]
    assert classes.class_names == present and classes.images is rows.images
    assert [classes.class_names[k] for k in classes.labels.tolist()] == [
        f"{vocab.products[p]}/{vocab.defects[y]}" for p, y in zip(ds.p.tolist(), ds.y.tolist())
    ]


def test_the_gan_and_crop_paste_reports_share_one_data_block(bench, tmp_path):
    from types import SimpleNamespace

    from dtgan.config.evaluation import EvaluationConfig
    from dtgan.data.parquet_io import read_vocab
    from dtgan.evaluation.extractors import ExtractorSpec
    from dtgan.evaluation.inputs import CheckpointInputs, load_evaluation_data
    from dtgan.evaluation.protocol import SyntheticSets
    from dtgan.evaluation.report import data_block, write_checkpoint_report

    cfg = EvaluationConfig(disentanglement_num_images=4)
    data = load_evaluation_data(bench, read_vocab(bench), cfg, 32)
    inputs = CheckpointInputs(
        device=torch.device("cpu"),
        data_path=bench,
        data=data,
        out_dir=tmp_path,
        checkpoint=tmp_path / "step_00000002.pt",
        nets=SimpleNamespace(step=2),
    )
    extractor = ExtractorSpec("x", "weights.pt", "abc")
    gan = write_checkpoint_report(
        inputs, cfg, extractor, "off", SyntheticSets(), None, [], [], {}, [], wall_s=0.0
    )
    written = json.loads(gan.report_path.read_text())["data"]
    assert written == {
        "path": bench,
        "reference_split": cfg.reference_split,
        "reference_fingerprint": data.reference_fingerprint,
        "source_split": cfg.source_split,
        "sources": len(data.sources),
        "products": list(data.products),
        "defects": list(data.defects),
    }
    crop = data_block(
        inputs, cfg, defects_with_masks=7
    )  # Crop&Paste's block adds its count after the sources
    assert list(crop) == [*list(written)[:5], "defects_with_masks", *list(written)[5:]]
    assert {k: v for k, v in crop.items() if k != "defects_with_masks"} == written
