"""Uncertainty and search-plot helpers of the report, checked against direct numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from dtgan.tracking.report.runs import RunRecord
from dtgan.tracking.report.search_plots import parameter_importance, pareto_mask, search_figures, trials_frame
from dtgan.tracking.report.uncertainty import fid_from_features, kid_from_features, seed_test


@pytest.mark.parametrize(("rows_gen", "dim"), [(50, 8), (12, 40)])  # full-rank and low-rank (N < D) paths
def test_fid_equals_the_sqrtm_formula(rows_gen, dim):
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(rows_gen, dim)) + 0.5, rng.normal(size=(60, dim))
    s1, s2 = np.cov(gen, rowvar=False), np.cov(real, rowvar=False)
    expected = np.sum((gen.mean(0) - real.mean(0)) ** 2) + np.trace(
        s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real
    )
    assert fid_from_features(gen, real) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(real, real) == pytest.approx(0.0, abs=1e-8)


def test_kid_is_the_unbiased_cubic_kernel_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 8)), rng.normal(size=(30, 8)) + 1.0
    k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
    expected = (
        (k(x, x).sum() - np.trace(k(x, x))) / (20 * 19)
        + (k(y, y).sum() - np.trace(k(y, y))) / (30 * 29)
        - 2 * k(x, y).mean()
    )
    assert kid_from_features(x, y) == pytest.approx(expected)


def test_the_paired_t_test_needs_two_shared_seeds():
    welch = seed_test({"0": 1.0, "1": 2.0}, {"1": 1.0, "2": 3.0}, 0.05)  # one shared seed: Welch's t instead
    assert welch.kind == "Welch t" and welch.shared_seeds == 1
    constant = seed_test({"0": 2.0, "1": 3.0}, {"0": 1.0, "1": 2.0}, 0.05)
    assert constant.kind == "paired t" and constant.p_value == 0.0 and constant.significant
    assert constant.delta == 1.0


def test_pareto_front_keeps_only_non_dominated_trials():
    points = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
    assert pareto_mask(points, ("min", "min")).tolist() == [True, True, False, True]
    assert pareto_mask(points, ("min", "max")).tolist() == [True, False, False, False]


def _trial(i: int, lam: float, fid: float, err: float) -> RunRecord:
    return RunRecord(
        f"r{i}",
        "FINISHED",
        {"variant": f"t{i}"},
        {"loss.lambda_cyc": str(lam), "preset": "smoke"},
        {"eval/fid_mix": fid, "downstream/error_mix_resnet18": err},
    )


def test_search_plots_rank_the_varied_parameter_and_draw_the_front():
    trials = [
        _trial(i, lam, fid, err)
        for i, (lam, fid, err) in enumerate(
            [(0.5, 40.0, 0.2), (1.0, 35.0, 0.3), (2.0, 30.0, 0.25), (4.0, 20.0, 0.4)]
        )
    ]
    frame = trials_frame(trials, [("eval/fid_mix", "min")])
    assert list(frame.columns) == ["loss.lambda_cyc", "eval/fid_mix"]  # the constant "preset" is not varied
    assert parameter_importance(frame, "eval/fid_mix")["loss.lambda_cyc"] == pytest.approx(1.0)
    figures = search_figures(trials, "eval/fid_mix:min,downstream/error_mix_resnet18:min")
    assert set(figures) == {"search_param_importance", "search_parallel_coordinates", "search_pareto_front"}
