"""benchmarks/field_table.py on a tiny sqlite MLflow store and evaluation JSONs made in the test: this platform's
rows in the field's columns (IS, IC-LPIPS, KID per category and averaged), the quoted rows labelled as quoted, and
"not computed" (never a number) for what a run lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_store import Store
from script_module import load_script

from dtgan import keys

REPO = Path(__file__).resolve().parents[2]
field_table = load_script("benchmarks/field_table.py")


def _scores(is_value: float, lpips: float, kid: float, guidance: str = "latent") -> dict[str, float]:
    """Per category (carpet, grid) and pooled; grid is worse by a fixed step so averages are checkable."""
    out = {}
    for product, step in (("carpet", 0.0), ("grid", 0.1)):
        out[f"eval/is_{guidance}_{product}"] = is_value - step
        out[f"eval/ic_lpips_{guidance}_{product}"] = lpips - step
        out[f"eval/kid_{guidance}_{product}"] = kid + step
    out.update({f"eval/is_{guidance}": 9.0, f"eval/ic_lpips_{guidance}": 9.0, f"eval/kid_{guidance}": 9.0})
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("mlflow"))
    exp = s.experiment("ablation-mvtec_textures")
    old = s.parent(exp, "ablation-mvtec_textures")
    s.child(exp, old, "g", 0, metrics=_scores(5.0, 0.9, 0.5))  # an earlier launch: not read by default
    parent = s.parent(exp, "ablation-mvtec_textures")
    extra = {"lpips_backbone": "alex/7be5be79", "preset": "mvtec_textures"}
    for seed, is_value in ((0, 1.6), (1, 1.8)):
        run = s.child(exp, parent, "g", seed, metrics=_scores(is_value, 0.30, 0.05))
        s.client.set_tag(run, "lpips_backbone", extra["lpips_backbone"])
        s.client.set_tag(run, "preset", extra["preset"])
    # (a) was evaluated before IS/IC-LPIPS existed: KID only
    kid_only = {k: v for k, v in _scores(0.0, 0.0, 0.2).items() if k.startswith("eval/kid_")}
    s.child(exp, parent, "a", 0, metrics=kid_only)
    s.child(exp, parent, "b", 0, metrics=_scores(7.0, 0.7, 0.7), status="FAILED")  # not finished: left out
    s.child(exp, parent, "c", 0, metrics={"eval/fid_latent": 30.0})  # no field metric: no row
    # a per-category study (mvtec_leather): one product, its own experiment
    leather = s.experiment("ablation-mvtec_leather")
    leather_parent = s.parent(leather, "ablation-mvtec_leather")
    scores = {
        k.replace("_carpet", "_leather"): v for k, v in _scores(1.2, 0.1, 0.3).items() if "_carpet" in k
    }
    s.child(leather, leather_parent, "g", 0, metrics=scores)
    return s, old


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = field_table.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_key_builders_write_the_issue_16_key_names():
    assert keys.is_key("latent") == "eval/is_latent"
    assert keys.is_key("mix", "carpet") == "eval/is_mix_carpet"
    assert keys.ic_lpips_key("reference", "grid") == "eval/ic_lpips_reference_grid"
    assert field_table.KEY_BUILDERS["kid"]("latent", "tile") == "eval/kid_latent_tile"
    assert keys.is_key("latent", "metal contamination") == "eval/is_latent_metal-contamination"
    with pytest.raises(ValueError):
        keys.is_key("noise")


def test_mlflow_rows_average_seeds_then_categories_and_say_not_computed(store, capsys):
    s, old = store
    code, out, _ = _run(capsys, "--experiment", "ablation-mvtec_textures", "--tracking-uri", s.uri)
    assert code == 0
    result = json.loads(out)
    assert result["categories"] == ["carpet", "grid"]
    rows = {r["label"]: r for r in result["platform"]}
    assert set(rows) == {"this platform: DT-GAN (g), mvtec_textures", "this platform: StarGAN v2 (a)"}
    g = rows["this platform: DT-GAN (g), mvtec_textures"]
    assert len(g["runs"]) == 2 and g["tags"]["lpips_backbone"] == ["alex/7be5be79"]
    carpet, grid, average = g["cells"]["carpet"], g["cells"]["grid"], g["cells"]["average"]
    assert (
        carpet["is"]["value"] == pytest.approx(1.7) and carpet["is"]["seeds"] == 2
    )  # mean of seeds 1.6, 1.8
    assert grid["is"]["value"] == pytest.approx(1.6)
    assert (
        average["is"]["value"] == pytest.approx(1.65) and average["is"]["text"] == "1.65"
    )  # mean of categories
    assert average["ic_lpips"]["value"] == pytest.approx(0.25) and average["kid"]["value"] == pytest.approx(
        0.1
    )
    assert g["cells"]["pooled"]["is"]["value"] == 9.0  # the all-products key, kept apart from the average
    a = rows["this platform: StarGAN v2 (a)"]["cells"]
    assert a["carpet"]["is"] == {"value": None, "seeds": 0, "text": "not computed"}
    assert a["average"]["ic_lpips"]["text"] == "not computed"
    assert a["average"]["kid"]["value"] == pytest.approx(0.25)
    published = {r["method"]: r["cells"]["average"] for r in result["published"]}
    assert {m: published[m]["is"]["value"] for m in published} == {
        "SeaS": 1.88,
        "AnomalyDiffusion": 1.80,
        "DFMGAN": 1.72,
        "Crop&Paste": 1.51,
        "MAGIC": None,
    }
    assert published["SeaS"]["kid"]["text"] == "0.040" and published["DFMGAN"]["kid"]["text"] == "not quoted"
    assert [published[m]["ic_lpips"]["value"] for m in published] == [0.34, 0.32, 0.20, 0.14, None]
    md = result["markdown"]
    assert "| quoted: SeaS | 1.88 | 0.340 | 0.040 | not quoted | SeaS: Few-shot" in md and "(ICCV 2025)" in md
    assert "(Duan et al., AAAI 2023)" in md and "(Hu et al., AAAI 2024)" in md
    assert "| this platform: StarGAN v2 (a) | not computed | not computed | 0.250 |" in md
    assert (
        "| this platform: DT-GAN (g), mvtec_textures | grid | 1.60 | 0.200 | 0.150 | not computed | 2 |" in md
    )
    assert "alex/7be5be79" in md and "not all 15 MVTec categories" in md

    # an explicit parent run reads the earlier launch instead; --variant and --categories narrow the table
    code, out, _ = _run(
        capsys,
        "--experiment",
        "ablation-mvtec_textures",
        "--tracking-uri",
        s.uri,
        "--parent-run",
        old,
        "--categories",
        "carpet,tile",
    )
    (row,) = json.loads(out)["platform"]
    assert (
        row["cells"]["carpet"]["is"]["value"] == 5.0 and row["cells"]["tile"]["kid"]["text"] == "not computed"
    )
    assert row["cells"]["average"]["is"] == {"value": None, "missing": ["tile"], "text": "not computed"}
    code, out, _ = _run(
        capsys, "--experiment", "ablation-mvtec_textures", "--tracking-uri", s.uri, "--variant", "a"
    )
    assert [r["label"] for r in json.loads(out)["platform"]] == ["this platform: StarGAN v2 (a)"]


def test_per_category_studies_merge_into_one_row_per_variant(store, capsys):
    s, _ = store
    code, out, _ = _run(
        capsys,
        "--experiment",
        "ablation-mvtec_textures",
        "--experiment",
        "ablation-mvtec_leather",
        "--tracking-uri",
        s.uri,
        "--variant",
        "g",
    )
    assert code == 0
    result = json.loads(out)
    (row,) = result["platform"]
    assert result["categories"] == ["carpet", "grid", "leather"] and len(row["runs"]) == 3
    assert row["cells"]["leather"]["is"] == {"value": 1.2, "seeds": 1, "text": "1.20"}
    assert row["cells"]["carpet"]["is"]["seeds"] == 2  # the leather run has no carpet key: not counted there
    assert row["cells"]["average"]["is"]["value"] == pytest.approx((1.7 + 1.6 + 1.2) / 3)
    assert row["source"] == "MLflow experiments 'ablation-mvtec_textures', 'ablation-mvtec_leather'"


def test_evaluation_json_rows_and_markdown_output(tmp_path, capsys):
    run = tmp_path / "runs" / "g-seed0"
    report = {
        "checkpoint": str(run / "checkpoints" / "step_00100000.pt"),
        "step": 100000,
        "metrics": {**_scores(1.9, 0.33, 0.03, "mix"), "eval/ic_lpips_mix_grid": None},  # None: not computed
        "tags": {
            "fid_extractor": "dtgan-defect-cnn",
            "ic_lpips_status": "not computed: no LPIPS weights at /x",
        },
    }
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(report))
    code, out, _ = _run(capsys, "--evaluation", str(path), "--guidance", "mix", "--markdown")
    assert code == 0
    assert (
        "| this platform: g-seed0 (step 100000) | 1.85 | not computed | 0.080 | not computed | measured here"
        in out
    )
    assert (
        "| this platform: g-seed0 (step 100000) | grid | 1.80 | not computed | 0.130 | not computed | 1 |"
        in out
    )
    assert "only inception-v3-compat gives the Inception Score the papers report" in out
    assert "IC-LPIPS backbone: not recorded" in out and "no LPIPS weights at /x" in out
    written = tmp_path / "out" / "table.json"
    assert field_table.main(["--evaluation", str(path), "--guidance", "latent", "--out", str(written)]) == 0
    capsys.readouterr()
    assert (
        json.loads(written.read_text())["categories"] == []
    )  # no latent keys in this file: nothing invented
    assert json.loads(written.read_text())["platform"][0]["cells"]["average"]["is"]["text"] == "not computed"


def test_bad_inputs_stop_with_one_line(store, tmp_path, capsys):
    s, _ = store
    code, out, err = _run(capsys, "--experiment", "nope", "--tracking-uri", s.uri)
    assert code == 2 and out == "" and "no MLflow experiment named 'nope'" in err and err.count("\n") == 1
    code, _, err = _run(
        capsys, "--experiment", "ablation-mvtec_textures", "--tracking-uri", s.uri, "--variant", "c"
    )
    assert code == 2 and "no finished run has a metric eval/is_latent*" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = _run(capsys, "--evaluation", str(bad))
    assert code == 2 and "bad.json: not JSON" in err
    code, _, err = _run(capsys, "--evaluation", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json: cannot read it" in err


def test_the_defect_type_accuracy_column_beside_the_quoted_ones(tmp_path, capsys):
    run = tmp_path / "runs" / "g-seed0"
    run.mkdir(parents=True)
    result = {
        "protocol": "field_classification",
        "backbone": "resnet34",
        "trained_on": "generated defects only",
        "per_seed_metrics": [
            {
                "downstream/field_accuracy_carpet": 60.0,
                "downstream/field_accuracy_grid": 40.0,
                "downstream/field_accuracy": 50.0,
            },
            {
                "downstream/field_accuracy_carpet": 70.0,
                "downstream/field_accuracy_grid": 50.0,
                "downstream/field_accuracy": 60.0,
            },
        ],
    }
    path = run / "field_classification.json"
    path.write_text(json.dumps(result))
    code, out, _ = _run(capsys, "--classification", str(path))
    assert code == 0
    table = json.loads(out)
    assert table["categories"] == ["carpet", "grid"]
    (row,) = table["platform"]
    assert row["label"] == "this platform: defect-type classifier (resnet34, generated defects only, g-seed0)"
    assert row["cells"]["carpet"]["accuracy"] == {"value": 65.0, "seeds": 2, "text": "65.0"}
    assert row["cells"]["average"]["accuracy"]["value"] == pytest.approx(55.0)  # mean of 65 and 45
    assert row["cells"]["average"]["is"]["text"] == "not computed"
    published = {r["method"]: r["cells"]["average"]["accuracy"]["value"] for r in table["published"]}
    assert published == {
        "SeaS": None,
        "AnomalyDiffusion": 66.1,
        "DFMGAN": 49.6,
        "Crop&Paste": 56.2,
        "MAGIC": 78.1,
    }
    md = table["markdown"]
    assert "| method | IS ↑ | IC-LPIPS ↑ | KID ↓ | defect-type acc. % ↑ | figures |" in md
    assert (
        "| this platform: defect-type classifier (resnet34, generated defects only, g-seed0) | not computed | not computed | not computed | 55.0 |"
        in md
    )
    assert "| quoted: MAGIC | not quoted | not quoted | not quoted | 78.1 |" in md
    assert "| quoted: AnomalyDiffusion | 1.80 | 0.320 | not quoted | 66.1 |" in md
    assert "Defect-type accuracy: the field's classification protocol" in md
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"protocol": "study"}))
    code, _, err = _run(capsys, "--classification", str(bad))
    assert code == 2 and "other.json: not a field_classification.json (protocol 'study')" in err
