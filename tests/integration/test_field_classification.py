"""The field's defect-type classification protocol (`dtgan downstream RUN -c field_classification`): per product a
classifier of defect types trained on generated defects (optionally plus the real third), tested on the real test
defects, accuracy per product and averaged. CPU: a tiny backbone override, random init, no downloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from downstream_testdata import tiny_checkpoint
from PIL import Image

from dtgan import keys
from dtgan.cli.main import main
from dtgan.config import load_config
from dtgan.data.importers import SplitOptions, import_folders
from dtgan.downstream.field_classification import FieldCategory, train_and_test

SIZE = 32
TINY = [
    "-o",
    "downstream.backbone=resnet10t",
    "-o",
    "downstream.weights=scratch",
    "-o",
    f"downstream.img_size={SIZE}",
    "-o",
    "downstream.epochs=1",
    "-o",
    "downstream.batch_size=8",
    "-o",
    "downstream.num_seeds=2",
    "-o",
    "downstream.field_images_per_defect=6",
    "-o",
    "downstream.device=cpu",
]


def _field_tree(root: Path) -> Path:
    """carpet: color (6), cut (9); grid: bent (5) only; 10 normals each; random 32 px gray images."""
    rng = np.random.default_rng(0)
    for product, defects in (("carpet", {"color": 6, "cut": 9}), ("grid", {"bent": 5})):
        for defect, count in {"normal": 10, **defects}.items():
            for i in range(count):
                path = root / product / defect / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(path)
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("field")
    data = folder / "field.parquet"
    import_folders(
        str(_field_tree(folder / "tree")),
        str(data),
        SIZE,
        SplitOptions(gan_normal_per_product=4),
        protocol="field",
    )
    return folder, data, tiny_checkpoint(folder, data)


@pytest.mark.parametrize("with_real", [False, True])
def test_the_preset_trains_per_product_on_generated_defects_and_tests_on_the_real_two_thirds(
    run, capsys, with_real
):
    folder, data, checkpoint = run
    out = folder / f"out-{with_real}"
    extra = ["-o", f"downstream.field_real_defects={str(with_real).lower()}"]
    code = main(
        [
            "downstream",
            str(checkpoint),
            "-c",
            "field_classification",
            "--data",
            str(data),
            "--out",
            str(out),
            *TINY,
            *extra,
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((out / "field_classification.json").read_text())
    assert result["protocol"] == "field_classification" and result["backbone"] == "resnet10t"
    assert result["pretrained"] == ["scratch"]
    assert result["trained_on"] == (
        "generated + real gan_train defects" if with_real else "generated defects only"
    )
    assert list(result["per_product"]) == ["carpet"]  # grid has one defect type: nothing to classify
    assert "grid" in result["skipped"] and "1 defect type(s)" in result["skipped"]["grid"]
    carpet = result["per_product"]["carpet"]
    assert carpet["defect_types"] == ["color", "cut"] and carpet["seeds"] == [0, 1]
    # the field rule: gan_train = max(1, n // 3): color 2 of 6, cut 3 of 9; the test set is the rest
    assert carpet["images"]["test"] == {"color": 4, "cut": 6}
    assert carpet["images"]["train_generated"] == {"color": 6, "cut": 6}
    assert carpet["images"]["train_real"] == ({"color": 2, "cut": 3} if with_real else {"color": 0, "cut": 0})
    metrics = result["metrics"]
    assert set(metrics) == {keys.field_accuracy_key("carpet"), keys.field_accuracy_key()}
    assert 0.0 <= metrics["downstream/field_accuracy"] <= 100.0
    assert metrics["downstream/field_accuracy"] == pytest.approx(carpet["accuracy_pct_mean"])
    per_seed = [m["downstream/field_accuracy_carpet"] for m in result["per_seed_metrics"]]
    assert carpet["accuracy_pct_mean"] == pytest.approx(sum(per_seed) / 2)
    for job in result["jobs"]:  # accuracy is a share of the 10 test images
        assert job["test_images"] == 10 and round(job["accuracy_pct"] / 10, 6).is_integer()
    assert "| carpet | color, cut | 10 |" in printed and "mean over products" in printed


def test_without_a_checkpoint_the_protocol_is_one_line(run, capsys):
    _, data, _ = run
    code = main(["downstream", "-c", "field_classification", "--data", str(data), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "field_classification: the generated defects need a generator checkpoint" in err


def test_the_recipe_learns_separable_defect_types_and_tests_once_on_the_real_images():
    cfg = load_config("field_classification", [o for o in TINY if o != "-o"]).downstream
    cfg = cfg.model_copy(update={"epochs": 6})
    g = torch.Generator().manual_seed(0)

    def images(levels: list[int]) -> torch.Tensor:
        base = torch.tensor(levels, dtype=torch.float32)[:, None, None, None]
        noise = torch.randint(-25, 26, (len(levels), 1, SIZE, SIZE), generator=g).float()
        return (base + noise).clamp(0, 255).to(torch.uint8)

    train_y = torch.tensor([0, 1] * 24)
    test_y = torch.tensor([0, 1] * 10)
    cat = FieldCategory(
        product="p",
        defects=("dark", "bright"),
        train_images=images([60 if y == 0 else 190 for y in train_y.tolist()]),
        train_y=train_y,
        train_real=torch.zeros(48, dtype=torch.bool),
        test_images=images([60 if y == 0 else 190 for y in test_y.tolist()]),
        test_y=test_y,
    )
    result = train_and_test(cat, cfg, seed=0, device="cpu")
    assert result["accuracy_pct"] >= 90.0, result
    assert set(result["accuracy_pct_per_type"]) == {"dark", "bright"} and result["test_images"] == 20


def test_the_augmentation_study_refuses_a_field_classification_config(tmp_path):
    from dtgan.downstream.study import plan_jobs
    from dtgan.errors import ConfigError

    cfg = load_config("field_classification", []).downstream
    with pytest.raises(
        ConfigError, match="downstream.protocol=field_classification is not the augmentation study"
    ):
        plan_jobs(cfg, tmp_path / "study_data.pt")
