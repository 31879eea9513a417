"""Resolve where tracking goes: the tracking URI and the artifact root, made absolute for every process."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import urllib.parse
from pathlib import Path

from dtgan.config.tracking import TrackingConfig
from dtgan.errors import TrackingError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_DB_FILE = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
_SQLITE_PREFIX = "sqlite:///"
_LOCAL_SCHEMES = ("sqlite", "file")


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0]


def is_local_store(uri: str) -> bool:
    """True for stores on this machine's disk (sqlite, file), which need a local artifact root."""
    return _scheme(uri) in _LOCAL_SCHEMES


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for other stores."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    return Path(uri.removeprefix(_SQLITE_PREFIX).split("?", 1)[0])


def resolve_tracking_uri(cfg: TrackingConfig, cwd: str | Path | None = None) -> str:
    """``cfg.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``.

    A relative sqlite path is made absolute against ``cwd`` so that trial processes, which Ray starts in
    other working directories, write to the driver's database.
    """
    base = Path(cwd if cwd is not None else os.getcwd()).resolve()
    uri = cfg.tracking_uri or os.environ.get(TRACKING_URI_ENV) or f"{_SQLITE_PREFIX}{base / DEFAULT_DB_FILE}"
    if cfg.tracking_uri is None and os.environ.get(TRACKING_URI_ENV):
        try:
            TrackingConfig(tracking_uri=uri)
        except ValueError:
            raise TrackingError(
                f"${TRACKING_URI_ENV}='{uri}' is not a tracking URI; use e.g. sqlite:///mlflow.db or "
                "http://127.0.0.1:5000, or set tracking.tracking_uri"
            ) from None
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        uri = f"{_SQLITE_PREFIX}{base / path}"
    return uri


def resolve_artifact_root(
    cfg: TrackingConfig, tracking_uri: str, cwd: str | Path | None = None
) -> str | None:
    """Absolute artifact root URI for new experiments, or None to let a tracking server choose.

    MLflow puts the artifacts of a local store relative to the *current* directory unless the experiment
    names an absolute location, so local stores always get one (``<cwd>/mlartifacts`` by default).
    """
    base = Path(cwd if cwd is not None else os.getcwd()).resolve()
    root = cfg.artifact_root
    if root is None:
        return (base / DEFAULT_ARTIFACT_DIR).as_uri() if is_local_store(tracking_uri) else None
    if "://" in root:
        return root.rstrip("/")
    return (base / Path(root).expanduser()).resolve().as_uri()


def check_store_exists(uri: str, option: str = "--tracking-uri") -> None:
    """For readers (reports): a local store (sqlite file, file: folder) must exist; opening a missing one
    would create an empty store, and its folders, where the user mistyped a path."""
    if not is_local_store(uri):
        check_store_usable(uri, option)
        return
    path = sqlite_path(uri)
    if path is None:
        path = Path(urllib.parse.urlparse(uri).path)
        missing = not path.is_dir()
    else:
        missing = not path.is_file()
    if missing:
        raise TrackingError(
            f"{option} {uri}: no MLflow store at {path} (nothing was created); point it at the study's "
            "store, e.g. sqlite:///mlflow.db in the folder the study ran from"
        )
    check_store_usable(uri, option)


# The tables every MLflow SQL store has; a database without them is someone else's.
MLFLOW_TABLES = frozenset({"alembic_version", "experiments", "runs"})
SQLITE_HEADER = b"SQLite format 3\x00"
SERVER_TIMEOUT_S = 5.0


def check_store_usable(uri: str, option: str = "--tracking-uri") -> None:
    """Before MLflow opens ``uri``: an existing sqlite file must be an MLflow store (MLflow would add its tables
    to any database) and a tracking server must answer (MLflow retries for minutes). One-line TrackingError."""
    path = sqlite_path(uri)
    if path is not None:
        check_mlflow_database(path, f"{option} {uri}")
    elif _scheme(uri) in ("http", "https"):
        check_server_reachable(uri, option)


def check_mlflow_database(path: Path, where: str) -> None:
    """An existing, non-empty database file is an MLflow store (an empty one is fine: MLflow creates it)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise TrackingError(
            f"{where}: {path} is not an SQLite database (nothing was changed); point it at an MLflow store, "
            "e.g. the mlflow.db a study wrote"
        )
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise TrackingError(f"{where}: cannot read the database {path} ({exc}); check the file") from None
    if tables and not MLFLOW_TABLES <= tables:
        raise TrackingError(
            f"{where}: {path} is an SQLite database but not an MLflow store (no experiments/runs tables; "
            "nothing was changed); point it at an MLflow store or a new file"
        )


def check_server_reachable(uri: str, option: str = "--tracking-uri") -> None:
    """A TCP connection to the tracking server within a few seconds, or a one-line TrackingError."""
    parsed = urllib.parse.urlparse(uri)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=SERVER_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TrackingError(
            f"{option} {uri}: the tracking server does not answer ({reason}); start it (mlflow server) or "
            f"point {option} / ${TRACKING_URI_ENV} at a reachable store"
        ) from None
