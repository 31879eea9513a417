"""Reports built from a hand-made MLflow store: exact cells, CIs, significance marks, footnotes, messages."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.linalg
from report_store import Store
from scipy import stats

from dtgan.tracking.report import ReportConfig, build_report
from dtgan.tracking.report.errors import ReportError

CONFIG = ReportConfig(bootstrap_samples=100, bootstrap_seed=0)
FEATURE_DIM, ROWS = 8, 50
FID_MIX = {"a": [37.00, 37.70, 38.40], "b": [32.16, 33.36, 34.56], "c": [27.0, 28.0]}
KID_MIX = {"a": [0.013, 0.014, 0.012], "b": [0.011, 0.010, 0.012]}
GEN_SHIFT = {"a": 1.0, "b": 0.2}
REAL = np.random.default_rng(123).normal(size=(ROWS, FEATURE_DIM)).astype(np.float32)


def _generated(variant: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    return (rng.normal(size=(ROWS, FEATURE_DIM)) + GEN_SHIFT[variant]).astype(np.float32)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("mlflow"))
    ablation = store.experiment("ablation")
    parent = store.parent(ablation, "ablation")
    store.ablation_runs = {}
    for variant, values in FID_MIX.items():
        for seed, fid in enumerate(values):
            metrics = {"eval/fid_mix": fid, "eval/fid_latent": fid + 5}
            features = None
            if variant in KID_MIX:
                metrics["eval/kid_mix"] = KID_MIX[variant][seed]
                features = {"gen_mix_all.npy": _generated(variant, seed), "real_all.npy": REAL}
            run_id = store.child(ablation, parent, variant, seed, metrics=metrics, features=features)
            store.ablation_runs[(variant, seed)] = run_id
    store.child(ablation, parent, "c", 2, metrics={"eval/fid_mix": 1.0}, status="FAILED")
    store.child(ablation, parent, "a", 3, metrics={"eval/fid_mix": 99.0}, extractor="random-init")

    augmentation = store.experiment("augmentation")
    parent = store.parent(augmentation, "augmentation")
    errors = {  # size -> arm -> per-seed error fractions
        "100": {"trad_aug": [0.20, 0.22, 0.21], "mix": [0.10, 0.13, 0.11], "no_aug": [0.30]},
        "200": {"trad_aug": [0.18, 0.19], "mix": [0.09, 0.10]},
    }
    for size, arms in errors.items():
        for seed in range(3):
            metrics = {
                f"downstream/error_{arm}_resnet18": v[seed] for arm, v in arms.items() if seed < len(v)
            }
            if metrics:
                store.child(
                    augmentation,
                    parent,
                    "dt_gan",
                    seed,
                    metrics=metrics,
                    params={"downstream.normals_per_class": size},
                )
    store.experiment("empty")
    foreign = store.experiment("foreign")
    store.run(foreign, {"owner": "someone"}, metrics={"loss": 0.5})
    return store


@pytest.fixture(scope="module")
def ablation_report(store):
    return build_report("ablation", store.uri, config=CONFIG)


def test_ablation_cells_are_mean_std_over_seeds_with_the_extractor_in_the_column(ablation_report):
    table = ablation_report.table("table15_ablation")
    assert table.rows == ["(a)", "(b)", "(c)"]
    assert table.cell("(b)", "fid_mix_all@inception-v3").text == "33.36 ± 1.20 (3 seeds, N=50)"
    assert table.cell("(a)", "fid_mix_all@inception-v3").text == "37.70 ± 0.70 (3 seeds, N=50)"
    assert (
        table.cell("(c)", "fid_mix_all@inception-v3").text == "27.50 ± 0.71 (2 seeds)"
    )  # FAILED run left out; no features, no N
    assert table.cell("(b)", "kid_mix_all@inception-v3").text == "0.011 ± 0.001 (3 seeds, N=50)"
    assert table.column("fid_mix_all@inception-v3").label == "FID mix [inception-v3]"
    # The random-init run never shares a column with Inception numbers.
    assert table.cell("(a)", "fid_mix_all@random-init").text == "99.00 (1 seed)"
    assert table.cell("(b)", "fid_mix_all@random-init").text == "—"


def test_missing_values_are_dashes_with_the_reason_never_zero(ablation_report):
    table = ablation_report.table("table15_ablation")
    kid_c = table.cell("(c)", "kid_mix_all@inception-v3")
    assert kid_c.text == "—" and kid_c.mean is None
    assert kid_c.missing_reason == "no run of (c) logged eval/kid_mix"
    # A column no run logged is dropped, and the table says so.
    assert "FID reference [inception-v3]" not in [c.label for c in table.columns]
    assert "FID reference [inception-v3]" in table.notes[0] and table.notes[0].startswith(
        "not logged by any run"
    )
    assert table.cell("(c)", "fid_mix_all@inception-v3").ci is None
    assert (
        "logged no eval/features/gen_mix_all.npy"
        in table.cell("(c)", "fid_mix_all@inception-v3").ci_missing_reason
    )
    markdown = ablation_report.markdown()
    assert "— [" in markdown and "no run of (c) logged eval/kid_mix" in markdown
    frame = ablation_report.cells()
    row = frame[(frame.row == "(c)") & (frame.column == "KID mix [inception-v3]")].iloc[0]
    assert np.isnan(row["mean"]) and row["text"] == "—"


def _direct_fid(gen: np.ndarray, real: np.ndarray) -> float:
    gen, real = gen.astype(np.float64), real.astype(np.float64)
    s1, s2 = np.cov(gen, rowvar=False), np.cov(real, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((gen.mean(0) - real.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def _direct_replicates(store: Store, variant: str) -> np.ndarray:
    """Mean over seeds of per-run FID replicates, with the documented resample indices, via scipy's sqrtm."""
    real_idx = np.random.default_rng([0, 0]).integers(0, ROWS, size=(100, ROWS))
    per_run = []
    for seed in range(3):
        run_id = store.ablation_runs[(variant, seed)]
        stream = f"{run_id}/eval/features/gen_mix_all.npy"
        gen_idx = np.random.default_rng([0, 1, zlib.crc32(stream.encode())]).integers(
            0, ROWS, size=(100, ROWS)
        )
        gen = _generated(variant, seed)
        per_run.append([_direct_fid(gen[gen_idx[b]], REAL[real_idx[b]]) for b in range(100)])
    return np.mean(per_run, axis=0)


