"""A search's sampled points, recorded as JSON in each trial's run folder: what a resumed search proposes again
first (so that those trials keep their keys, MLflow runs and checkpoints) instead of Tune's pickled state."""

from __future__ import annotations

import json
import time
from typing import Any

from dtgan.errors import ConfigError
from dtgan.storage import Storage

SEARCH_POINT_FILE = (
    "search_point.json"  # in a search trial's run folder: its sampled point (JSON, never pickled)
)


def canonical_point(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def record_search_point(runs_uri: str, trial_key: str, point: dict[str, Any]) -> None:
    """The trial's sampled point in its run folder (``<runs_uri>/<trial_key>``) in the study storage, before it
    trains: what ``--resume`` reads back (``earlier_search_points``) instead of Tune's pickled searcher state."""
    folder = Storage.at(runs_uri).child(trial_key)
    if not folder.is_file(SEARCH_POINT_FILE):
        record = {"trial_key": trial_key, "point": point, "recorded_unix": time.time()}
        folder.write_bytes(SEARCH_POINT_FILE, json.dumps(record, sort_keys=True).encode())


def earlier_search_points(runs_uri: str) -> list[tuple[str, dict[str, Any]]]:
    """(trial key, point) of every search trial an earlier launch of this study started, oldest first. A record
    that is not the JSON this module writes is one line naming it."""
    runs = Storage.at(runs_uri)
    records = []
    for name in runs.list_dirs():
        if not runs.child(name).is_file(SEARCH_POINT_FILE):
            continue
        uri = runs.child(name, SEARCH_POINT_FILE).uri
        try:
            record = json.loads(runs.child(name).read_bytes(SEARCH_POINT_FILE))
            key, point, when = record["trial_key"], record["point"], float(record["recorded_unix"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{uri}: not a search point record; delete it to resume without that trial"
            ) from None
        if key != name or not isinstance(point, dict):
            raise ConfigError(f"{uri}: its trial key or point does not match its folder; delete it")
        records.append((when, key, point))
    return [(key, point) for _, key, point in sorted(records, key=lambda r: (r[0], r[1]))]
