"""``dtgan downstream CHECKPOINT -c downstream_smoke``: the study end to end, as a user runs it."""

import json
import subprocess
import sys

import pytest
from downstream_testdata import tiny_benchmark, tiny_checkpoint

from dtgan.cli.main import main

FAST = [
    "-o",
    "downstream.arms=[no_aug,mix]",
    "-o",
    "downstream.epochs=1",
    "-o",
    "downstream.normal_images_per_product=[20]",
    "-o",
    "downstream.synthesis_sources_per_product=10",
]


def dtgan(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "dtgan", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    data_path = tiny_benchmark(folder)
    return folder, data_path, tiny_checkpoint(folder, data_path)


def test_downstream_writes_json_into_the_run_folder_and_prints_the_table(bench):
    folder, data_path, checkpoint = bench
    proc = dtgan("downstream", checkpoint, "-c", "downstream_smoke", "--data", data_path, *FAST, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "| mix | 20 | all | all | 2 |" in proc.stdout and "| no_aug | 20 |" in proc.stdout
    report = json.loads((folder / "run" / "downstream.json").read_text())
    assert set(report["metrics"]) == {
        f"downstream/error_{a}_resnet10t_{s}" for a in ("no_aug", "mix") for s in ("mean", "std")
    }
    assert len(report["jobs"]) == 4 and all(j["pretrained"] == "scratch" for j in report["jobs"])
    mix = next(j for j in report["jobs"] if j["label"] == "mix_n20")
    assert mix["train_class_counts"] == {"normal": 40, "scratch": 40, "spot": 40}
    assert mix["test_images"] == 42 and mix["val_images"] == 18
    assert (folder / "run" / "downstream" / "study_data.pt").is_file()


def test_synthetic_arms_without_a_checkpoint_fail_with_one_line(bench, capsys):
    _, data_path, _ = bench
    assert main(["downstream", "-c", "downstream_smoke", "--data", str(data_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "dtgan: error: downstream.arms ['latent', 'reference', 'mix'] need"
    )


def test_dry_run_lists_the_cells(bench, capsys):
    _, _, checkpoint = bench
    argv = [
        "downstream",
        str(checkpoint),
        "-c",
        "downstream_smoke",
        "--dry-run",
        "-o",
        "downstream.defect_sources=[all,cast]",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "7 cells x 2 seeds = 14 classifier runs" in out and "reference_vcast_n40" in out


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("downstream.backbone=resnet_typo", "unknown timm model 'resnet_typo'"),
        (
            "downstream.normal_images_per_product=[5000]",
            "fewer than downstream.normal_images_per_product=5000",
        ),
        ("model.img_size=64", "on an existing run only downstream.*, crop_paste.* may change"),
        ("downstream.pretrained_paths={resnet10t: BAD}", "BAD is not loadable as resnet10t weights"),
    ],
)
def test_dry_run_fails_where_the_real_run_would(bench, tmp_path, capsys, override, expected):
    """--dry-run checks what the real run checks (and takes the run's config: its data path, its model)."""
    _, _, checkpoint = bench
    argv = [
        "downstream",
        str(checkpoint),
        "-c",
        "downstream_smoke",
        "--dry-run",
        "--out",
        str(tmp_path / "o"),
    ]
    if "BAD" in override:  # a weights file timm cannot load: found before any synthesis
        bad = tmp_path / "BAD"
        bad.write_bytes(b"PK\x03\x04 not weights")
        override, expected = override.replace("BAD", str(bad)), expected.replace("BAD", str(bad))
        argv += ["-o", "downstream.weights=auto"]
    assert main([*argv, "-o", override]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_crop_paste_arm_runs_without_a_checkpoint_and_the_heading_says_from_scratch(bench):
    folder, data_path, _ = bench
    fast = [
        "-o",
        "downstream.epochs=1",
        "-o",
        "downstream.normal_images_per_product=[20]",
        "-o",
        "downstream.num_seeds=1",
    ]
    fast += ["-o", "downstream.arms=[trad_aug,crop_paste]"]
    proc = dtgan(
        "downstream", "-c", "downstream_smoke", "--data", data_path, "--out", folder / "cp", *fast, cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    assert "| crop_paste | 20 | all | all | 1 |" in proc.stdout
    assert "test error % (resnet10t, from scratch)" in proc.stdout
    report = json.loads((folder / "cp" / "downstream.json").read_text())
    crop = next(j for j in report["jobs"] if j["label"] == "crop_paste_n20")
    assert crop["train_class_counts"] == {"normal": 40, "scratch": 40, "spot": 40}
    assert crop["train_synthetic_images"] == (40 - 8) + (40 - 4)


@pytest.mark.parametrize("preset", ["paper", "sdi"])
def test_a_paper_preset_without_imagenet_weights_stops_before_any_work(preset, tmp_path, monkeypatch, capsys):
    from dtgan.downstream import preflight

    monkeypatch.setattr(preflight, "cached_weights", lambda backbone: None)
    argv = ["downstream", str(tmp_path / "no-run"), "-c", preset, "--data", str(tmp_path / "missing.parquet")]
    assert main(argv) == 2  # the data set does not even exist: nothing was read
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "dtgan: error: downstream.weights=imagenet: no ImageNet weights"
    )
    assert not (tmp_path / "no-run").exists()


def test_an_unknown_backbone_stops_before_any_image_is_synthesised(bench, tmp_path, capsys):
    _, data_path, checkpoint = bench
    argv = [
        "downstream",
        str(checkpoint),
        "-c",
        "downstream_smoke",
        "--data",
        str(data_path),
        "--out",
        str(tmp_path / "out"),
        "-o",
        "downstream.backbone=resnet_typo",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "dtgan: error: downstream.backbone: unknown timm model 'resnet_typo'; e.g. resnet50, "
        "efficientnet_b4, resnet10t"
    ]
    assert not (tmp_path / "out").exists()