def test_fid_ci_matches_a_direct_bootstrap_with_scipy_sqrtm(store, ablation_report):
    cell = ablation_report.table("table15_ablation").cell("(b)", "fid_mix_all@inception-v3")
    expected = np.percentile(_direct_replicates(store, "b"), [2.5, 97.5])
    np.testing.assert_allclose(cell.ci, expected, rtol=1e-6)
    assert cell.ci[0] < cell.ci[1]


def test_eval_ci_of_a_difference_is_the_paired_bootstrap_but_the_verdict_is_seed_level(
    store, ablation_report
):
    table = ablation_report.table("table15_ablation")
    comparison = next(
        c
        for c in table.comparisons
        if c.column == "fid_mix_all@inception-v3" and {c.row_a, c.row_b} == {"(a)", "(b)"}
    )
    difference = _direct_replicates(store, "a") - _direct_replicates(store, "b")
    np.testing.assert_allclose(comparison.eval_ci, np.percentile(difference, [2.5, 97.5]), rtol=1e-6)
    assert comparison.test.ci == comparison.eval_ci and comparison.eval_ci[0] > 0
    assert comparison.test.p_value == pytest.approx(stats.ttest_rel(FID_MIX["a"], FID_MIX["b"]).pvalue)
    assert comparison.test.significant and comparison.test.kind == "paired t"
    assert comparison.delta == pytest.approx(37.70 - 33.36)
    # (c) logged no features: no eval CI, but its 2 seeds still give a seed-level test.
    no_features = next(
        c
        for c in table.comparisons
        if c.column == "fid_mix_all@inception-v3" and {c.row_a, c.row_b} == {"(a)", "(c)"}
    )
    assert no_features.eval_ci is None and no_features.test.shared_seeds == 2


def test_best_cell_is_marked_only_when_significantly_best_over_seeds(ablation_report):
    table = ablation_report.table("table15_ablation")
    # FID mix: (c) is lowest and below (a) and (b) over the seeds they share, after Holm (m=3).
    assert table.cell("(c)", "fid_mix_all@inception-v3").best
    assert sum(table.cell(r, "fid_mix_all@inception-v3").best for r in table.rows) == 1
    # KID mix: (b) is lowest and its eval CI of the difference to (a) excludes 0 (the images pin both
    # estimates down), but over 3 seeds the difference is not shown (p = 0.23): no mark.
    kid = next(c for c in table.comparisons if c.column == "kid_mix_all@inception-v3")
    assert kid.eval_ci[0] > 0 and not kid.test.significant
    assert not table.cell("(b)", "kid_mix_all@inception-v3").best
    assert "**0.011 ± 0.001" not in ablation_report.markdown()
    assert "**27.50 ± 0.71 (2 seeds)**" in ablation_report.markdown()


def test_classifier_tables_use_percent_and_a_paired_t_test_over_shared_seeds(store):
    report = build_report("augmentation", store.uri, config=CONFIG)
    table2 = report.table("table2_arms_backbones_100")
    assert table2.rows == ["no_aug", "trad_aug", "mix"]
    assert table2.cell("trad_aug", "resnet18").text == "21.00 ± 1.00 (3 seeds)"
    assert table2.cell("no_aug", "resnet18").text == "30.00 (1 seed)"
    comparison = next(c for c in table2.comparisons if {c.row_a, c.row_b} == {"trad_aug", "mix"})
    expected = stats.ttest_rel([20.0, 22.0, 21.0], [10.0, 13.0, 11.0]).pvalue
    assert comparison.test.p_value == pytest.approx(expected)
    assert comparison.test.significant == (expected < 0.05)
    lonely = next(c for c in table2.comparisons if {c.row_a, c.row_b} == {"no_aug", "mix"})
    assert lonely.test is None and lonely.reason.startswith("one seed in A:")
    # no_aug cannot be tested against anything, so mix is not marked although it is lowest.
    assert not table2.cell("mix", "resnet18").best
    table3 = report.table("table3_size_arms_resnet18")
    assert table3.rows == ["100", "200"]
    assert table3.cell("200", "mix").text == "9.50 ± 0.71 (2 seeds)"
    assert table3.cell("200", "no_aug").missing_reason == "no finished run logged no_aug for 200"
    assert "error_vs_size_resnet18" in report.figures


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "experiment 'empty' has no runs"),
        ("foreign", "experiment 'foreign' holds no finished dtgan runs"),
        ("nowhere", "no MLflow experiment named 'nowhere'"),
    ],
)
def test_empty_foreign_or_unknown_experiment_gives_one_clear_line(store, name, message):
    with pytest.raises(ReportError) as error:
        build_report(name, store.uri, config=CONFIG)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
