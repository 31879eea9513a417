"""Settings of a report: bootstrap size, seed and significance level."""

from __future__ import annotations

from pydantic import Field

from dtgan.config.base import Section


class ReportConfig(Section):
    """How uncertainty is estimated; the report reads everything else from the experiment."""

    bootstrap_samples: int = Field(
        200,
        ge=10,
        le=100_000,
        description="bootstrap replicates B per FID/KID: rows of the generated and real feature sets resampled",
    )
    bootstrap_seed: int = Field(
        0, ge=0, description="seed of the bootstrap resampling (results are reproducible)"
    )
    significance_alpha: float = Field(
        0.05,
        gt=0.0,
        lt=0.5,
        description="alpha of the seed-level tests (paired t over shared seeds, else Welch t; Holm-corrected per "
        "column); eval CIs (bootstrap over images) are (1 - alpha) percentile intervals",
    )
    kid_subset_rows: int = Field(
        1000,
        ge=10,
        description="rows drawn (with replacement) from each feature set per KID bootstrap replicate; bounds the n^2 cost",
    )
    floor_splits: int = Field(
        10,
        ge=2,
        le=1000,
        description="random splits of the real features into two disjoint halves for the floor row (real vs real)",
    )
    not_trained_below: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="a row whose mean moved less than this fraction of the way from its ceiling (step-0 networks) "
        "to the floor (real vs real) is flagged 'not trained'",
    )
