"""What a report may call a result: seed-level tests with Holm's correction, the power hint, one-seed tables,
sample sizes, and the floor/ceiling scale rows; all on hand-built MLflow stores (real sqlite + artifacts).

The scale rows are checked on hand-built feature arrays whose FIDs are computed from those arrays (not on real
tiny training runs: a trained-and-evaluated tiny study takes minutes of CPU per run on the shared 2 cores).
"""

from __future__ import annotations

import numpy as np
import pytest
from report_store import Store
from scipy import stats

from dtgan.tracking.report import ReportConfig, build_report
from dtgan.tracking.report.fidelity import CEILING_ROW, FLOOR_ROW
from dtgan.tracking.report.uncertainty import fid_from_features, holm_adjust, kid_from_features

CONFIG = ReportConfig(bootstrap_samples=20, bootstrap_seed=0, floor_splits=4)
FID = "fid_mix_all@inception-v3"
KID = "kid_mix_all@inception-v3"
DIM = 8
REAL = np.random.default_rng(7).normal(size=(80, DIM)).astype(np.float32)
# Holm: (a) - (b) has raw p = 0.029 (< 0.05) but is the smallest of 3 p-values, so Holm multiplies it by 3.
HOLM_B = [40.0, 42.0, 41.0, 43.0, 39.0]
HOLM_A = [b + d for b, d in zip(HOLM_B, [2.0, 0.5, 1.8, 0.2, 1.5], strict=True)]
HOLM_C = [b + d for b, d in zip(HOLM_B, [1.5, -1.0, 2.5, -0.5, 0.6], strict=True)]


def _gen(shift: float, seed: int, rows: int = 60) -> np.ndarray:
    return (np.random.default_rng(100 + seed).normal(size=(rows, DIM)) + shift).astype(np.float32)


def _fid_runs(
    store: Store, name: str, values: dict[str, list[float]], seed_offset: dict[str, int] | None = None
):
    experiment = store.experiment(name)
    parent = store.parent(experiment, "ablation")
    for variant, per_seed in values.items():
        for i, fid in enumerate(per_seed):
            seed = i + (seed_offset or {}).get(variant, 0)
            store.child(experiment, parent, variant, seed, metrics={"eval/fid_mix": fid})


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("mlflow"))
    _fid_runs(store, "one_seed", {"a": [80.0], "b": [60.0], "c": [40.0]})
    noise = np.random.default_rng(3)
    equal = {v: list(50.0 + 2.0 * noise.normal(size=5)) for v in ("a", "b")}
    _fid_runs(store, "equal", equal)
    store.equal = equal
    real = {"a": list(50.0 + 2.0 * noise.normal(size=5)), "b": list(40.0 + 2.0 * noise.normal(size=5))}
    _fid_runs(store, "real_difference", real)
    store.real = real
    _fid_runs(store, "holm", {"a": HOLM_A, "b": HOLM_B, "c": HOLM_C})
    _fid_runs(store, "welch", {"a": [50.0, 52.0, 51.0], "b": [40.0, 41.0, 43.0]}, seed_offset={"b": 10})

    # Scale: (a), (b) trained to different degrees; (c) still where it started. Metrics from the features.
    scale = store.experiment("scale")
    parent = store.parent(scale, "ablation")
    init = {seed: _gen(3.0, 50 + seed) for seed in range(2)}
    store.scale = {}
    for variant, shift in {"a": 0.6, "b": 1.0, "c": 2.95}.items():
        for seed in range(2):
            gen = _gen(shift, seed)
            metrics = {
                "eval/fid_mix": fid_from_features(gen, REAL),
                "eval/kid_mix": kid_from_features(gen, REAL),
                "eval_init/fid_mix": fid_from_features(init[seed], REAL),
                "eval_init/kid_mix": kid_from_features(init[seed], REAL),
            }
            store.scale[(variant, seed)] = metrics
            store.child(
                scale,
                parent,
                variant,
                seed,
                metrics=metrics,
                features={"gen_mix_all.npy": gen, "real_all.npy": REAL},
            )

    # Sample sizes: (a) scored on 60 images per run, (b) on 30.
    sizes = store.experiment("sizes")
    parent = store.parent(sizes, "ablation")
    for variant, (shift, rows) in {"a": (0.5, 60), "b": (1.5, 30)}.items():
        for seed in range(3):
            gen = _gen(shift, seed, rows)
            store.child(
                sizes,
                parent,
                variant,
                seed,
                metrics={
                    "eval/fid_mix": fid_from_features(gen, REAL),
                    "eval/kid_mix": kid_from_features(gen, REAL),
                },
                features={"gen_mix_all.npy": gen, "real_all.npy": REAL},
            )
    return store


def _table(store: Store, name: str):
    return build_report(name, store.uri, config=CONFIG).table("table15_ablation")


def _comparison(table, column: str, a: str, b: str):
    return next(c for c in table.comparisons if c.column == column and {c.row_a, c.row_b} == {a, b})


def test_one_seed_per_variant_marks_no_winner_and_says_so_in_one_line(store):
    report = build_report("one_seed", store.uri, config=CONFIG)
    table = report.table("table15_ablation")
    assert not any(table.cell(r, FID).best for r in table.rows)
    assert all(c.test is None and c.significant_text == "n/a" for c in table.comparisons)
    assert all(c.reason.startswith("one seed in A and B") for c in table.comparisons)
    lines = [n for n in table.notes if n.startswith("one seed per variant")]
    assert len(lines) == 1 and "no winner is marked" in lines[0]
    assert "Note: one seed per variant" in report.markdown() and "**" not in report.markdown()
    assert table.cell("(a)", FID).text == "80.00 (1 seed)"
    assert _comparison(table, FID, "(a)", "(c)").delta == pytest.approx(40.0)  # the difference is still shown


def test_two_equal_recipes_with_seed_noise_are_not_significant(store):
    table = _table(store, "equal")
    comp = _comparison(table, FID, "(a)", "(b)")
    expected = stats.ttest_rel(store.equal["a"], store.equal["b"]).pvalue
    assert comp.test.kind == "paired t" and comp.test.p_value == pytest.approx(expected) and expected > 0.05
    assert not comp.test.significant and not any(table.cell(r, FID).best for r in table.rows)
    # The power hint: the smallest difference detectable with these 5 seeds, from their spread.
    d = np.subtract(store.equal["a"], store.equal["b"])
    se = np.std(d, ddof=1) / np.sqrt(5)
    assert comp.test.min_detectable == pytest.approx((stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * se)
    power = next(n for n in table.notes if n.startswith("smallest detectable difference"))
    assert (
        f"FID mix [inception-v3] {comp.test.min_detectable:.2f}" in power and "not shown, not equal" in power
    )


def test_a_real_difference_over_five_seeds_is_significant_and_bold(store):
    report = build_report("real_difference", store.uri, config=CONFIG)
    table = report.table("table15_ablation")
    comp = _comparison(table, FID, "(a)", "(b)")
    assert comp.test.significant and comp.test.p_adjusted == pytest.approx(comp.test.p_value)  # m = 1
    assert comp.test.p_value == pytest.approx(stats.ttest_rel(store.real["a"], store.real["b"]).pvalue)
    assert table.cell("(b)", FID).best and not table.cell("(a)", FID).best
    assert f"**{table.cell('(b)', FID).text}**" in report.markdown()
    frame = report.comparisons()
    assert frame.loc[0, "test"] == "paired t" and frame.loc[0, "significant"] == "yes"


def test_holm_turns_a_borderline_raw_p_into_not_significant(store):
    table = _table(store, "holm")
    comp = _comparison(table, FID, "(a)", "(b)")
    raw = [stats.ttest_rel(x, y).pvalue for x, y in ((HOLM_A, HOLM_B), (HOLM_A, HOLM_C), (HOLM_B, HOLM_C))]
    assert (
        comp.test.p_value == pytest.approx(raw[0]) and comp.test.p_value < 0.05
    )  # uncorrected: "significant"
    assert comp.test.p_adjusted == pytest.approx(3 * raw[0]) and not comp.test.significant
    assert holm_adjust(raw)[0] == pytest.approx(3 * raw[0])
    assert not any(table.cell(r, FID).best for r in table.rows)
    assert any("Holm" in n and "(m=3)" in n for n in table.notes)


def test_holm_adjusted_p_values_are_step_down_and_monotone():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm_adjust([]) == []


def test_unmatched_seeds_are_compared_with_welch(store):
    comp = _comparison(_table(store, "welch"), FID, "(a)", "(b)")
    expected = stats.ttest_ind([50.0, 52.0, 51.0], [40.0, 41.0, 43.0], equal_var=False).pvalue
    assert comp.test.kind == "Welch t" and comp.test.shared_seeds == 0
    assert comp.test.p_value == pytest.approx(expected) and comp.test.seeds == (3, 3)


def test_floor_below_every_trained_row_ceiling_above_and_a_stuck_run_is_not_trained(store):
    report = build_report("scale", store.uri, config=CONFIG)
    table = report.table("table15_ablation")
    assert table.display_rows == [CEILING_ROW, "(a)", "(b)", "(c)", FLOOR_ROW]
    for column in (FID, KID):
        floor, ceiling = table.cell(FLOOR_ROW, column), table.cell(CEILING_ROW, column)
        trained = [table.cell(r, column).mean for r in table.rows]
        assert floor.mean < min(trained) and ceiling.mean > max(trained)
        assert ceiling.mean == pytest.approx(
            np.mean([store.scale[("a", s)][f"eval_init/{column[:3]}_mix"] for s in range(2)])
        )
        assert 0.0 < table.cell("(b)", column).position < table.cell("(a)", column).position < 1.0
        assert table.cell("(c)", column).not_trained and not table.cell("(a)", column).not_trained
    floor = table.cell(FLOOR_ROW, FID)
    assert floor.text.startswith(f"{floor.mean:.2f} (real halves, N=40 vs 40)") and floor.ci[0] <= floor.mean
    assert table.cell(CEILING_ROW, FID).text.startswith(f"{table.cell(CEILING_ROW, FID).mean:.2f} ± ")
    assert "(6 runs at step 0)" in table.cell(CEILING_ROW, FID).text
    assert table.cell("(a)", FID).text.endswith("(2 seeds, N=60)")
    assert any(n == "not trained (did not move away from its initialisation): (c)" for n in table.notes)
    # Scale rows are references: never compared, never bold; they appear in every format.
    assert all(
        CEILING_ROW not in (c.row_a, c.row_b) and FLOOR_ROW not in (c.row_a, c.row_b)
        for c in table.comparisons
    )
    markdown = report.markdown()
    assert (
        markdown.index(f"| {CEILING_ROW} |") < markdown.index("| (a) |") < markdown.index(f"| {FLOOR_ROW} |")
    )
    assert "not trained" in markdown
    cells = report.cells()
    assert set(cells.role) == {"trained", "floor", "ceiling"}
    assert cells.loc[(cells.row == "(c)") & (cells.column == "FID mix [inception-v3]"), "not_trained"].item()
    assert (
        cells.loc[(cells.row == FLOOR_ROW) & (cells.column == "FID mix [inception-v3]"), "images"].item()
        == 40
    )


def test_floor_is_the_fid_of_disjoint_real_halves(store):
    table = _table(store, "scale")
    rng = np.random.default_rng([0, 2])
    splits = []
    for _ in range(CONFIG.floor_splits):
        order = rng.permutation(len(REAL))
        splits.append(fid_from_features(REAL[order[:40]], REAL[order[40:]]))
    assert table.cell(FLOOR_ROW, FID).mean == pytest.approx(np.mean(splits))


def test_fid_on_different_sample_sizes_is_not_compared_but_kid_is(store):
    report = build_report("sizes", store.uri, config=CONFIG)
    table = report.table("table15_ablation")
    assert (
        table.cell("(a)", FID).text.endswith("(3 seeds, N=60)")
        and table.cell("(b)", FID).images_text == "N=30"
    )
    fid = _comparison(table, FID, "(a)", "(b)")
    assert fid.test is None and fid.reason.startswith("FID on different N (N=60 vs N=30")
    kid = _comparison(table, KID, "(a)", "(b)")
    assert kid.test is not None and kid.test.kind == "paired t"
    assert any(n.startswith("FID cells scored on different numbers of images") for n in table.notes)
    assert "FID on different N" in report.markdown()
