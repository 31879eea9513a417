"""Resolve a config: YAML preset (with one ``base:`` key for inheritance) + dotted overrides -> DTGANConfig."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.utils.strict_yaml import safe_load_strict

PRESET_DIR_ENV = "DTGAN_PRESET_DIR"
_REPO_PRESETS = Path(__file__).resolve().parents[3] / "experiments" / "presets"
_MAX_BASE_DEPTH = 16


def preset_dirs() -> list[Path]:
    """Folders searched for a preset given by name, in order."""
    dirs = []
    if os.environ.get(PRESET_DIR_ENV):
        dirs.append(Path(os.environ[PRESET_DIR_ENV]))
    dirs += [Path.cwd() / "experiments" / "presets", _REPO_PRESETS]
    return dirs


def find_preset(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A preset file from a path, or a name looked up in the preset folders."""
    candidate = Path(name_or_path)
    tries = [candidate]
    if relative_to is not None:
        tries.append(relative_to / candidate)
    if candidate.suffix not in (".yaml", ".yml"):
        tries += [d / f"{candidate}.yaml" for d in preset_dirs()]
        if relative_to is not None:
            tries.insert(0, relative_to / f"{candidate}.yaml")
    for path in tries:
        if path.is_file():
            return path.resolve()
    available = sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(
        f"preset '{name_or_path}' not found; available presets: {', '.join(available) or 'none'}"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = safe_load_strict(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (binary?); a preset is a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of sections, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``delta`` on top of ``base``; mappings merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_preset_dict(name_or_path: str | Path, _depth: int = 0) -> dict[str, Any]:
    """The preset's mapping with its ``base:`` chain merged underneath."""
    if _depth > _MAX_BASE_DEPTH:
        raise ConfigError(f"preset '{name_or_path}': 'base:' chain deeper than {_MAX_BASE_DEPTH} (a cycle?)")
    path = find_preset(name_or_path)
    data = _resolve_preset_paths(_read_yaml(path), path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be one preset name or path, got {base!r}")
    parent = load_preset_dict(find_preset(base, relative_to=path.parent), _depth + 1)
    return deep_merge(parent, data)


# Keys of a preset that name a file: a relative one is relative to the preset file, so a bundled preset works
# from any working directory.
PRESET_PATH_KEYS = (("study", "search_space"),)


def _resolve_preset_paths(data: dict[str, Any], preset: Path) -> dict[str, Any]:
    """``data`` with each relative :data:`PRESET_PATH_KEYS` file made absolute against ``preset``'s folder
    (kept as written when only the working directory has it: presets written before this rule)."""
    for section, key in PRESET_PATH_KEYS:
        block = data.get(section)
        value = block.get(key) if isinstance(block, dict) else None
        if not isinstance(value, str) or "://" in value or Path(value).expanduser().is_absolute():
            continue
        beside = (preset.parent / value).resolve()
        if beside.exists() or not Path(value).exists():
            data = deep_merge(data, {section: {key: str(beside)}})
    return data


def nest(params: dict[str, Any]) -> dict[str, Any]:
    """``{"loss.lambda_cyc": 2.0}`` -> ``{"loss": {"lambda_cyc": 2.0}}`` (a config delta)."""
    nested: dict[str, Any] = {}
    for dotted, value in params.items():
        cursor = nested
        parts = dotted.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
    return nested


def parse_override(text: str) -> dict[str, Any]:
    """``loss.lambda_cyc=2`` -> ``{"loss": {"lambda_cyc": 2}}``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' must look like section.key=value, e.g. loss.lambda_cyc=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return nest({key: value})


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` (a key path) inside ``model``."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return sorted(getattr(current, "model_fields", {}))


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line: the first problem with its dotted key, what is allowed, and the value given."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(str(p) for p in first["loc"])
    key = ".".join(loc) or "(root)"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(model, loc[:-1]))
        msg = f"unknown key '{key}'; allowed here: {allowed}"
    elif first["type"] == "value_error":
        where = f"'{key}': " if loc else ""
        msg = f"{where}{first['msg'].removeprefix('Value error, ')}"
    else:
        msg = f"'{key}': {first['msg']} (got {first.get('input')!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"config error in {source}: {msg}{more}"


def load_config(preset: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> DTGANConfig:
    """Resolve ``preset`` (None = embedded defaults) and ``overrides`` into a validated config."""
    data = load_preset_dict(preset) if preset is not None else {}
    for text in overrides:
        data = deep_merge(data, parse_override(text))
    if preset is not None and "preset" not in data:
        data["preset"] = Path(str(preset)).stem
    source = f"preset '{preset}'" if preset is not None else "the embedded defaults"
    if overrides:
        source += " with overrides"
    try:
        return DTGANConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, DTGANConfig, source)) from None


def config_from_dict(data: dict[str, Any]) -> DTGANConfig:
    """A config saved with a run (e.g. inside a checkpoint) back as a validated object."""
    try:
        return DTGANConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, DTGANConfig, "the saved config")) from None


def to_yaml(config: DTGANConfig) -> str:
    """The resolved config as YAML, every field written out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def flatten(config: DTGANConfig | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> scalar values (MLflow params, search spaces)."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat
