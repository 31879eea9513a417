"""`dtgan evaluate` and `dtgan sample` end to end: embedded benchmark at 32 px, a 2-step tiny run, the offline
extractor; one-line errors for bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from evaluate_cli_testdata import two_step_run
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from dtgan import keys
from dtgan.cli.main import main
from dtgan.config import load_config
from dtgan.data.dataset import DefectImageDataset
from dtgan.tracking.report.uncertainty import fid_from_features
from dtgan.training.loop import train

EVAL_OPTS = [
    "-o",
    "evaluation.images_per_product_per_defect=24",
    "-o",
    "evaluation.kid_subset_size_min=4",
    "-o",
    "evaluation.kid_subsets=10",
    "-o",
    "evaluation.disentanglement_num_images=12",
    "-o",
    "evaluation.grid_num_sources=3",
    "-o",
    "evaluation.grid_num_styles=2",
    "-o",
    "evaluation.grid_num_references=2",
    "-o",
    "evaluation.defect_cnn.min_steps=20",
    "-o",
    "evaluation.defect_cnn.epochs=1",
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
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    data, result = two_step_run(root)
    return {
        "root": root,
        "data": data,
        "run_dir": result.run_dir,
        "checkpoint": result.checkpoint_path,
        "cache": [
            *("-o", f"evaluation.cache_dir={root / 'cache'}"),
            *("-o", f"evaluation.pretrained_cnn.cache_dir={root / 'pretrained'}"),
        ],
    }


def _evaluate(run, *extra) -> dict:
    assert main(["evaluate", str(run["run_dir"]), *EVAL_OPTS, *run["cache"], *extra]) == 0
    out = run["run_dir"] / "evaluation" / "step_00000002"
    return json.loads((out / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def first_report(run):
    return _evaluate(run)


def test_evaluate_reports_every_guidance_per_product_and_over_all_products(run, first_report):
    report = first_report
    products = report["data"]["products"]
    for guidance in keys.GUIDANCES:
        for product in (None, *products):
            assert isinstance(report["metrics"][keys.fid_key(guidance, product)], float)
            assert isinstance(report["metrics"][keys.kid_key(guidance, product)], float)
    for key in keys.DISENTANGLEMENT_KEYS:  # the benchmark has clean backgrounds, so removal is scored too
        assert key in report["metrics"]
    assert report["metrics"][keys.EVAL_GENERATED_IMAGES_PER_S] > 0
    # 3 products x 2 defects x 24 per guidance; every number names its extractor, sizes and KID subset size.
    assert report["throughput"]["generated_images"] == 3 * 2 * 24 * 2
    for record in report["fidelity"]:
        assert record["extractor"] == "dtgan-pretrained-cnn" == report["feature_extractor"]["extractor"]
        assert record["weights_fingerprint"] == report["tags"][keys.TAG_FID_WEIGHTS]
        assert record["kid_subset_size"] == min(record["n_real"], record["n_fake"], 1000)
    all_latent = next(r for r in report["fidelity"] if r["fid_key"] == "eval/fid_latent")
    assert all_latent["n_fake"] == 144
    for grid in ("latent.png", "reference.png", "styles.png"):
        assert (run["run_dir"] / "evaluation" / "step_00000002" / grid).stat().st_size > 0


def test_second_evaluation_reads_real_features_from_the_cache(run, first_report):
    assert not any(record["real_cache_hit"] for record in first_report["fidelity"][:1])
    again = _evaluate(run)
    assert all(record["real_cache_hit"] for record in again["fidelity"])
    assert again["metrics"] == first_report["metrics"] | {
        keys.EVAL_GENERATED_IMAGES_PER_S: again["metrics"][keys.EVAL_GENERATED_IMAGES_PER_S]
    }  # seeded: same numbers


def test_saved_features_reproduce_the_reported_fid_and_kid(run, first_report):
    folder = run["run_dir"] / "evaluation" / "step_00000002" / "features"
    products = first_report["data"]["products"]
    expected = {f"real_{s}.npy" for s in ("all", *products)} | {
        f"gen_{g}_{s}.npy" for g in keys.GUIDANCES for s in ("all", *products)
    }
    assert set(first_report["features"]["files"]) == expected == {p.name for p in folder.iterdir()}
    cfg = first_report["evaluation_config"]
    pooled = [r for r in first_report["fidelity"] if r["defect"] == "pooled"]
    assert len(pooled) == 3 * (1 + len(products))
    for record in pooled:
        f_fake = np.load(folder / f"gen_{record['guidance']}_{record['product']}.npy")
        f_real = np.load(folder / f"real_{record['product']}.npy")
        assert f_fake.dtype == f_real.dtype == np.float32
        # the pretrained network's 128-wide feature layer and its evidence of the five defect types
        assert (len(f_fake), len(f_real), f_fake.shape[1]) == (record["n_fake"], record["n_real"], 128 + 5)
        stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (f_fake, f_real)]
        assert fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"] == record["fid"]
        kid = kid_features_to_metric(
            torch.from_numpy(f_fake),
            torch.from_numpy(f_real),
            kid_subsets=cfg["kid_subsets"],
            kid_subset_size=record["kid_subset_size"],
            rng_seed=cfg["seed"],
            verbose=False,
        )
        assert kid["kernel_inception_distance_mean"] == record["kid_mean"]
        # The report's own float64 estimator, which its bootstrap replicates use. torch-fidelity takes the means
        # in float32: each mean is off by up to half a float32 ulp of the largest feature per dimension, which
        # moves |mu1 - mu2|^2 (<= FID) by at most 2 sqrt(FID) sqrt(D) ulp; the defect evidence makes features large.
        ulp = float(np.spacing(np.float32(max(np.abs(f_fake).max(), np.abs(f_real).max()))))
        rounding = 2 * np.sqrt(record["fid"]) * np.sqrt(f_fake.shape[1]) * ulp
        assert fid_from_features(f_fake, f_real) == pytest.approx(record["fid"], rel=1e-4, abs=rounding)


def test_features_are_not_written_when_turned_off(run):
    out = run["root"] / "no_features"
    assert (
        main(
            [
                "evaluate",
                str(run["run_dir"]),
                *EVAL_OPTS,
                *run["cache"],
                "--out",
                str(out),
                "-o",
                "evaluation.save_features=false",
            ]
        )
        == 0
    )
    report = json.loads((out / "evaluation.json").read_text())
    assert report["features"] is None and not (out / "features").exists()
    assert report["metrics"][keys.fid_key("mix")] > 0


def test_per_defect_option_adds_per_defect_keys(run):
    report = _evaluate(run, "-o", "evaluation.per_defect=true")
    assert keys.fid_key("mix", None, "scratch") in report["metrics"]
    assert keys.fid_key("mix", "brushed", "spot") in report["metrics"]
    # The benchmark's last product has no gan_train spots: no score rather than a score against nothing.
    last = report["data"]["products"][-1]
    assert keys.fid_key("mix", last, "spot") not in report["metrics"]


def test_synthetic_cells_with_real_defects_scores_a_product_on_its_own_defect_types(run):
    """MVTec-style protocol: a product is scored only on the cells it has real defects of. On the benchmark the
    last product has no gan_train spots, so its pooled score is its scratch score; with the default ("all") the
    unseen spot cell is synthesised and pooled in too."""
    both = {}
    for cells in ("all", "with_real_defects"):
        report = _evaluate(
            run, "-o", "evaluation.per_defect=true", "-o", f"evaluation.synthetic_cells={cells}"
        )
        both[cells] = report["metrics"]
    last = report["data"]["products"][-1]
    only_own = both["with_real_defects"]
    assert only_own[keys.fid_key("mix", last)] == pytest.approx(
        only_own[keys.fid_key("mix", last, "scratch")]
    )
    assert both["all"][keys.fid_key("mix", last)] != pytest.approx(
        both["all"][keys.fid_key("mix", last, "scratch")]
    )
    # products with both defect types score the same cells either way
    first = report["data"]["products"][0]
    assert only_own[keys.fid_key("mix", first, "spot")] == pytest.approx(
        both["all"][keys.fid_key("mix", first, "spot")]
    )


def test_sample_writes_the_importer_layout_with_a_manifest(run):
    out = run["root"] / "exported"
    assert (
        main(
            [
                "sample",
                str(run["checkpoint"]),
                "--out",
                str(out),
                "--guidance",
                "mix",
                "--per-source",
                "2",
                "--products",
                "cast",
                "--defects",
                "scratch",
                "--max-sources",
                "3",
                *run["cache"],
            ]
        )
        == 0
    )
    pngs = sorted((out / "cast" / "scratch").glob("*.png"))
    assert len(pngs) == 6
    with open(out / "manifest.csv") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 6 and {m["guidance"] for m in manifest} == {"latent", "reference"}
    assert all(m["reference_id"].startswith("syn-") for m in manifest if m["guidance"] == "reference")
    assert all(m["z_index"] != "" for m in manifest if m["guidance"] == "latent")


def test_a_preset_on_an_existing_run_changes_only_the_evaluation_section(run, capsys):
    """The smoke run evaluated with -c tiny (another model, other data path): the run's model and data are
    used, the preset's evaluation settings apply, and the export names its files one to one."""
    out = run["root"] / "exported_tiny"
    argv = [
        "sample",
        str(run["run_dir"]),
        "-c",
        "tiny",
        "--out",
        str(out),
        "--max-sources",
        "2",
        *run["cache"],
    ]
    assert main(argv) == 0, capsys.readouterr().err
    with open(out / "manifest.csv") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    assert len(files) == len(set(files)) == len(list(out.glob("*/*/*.png"))) == 3 * 2 * 2


