"""The ablation ladder (a)-(g) x seeds as trial specs: one resolved config per variant and seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dtgan.config.loader import deep_merge, format_validation_error
from dtgan.config.model import TOGGLES, toggles_of_step
from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.tracking.describe import variant_description, variant_run_name


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a study: its stable key (MLflow trial_key, run folder), variant tag, seed and config delta,
    and what the MLflow UI shows: the run name (``c=b+fg_cls-s777``) and a one-line description."""

    trial_key: str
    variant: str
    seed: int
    overrides: dict[str, Any]
    run_name: str = ""
    description: str = ""


def ladder_key(variant: str, seed: int) -> str:
    """``g-seed777``: stable across launches, so a resumed study finds the same trial and run folder."""
    return f"{variant}-seed{seed}"


def ladder_trials(variants: tuple[str, ...], seeds: tuple[int, ...]) -> list[TrialSpec]:
    """Variants x seeds in ladder order. The step alone decides the toggles: each trial's config sets all six
    explicitly to the step's values (so config.yaml and the MLflow params read true/false, never null)."""
    specs = []
    for variant in variants:
        toggles = toggles_of_step(variant)
        for seed in seeds:
            overrides = {
                "model": {"ablation": variant, **{t: getattr(toggles, t) for t in TOGGLES}},
                "train": {"seed": seed},
            }
            specs.append(
                TrialSpec(
                    ladder_key(variant, seed),
                    variant,
                    seed,
                    overrides,
                    variant_run_name(variant, seed),
                    variant_description(variant, seed),
                )
            )
    return specs


def apply_overrides(
    config: DTGANConfig, overrides: dict[str, Any], run_name: str | None = None
) -> DTGANConfig:
    """``config`` with a nested delta merged in (and ``train.run_name``), validated again."""
    data = deep_merge(config.model_dump(mode="json"), overrides)
    if run_name is not None:
        data["train"]["run_name"] = run_name
    try:
        return DTGANConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, DTGANConfig, f"trial {run_name or overrides}")
        ) from None
