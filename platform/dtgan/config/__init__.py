"""Configuration: pydantic schemas, YAML presets with ``base:`` inheritance, dotted overrides."""

from dtgan.config.loader import flatten, load_config, to_yaml
from dtgan.config.root import DTGANConfig

__all__ = ["DTGANConfig", "flatten", "load_config", "to_yaml"]