def test_an_export_never_writes_one_file_twice(run, tmp_path, capsys):
    """Image ids that differ only where safe names replace characters ("img.0" and "img-0") get files of their
    own: as many PNGs as manifest rows, each row naming its own file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(run["data"])
    ids = [f"img{'.' if i % 2 else '-'}{i // 2}" for i in range(len(table))]
    table = table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids)).replace_schema_metadata(
        table.schema.metadata
    )
    colliding = tmp_path / "colliding.parquet"
    pq.write_table(table, colliding)
    out = tmp_path / "export"
    argv = [
        "sample",
        str(run["checkpoint"]),
        "--data",
        str(colliding),
        "--out",
        str(out),
        "--defects",
        "spot",
    ]
    assert main([*argv, "--max-sources", "4", *run["cache"]]) == 0, capsys.readouterr().err
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    files = {row["file"].lower() for row in rows}
    assert len(files) == len(rows) == len(list(out.glob("*/*/*.png"))) == 3 * 4
    assert any("~2" in f for f in files)  # the second id of a colliding pair


def test_sample_writes_the_platform_parquet_format(run):
    out = run["root"] / "exported.parquet"
    assert (
        main(
            [
                "sample",
                str(run["checkpoint"]),
                "--out",
                str(out),
                "--guidance",
                "latent",
                "--per-source",
                "1",
                "--max-sources",
                "2",
                "--format",
                "parquet",
                *run["cache"],
            ]
        )
        == 0
    )
    ds = DefectImageDataset(str(out), splits=("gan_holdout",), img_size=32)
    assert len(ds) == 3 * 2 * 2 and tuple(ds.images_uint8.shape[1:]) == (3, 32, 32)
    assert set(ds.y.tolist()) == {1, 2}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["sample", "{ckpt}", "--out", "{root}/x", "--products", "marble"],
            "product 'marble' not in the data",
        ),
        (["sample", "{ckpt}", "--out", "{root}/x", "--defects", "dent"], "defect 'dent' not in the data"),
        (
            ["evaluate", "{ckpt}", "-o", "model.img_size=64"],
            "on an existing run only evaluation.* may change",
        ),
        (["evaluate", "{ckpt}", "--out", "{ckpt}"], "is a file where a folder is expected"),
        (["sample", "{ckpt}", "--out", "{ckpt}/x"], "is a file where a folder is expected"),
        (
            ["evaluate", "{ckpt}", "-o", "evaluation.kid_subset_size_min=30"],
            "product brushed, defect pooled (real: split gan_train): 18 real",
        ),
        (["evaluate", "{root}/missing.pt"], "no such checkpoint"),
    ],
)
def test_bad_input_is_a_one_line_error(run, capsys, argv, expected):
    argv = [a.format(ckpt=run["checkpoint"], root=run["root"]) for a in argv]
    assert main([*argv, *run["cache"]]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err, err
    assert not (run["root"] / "x").exists() and not list(run["root"].glob(".*.lock"))  # nothing left behind


def test_all_checkpoints_writes_a_learning_curve_from_the_initialised_networks(run, tmp_path, capsys):
    config = load_config(
        "smoke",
        [
            f"data.path={run['data']}",
            "train.total_steps=4",
            "train.checkpoint_every_steps=2",
            "train.sample_every_steps=4",
            "train.keep_checkpoints=1",
            "train.checkpoint_at_start=true",
            f"train.out_dir={tmp_path}",
            "train.run_name=c",
        ],
    )
    run_dir = train(config).run_dir
    # step 0 (the networks as initialised) outlives pruning; keep_checkpoints counts the others
    assert [p.name for p in sorted((run_dir / "checkpoints").glob("*.pt"))] == [
        "step_00000000.pt",
        "step_00000004.pt",
    ]
    assert main(["evaluate", str(run_dir), "--all-checkpoints", *EVAL_OPTS, *run["cache"]]) == 0
    curve = json.loads((run_dir / "evaluation" / "curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [0, 4]
    for point in curve["points"]:
        m = point["metrics"]
        assert (
            m[keys.fid_key("mix")] > 0
            and 0 <= m[keys.EVAL_INPUT_DEPENDENCE]
            and m[keys.EVAL_SELF_RECON_SSIM] <= 1
        )
    assert (run_dir / "evaluation" / "curve.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "FID mix" in out and "curve.png" in out


def test_is_and_ic_lpips_beside_fid_and_not_computed_offline(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no LPIPS trunk weights anywhere
    out = tmp_path / "offline"
    assert main(["evaluate", str(run["run_dir"]), *EVAL_OPTS, *run["cache"], "--out", str(out)]) == 0
    assert "IC-LPIPS not computed" in capsys.readouterr().out
    report = json.loads((out / "evaluation.json").read_text())
    reason = f"not computed: no LPIPS weights at {tmp_path / 'torch' / 'hub' / 'checkpoints'}/alexnet-owt-7be5be79.pth"
    assert report["tags"][keys.TAG_IC_LPIPS_STATUS] == reason == report["lpips"]["status"]
    assert keys.TAG_LPIPS_BACKBONE not in report["tags"]
    assert not any(k.startswith("eval/ic_lpips") for k in report["metrics"])
    for guidance in keys.GUIDANCES:
        for product in (None, *report["data"]["products"]):
            assert report["metrics"][keys.is_key(guidance, product)] >= 1.0
    for record in report["diversity"]:
        assert record["extractor"] == "dtgan-pretrained-cnn" and record["ic_lpips_status"] == reason


@pytest.mark.slow
def test_ic_lpips_with_trunk_weights_per_product_x_defect_and_averaged(run, tmp_path, monkeypatch):
    import hashlib

    from torchvision.models import alexnet

    from dtgan.evaluation import ic_lpips

    torch.manual_seed(0)  # an untrained trunk: the plumbing, never a value to report
    path = tmp_path / "alexnet-untrained.pth"
    torch.save({k: v for k, v in alexnet().state_dict().items() if k.startswith("features.")}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(ic_lpips.LPIPS_WEIGHTS_FILES, "alex", f"alexnet-test-{digest[:8]}.pth")
    out = tmp_path / "with_lpips"
    opts = ["-o", f"evaluation.lpips_weights_path={path}", "--out", str(out)]
    assert main(["evaluate", str(run["run_dir"]), *EVAL_OPTS, *run["cache"], *opts]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["tags"][keys.TAG_LPIPS_BACKBONE] == f"alex/{digest[:16]}"
    metrics, products = report["metrics"], report["data"]["products"]
    for guidance in keys.GUIDANCES:
        cells = [
            metrics[k]
            for p in products
            for d in ("scratch", "spot")
            if (k := keys.ic_lpips_key(guidance, p, d)) in metrics
        ]
        assert len(cells) >= 4 and all(v > 0 for v in cells)
        assert metrics[keys.ic_lpips_key(guidance)] == pytest.approx(sum(cells) / len(cells))
    assert all(r["ic_lpips_backbone"] == f"alex/{digest[:16]}" for r in report["diversity"] if r["ic_lpips"])
