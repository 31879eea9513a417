"""Search spaces as YAML data: dotted config key -> distribution, checked against the config schema.

Example (``experiments/search/lambdas.yaml``)::

    loss.lambda_cyc: {type: loguniform, low: 0.1, high: 10}
    model.ablation: {type: choice, values: [e, f, g]}

Types: ``uniform``/``loguniform`` (floats in [low, high]), ``int`` (integers in [low, high]), ``choice``
(one of ``values``). The Ray Tune adapter turns them into Tune/Optuna distributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from dtgan.config.loader import flatten
from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.utils.strict_yaml import safe_load_strict

DistributionType = Literal["uniform", "loguniform", "int", "choice"]
DISTRIBUTION_TYPES = ("uniform", "loguniform", "int", "choice")


@dataclass(frozen=True)
class Dimension:
    """One searched config key and its distribution."""

    key: str
    type: DistributionType
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()


def _dimension(path: Path, key: str, spec: Any, known: set[str]) -> Dimension:
    where = f"{path}: '{key}'"
    if key not in known:
        raise ConfigError(
            f"{where} is not a config key; use dotted keys such as loss.lambda_cyc or model.ablation"
        )
    if not isinstance(spec, dict) or spec.get("type") not in DISTRIBUTION_TYPES:
        raise ConfigError(f"{where}: needs 'type' one of {', '.join(DISTRIBUTION_TYPES)}, got {spec!r}")
    extra = set(spec) - ({"type", "values"} if spec["type"] == "choice" else {"type", "low", "high"})
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {sorted(extra)} for type {spec['type']}")
    if spec["type"] == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: type choice needs a non-empty list 'values'")
        return Dimension(key, "choice", values=tuple(values))
    low, high = spec.get("low"), spec.get("high")
    if not isinstance(low, int | float) or not isinstance(high, int | float) or not low < high:
        raise ConfigError(f"{where}: needs numbers low < high, got low={low!r} high={high!r}")
    if spec["type"] == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0, got {low}")
    if spec["type"] == "int" and (int(low) != low or int(high) != high):
        raise ConfigError(f"{where}: type int needs integer bounds, got {low}..{high}")
    return Dimension(key, spec["type"], float(low), float(high))


def load_search_space(path: str | Path) -> list[Dimension]:
    """The dimensions of a YAML search space file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space {path} does not exist; see experiments/search/*.yaml for examples")
    try:
        data = safe_load_strict(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (binary?); a search space is a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"{path}: a search space is a non-empty mapping of dotted config keys to distributions"
        )
    known = set(flatten(DTGANConfig()))
    return [_dimension(path, str(key), spec, known) for key, spec in data.items()]
