"""Uncertainty of the reported numbers: bootstrap CIs of FID/KID from features, paired tests between cells.

Bootstrap (per run and feature set): replicate b resamples the rows of the real set with the indices
``real_indices(seed, n_real)[b]``, shared by every run of the report (so that two cells measured against the
same real set are compared on the same resample, a paired bootstrap), and the rows of the generated set from a
stream keyed by the run and the set. A cell's replicates are the mean over its seed runs; its CI is the
percentile interval: the *eval CI*, how precisely the evaluation images pinned each score down. It says
nothing about another training seed.

Whether one recipe beats another is decided on seed-level evidence only (:func:`seed_test`): a paired t-test
over the seeds both cells share (>= 2), otherwise Welch's t-test (>= 2 seeds each), with Holm's step-down
correction over the comparisons of one column (:func:`holm_adjust`). With fewer seeds nothing is called
significant. Each test also gives the smallest difference it could have detected (:func:`min_detectable`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_SHARED_SEEDS = 2
MIN_SEEDS = 2  # per cell, for Welch's test and a seed spread
POWER = 0.8  # of the smallest detectable difference


def _trace_sqrt_product(a_centered: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr sqrtm(Σa Σb) for Σa = aᵀa / (n - 1), via a symmetric PSD matrix with the same nonzero eigenvalues.

    Σa Σb is similar to Σa^½ Σb Σa^½; when n < D its nonzero eigenvalues equal those of a Σb aᵀ / (n - 1),
    an (n, n) matrix. Both are symmetric, so eigvalsh gives real eigenvalues; tiny negative round-off is
    clipped to 0 (this replaces sqrtm's complex round-off and its eps offset for singular covariances).
    """
    n, d = a_centered.shape
    if n < d:
        gram = a_centered @ sigma_b @ a_centered.T / (n - 1)  # (n, n)
    else:
        w, v = np.linalg.eigh(a_centered.T @ a_centered / (n - 1))
        root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # Σa^½ (D, D)
        gram = root @ sigma_b @ root
    eigenvalues = np.linalg.eigvalsh((gram + gram.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def fid_from_features(features_gen: np.ndarray, features_real: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N1, D), (N2, D), in float64."""
    x1 = np.asarray(features_gen, dtype=np.float64)
    x2 = np.asarray(features_real, dtype=np.float64)
    a = x1 - x1.mean(axis=0)
    b = x2 - x2.mean(axis=0)
    sigma_a = a.T @ a / (len(a) - 1)
    sigma_b = b.T @ b / (len(b) - 1)
    mean_term = float(np.sum((x1.mean(axis=0) - x2.mean(axis=0)) ** 2))
    # tr sqrtm(Σa Σb) = tr sqrtm(Σb Σa): take the smaller set's rows for the cheaper (n, n) path.
    cross = _trace_sqrt_product(a, sigma_b) if len(a) <= len(b) else _trace_sqrt_product(b, sigma_a)
    return mean_term + float(np.trace(sigma_a) + np.trace(sigma_b)) - 2.0 * cross


def kid_from_features(features_gen: np.ndarray, features_real: np.ndarray) -> float:
    """Unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³ (Binkowski et al., 2018)."""
    x = np.asarray(features_gen, dtype=np.float64)
    y = np.asarray(features_real, dtype=np.float64)
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float(
        (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
        - 2.0 * k_xy.mean()
    )


def real_indices(seed: int, n_real: int, samples: int) -> np.ndarray:
    """(B, n_real) resample indices of the real set; the same for every run with a real set of that size."""
    return np.random.default_rng([seed, 0]).integers(0, n_real, size=(samples, n_real))


def generated_indices(seed: int, stream: str, n_gen: int, samples: int) -> np.ndarray:
    """(B, n_gen) resample indices of a generated set; ``stream`` names the run and set (e.g. "RUNID/gen_mix_all")."""
    return np.random.default_rng([seed, 1, zlib.crc32(stream.encode())]).integers(
        0, n_gen, size=(samples, n_gen)
    )


@dataclass(frozen=True)
class Replicates:
    """B bootstrap values of FID and KID for one run and one generated/real pair of feature sets."""

    fid: np.ndarray  # (B,)
    kid: np.ndarray  # (B,)


def bootstrap_fidelity(
    features_gen: np.ndarray,
    features_real: np.ndarray,
    stream: str,
    samples: int,
    seed: int,
    kid_subset_rows: int,
) -> Replicates:
    """Replicates of FID (full resampled sets) and KID (the first ``kid_subset_rows`` resampled rows of each)."""
    real_idx = real_indices(seed, len(features_real), samples)
    gen_idx = generated_indices(seed, stream, len(features_gen), samples)
    fid = np.empty(samples)
    kid = np.empty(samples)
    for b in range(samples):
        fid[b] = fid_from_features(features_gen[gen_idx[b]], features_real[real_idx[b]])
        kid[b] = kid_from_features(
            features_gen[gen_idx[b, :kid_subset_rows]], features_real[real_idx[b, :kid_subset_rows]]
        )
    return Replicates(fid, kid)


def percentile_ci(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """The (1 - alpha) percentile interval of bootstrap replicates."""
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedTest:
    """Outcome of comparing two cells: the statistic and whether the difference is significant.

    ``significant`` is seed-level evidence only (``p_adjusted < alpha``); ``ci`` is the eval CI of the
    difference (bootstrap over images), shown for precision, never used for the verdict.
    """

    delta: float  # mean(a) - mean(b)
    significant: bool
    ci: tuple[float, float] | None = None  # eval CI (bootstrap over images) of the difference
    p_value: float | None = None  # seed-level test, uncorrected
    shared_seeds: int | None = None
    kind: str | None = None  # "paired t" | "Welch t"
    p_adjusted: float | None = None  # Holm over the comparisons of the column
    min_detectable: float | None = None  # smallest |difference| detectable at alpha with POWER
    seeds: tuple[int, int] | None = None  # seeds of A and B


def min_detectable(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """Smallest true |difference| a two-sided t-test at ``alpha`` detects with probability ``power``:
    (t_{1-alpha/2, df} + t_{power, df}) * se (the usual normal-approximation formula with t quantiles)."""
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def _p_from_constant(difference: float) -> float:
    # Zero spread: t is infinite (or undefined when the difference is 0 too); scipy returns nan.
    return 0.0 if difference != 0 else 1.0


def seed_test(values_a: dict[str, float], values_b: dict[str, float], alpha: float) -> PairedTest | str:
    """Seed-level test of two cells (seed -> value): paired t over >= 2 shared seeds, else Welch's t with
    >= 2 seeds each; the reason (a string) when neither is possible. ``significant`` is uncorrected here
    (:func:`holm_adjust` sets the final verdict)."""
    a_all = np.array(list(values_a.values()), dtype=np.float64)
    b_all = np.array(list(values_b.values()), dtype=np.float64)
    delta = float(a_all.mean() - b_all.mean())
    shared = sorted(set(values_a) & set(values_b))
    if len(shared) >= MIN_SHARED_SEEDS:
        d = np.array([values_a[s] - values_b[s] for s in shared], dtype=np.float64)
        n = len(d)
        sd = float(np.std(d, ddof=1))
        if np.allclose(d, d[0]):
            p_value = _p_from_constant(float(d[0]))
        else:
            p_value = float(
                stats.ttest_rel([values_a[s] for s in shared], [values_b[s] for s in shared]).pvalue
            )
        mdd = min_detectable(sd / np.sqrt(n), n - 1, alpha)
        return PairedTest(
            delta=delta,
            significant=p_value < alpha,
            p_value=p_value,
            shared_seeds=n,
            kind="paired t",
            min_detectable=mdd,
            seeds=(len(a_all), len(b_all)),
        )
    if len(a_all) < MIN_SEEDS or len(b_all) < MIN_SEEDS:
        lonely = " and ".join(name for name, v in (("A", a_all), ("B", b_all)) if len(v) < MIN_SEEDS)
        return f"one seed in {lonely}: no seed-level test (the eval CI is not evidence between recipes)"
    var_a, var_b = np.var(a_all, ddof=1) / len(a_all), np.var(b_all, ddof=1) / len(b_all)
    se = float(np.sqrt(var_a + var_b))
    if se == 0.0:
        p_value, df = _p_from_constant(delta), float(len(a_all) + len(b_all) - 2)
    else:
        p_value = float(stats.ttest_ind(a_all, b_all, equal_var=False).pvalue)
        df = float((var_a + var_b) ** 2 / (var_a**2 / (len(a_all) - 1) + var_b**2 / (len(b_all) - 1)))
    return PairedTest(
        delta=delta,
        significant=p_value < alpha,
        p_value=p_value,
        shared_seeds=len(shared),
        kind="Welch t",
        min_detectable=min_detectable(se, df, alpha),
        seeds=(len(a_all), len(b_all)),
    )


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1): reject where adjusted p < alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()
