"""A tiny study (two arms x two seeds) runs on a CPU and reports mean +- std; jobs are pure and picklable."""

import json
import pickle

import pytest
from downstream_fixtures import make_study_data

from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream.arms import Cell
from dtgan.downstream.study import markdown_table, plan_cells, plan_jobs, run_job, run_study
from dtgan.downstream.study_data import load_study_data

TINY = dict(
    backbone="resnet10t",
    weights="scratch",
    img_size=32,
    batch_size=16,
    learning_rate=0.05,
    epochs=2,
    device="cpu",
    normal_images_per_product=(12,),
    synthesis_sources_per_product=4,
)


@pytest.fixture(scope="module")
def study_data_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "study_data.pt"
    make_study_data(normals_per_product=12, eval_per_cell=4).save(path)
    return path


def test_study_data_round_trips_through_its_file(study_data_path):
    data = load_study_data(study_data_path)
    fresh = make_study_data(normals_per_product=12, eval_per_cell=4)
    assert data.defects == fresh.defects and data.products == fresh.products
    assert (data.train_normal.images == fresh.train_normal.images).all()
    assert data.synthetic.keys() == fresh.synthetic.keys()


def test_tiny_study_reports_mean_and_std_per_arm(study_data_path, tmp_path):
    cfg = DownstreamConfig(arms=("trad_aug", "mix"), num_seeds=2, seed=7, **TINY)
    out = tmp_path / "run" / "downstream.json"
    payload = run_study(cfg, study_data_path, out_path=out)
    assert json.loads(out.read_text())["metrics"] == payload["metrics"]
    assert [r["label"] for r in payload["rows"]] == ["trad_aug_n12", "mix_n12"]
    assert len(payload["jobs"]) == 4 and {j["seed"] for j in payload["jobs"]} == {7, 8}
    for row in payload["rows"]:
        errors = [j["test_error_pct"] for j in payload["jobs"] if j["label"] == row["label"]]
        assert row["test_error_pct_mean"] == pytest.approx(sum(errors) / 2)
        assert row["test_error_pct_std"] == pytest.approx(abs(errors[0] - errors[1]) / 2**0.5)
    metrics = payload["metrics"]
    assert set(metrics) == {
        f"downstream/error_{arm}_resnet10t_{s}" for arm in ("trad_aug", "mix") for s in ("mean", "std")
    }
    mix_job = next(j for j in payload["jobs"] if j["label"] == "mix_n12")
    assert mix_job["train_class_counts"] == {"normal": 24, "scratch": 24, "spot": 24}
    assert mix_job["train_synthetic_images"] == (24 - 7) + (24 - 10)
    assert mix_job["pretrained"] == "scratch"
    table = markdown_table(payload["rows"], "resnet10t")
    assert "| mix | 12 | all | all | 2 |" in table and "±" in table


def test_jobs_are_picklable_and_any_executor_can_run_them(study_data_path):
    cfg = DownstreamConfig(arms=("no_aug",), num_seeds=2, **{**TINY, "epochs": 1})
    seen = []

    def executor(fn, specs):  # what a Ray adapter does: ship each spec elsewhere, run fn there
        for spec in specs:
            seen.append(spec)
            yield fn(pickle.loads(pickle.dumps(spec)))

    payload = run_study(cfg, study_data_path, map_fn=executor)
    assert [s.seed for s in seen] == [0, 1] and len(payload["jobs"]) == 2
    assert (
        run_job(seen[0])["test_error_pct"] == payload["jobs"][0]["test_error_pct"]
    )  # a pure function of its spec


def test_cross_domain_sources_apply_to_reference_and_mix_only():
    cfg = DownstreamConfig(
        arms=("trad_aug", "latent", "reference"),
        defect_sources=("all", "A"),
        products=("all", "B"),
        normal_images_per_product=(10, 20),
    )
    cells = plan_cells(cfg)
    assert Cell("reference", 10, "B", "A") in cells and Cell("latent", 10, "B", "A") not in cells
    assert len(cells) == 2 * 2 * (1 + 1 + 2)
    assert len(plan_jobs(cfg, "x.pt")) == len(cells) * 5
