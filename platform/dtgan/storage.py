"""Study storage: a local folder or any ``pyarrow.fs`` URI (``s3://bucket/prefix``, ``gs://...``), one layer.

Everything a study keeps beyond MLflow (the launch folders, the trials' run folders with their checkpoints and
evaluation outputs, the study's shared files) goes through :class:`Storage`, never through ``pathlib``, so that
``DTGAN_STORAGE_PATH=s3://...`` on a cluster means the bucket and not a local folder named ``s3:``. Ray Tune and
Ray Train read the same URIs through the same library (pyarrow), so one set of credentials serves all three.

Credentials and endpoints come from the standard environment (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, an
instance role; ``AWS_ENDPOINT_URL`` for MinIO or another S3-compatible store), as pyarrow reads them.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from dtgan.errors import ConfigError
from dtgan.utils.atomic import atomic_path

_DIR, _FILE, _MISSING = pafs.FileType.Directory, pafs.FileType.File, pafs.FileType.NotFound


def is_uri(location: str | os.PathLike) -> bool:
    """A ``scheme://`` location (not a local path)."""
    return "://" in str(location)


class StorageError(ConfigError):
    """A storage location that cannot be used; the message is one line naming the URI and what to do."""


@dataclass(frozen=True)
class Storage:
    """A folder in a local or remote file system; ``child`` names a folder below it."""

    uri: str  # as given, absolute for local paths, no trailing slash
    fs: pafs.FileSystem = field(repr=False, compare=False)
    base: str  # the path inside ``fs``

    @classmethod
    def at(cls, location: str | os.PathLike) -> Storage:
        """The storage at ``location``: a local path (made absolute) or a URI pyarrow understands."""
        text = str(location).rstrip("/") or "/"
        if not is_uri(text):
            path = str(Path(text).expanduser().resolve())
            return cls(path, pafs.LocalFileSystem(), path)
        try:
            fs, base = pafs.FileSystem.from_uri(text)
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise StorageError(
                f"{text}: not a storage location pyarrow can open ({_first_line(exc)})"
            ) from None
        return cls(text, fs, base.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def local_path(self) -> Path:
        """The folder as a local path (local storage only)."""
        if not self.is_local:
            raise ValueError(f"{self.uri} is not a local folder")
        return Path(self.base)

    @property
    def name(self) -> str:
        return posixpath.basename(self.base)

    def child(self, *parts: str) -> Storage:
        joined = posixpath.join(self.base, *parts)
        uri = joined if self.is_local else f"{self.uri}/{'/'.join(parts)}"
        return Storage(uri, self.fs, joined)

    def _path(self, relative: str = "") -> str:
        return posixpath.join(self.base, relative) if relative else self.base

    def _type(self, relative: str = "") -> pafs.FileType:
        try:
            return self.fs.get_file_info(self._path(relative)).type
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot read ({_first_line(exc)})") from None

    def is_dir(self, relative: str = "") -> bool:
        return self._type(relative) == _DIR

    def is_file(self, relative: str = "") -> bool:
        return self._type(relative) == _FILE

    def list_dirs(self) -> list[str]:
        """Names of the folders directly below (none when the folder does not exist)."""
        return sorted(i.base_name for i in self._list(recursive=False) if i.type == _DIR)

    def files(self) -> dict[str, int]:
        """Every file below, as relative POSIX path -> size."""
        prefix = self.base.rstrip("/") + "/"
        return {
            i.path.removeprefix(prefix): i.size
            for i in self._list(recursive=True)
            if i.type == _FILE and i.path.startswith(prefix)
        }

    def _list(self, recursive: bool) -> list[pafs.FileInfo]:
        try:
            return self.fs.get_file_info(
                pafs.FileSelector(self.base, allow_not_found=True, recursive=recursive)
            )
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot list ({_first_line(exc)})") from None

    def makedirs(self) -> None:
        try:
            self.fs.create_dir(self.base, recursive=True)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot create ({_first_line(exc)}); {_WHAT_TO_CHECK}") from None

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self._path(relative)) as f:
            return f.read()

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write a file whole: a local file through a temporary name and a rename; an object store's PUT is
        atomic by itself (readers see the old object or the new one)."""
        path = self._path(relative)
        if self.is_local:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
            return
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as f:
            f.write(data)

    def upload_file(self, local: Path, relative: str) -> None:
        """Copy one local file to ``relative`` below this folder (whole or not at all, as ``write_bytes``)."""
        if self.is_local:
            target = Path(self._path(relative))
            if target.resolve() != Path(local).resolve():
                with atomic_path(target) as tmp:
                    shutil.copyfile(local, tmp)
            return
        path = self._path(relative)
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        pafs.copy_files(
            str(local), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs
        )

    def download_to(self, local: Path) -> list[str]:
        """Copy every file below this folder into ``local`` (which mirrors it); the relative paths copied."""
        copied = []
        for relative in sorted(self.files()):
            with atomic_path(local / relative) as tmp:
                pafs.copy_files(
                    self._path(relative),
                    str(tmp),
                    source_filesystem=self.fs,
                    destination_filesystem=pafs.LocalFileSystem(),
                )
            copied.append(relative)
        return copied

    def delete_file(self, relative: str) -> None:
        try:
            self.fs.delete_file(self._path(relative))
        except FileNotFoundError:
            pass

    def check_usable(self) -> None:
        """Remote: create the folder and write, read and delete a probe file in it, so a missing bucket or
        missing credentials fail here with one line, before a study spends anything. Local: the folder or its
        nearest existing parent is a writable folder (nothing is created)."""
        if self.is_local:  # no side effect: the nearest existing folder must be writable
            path = self.local_path
            existing = next(p for p in (path, *path.parents) if p.exists())
            if not existing.is_dir():
                raise StorageError(
                    f"{self.uri}: {existing} is a file, not a folder; choose another storage path"
                )
            if not os.access(existing, os.W_OK | os.X_OK):
                raise StorageError(f"{self.uri}: {existing} is not writable; choose another storage path")
            return
        probe = f".dtgan-probe-{os.getpid()}"
        try:
            self.makedirs()
            self.write_bytes(probe, b"ok")
            ok = self.read_bytes(probe) == b"ok"
            self.delete_file(probe)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(
                f"{self.uri}: cannot write there ({_first_line(exc)}); {_WHAT_TO_CHECK}"
            ) from None
        if not ok:
            raise StorageError(f"{self.uri}: a file written there read back differently")


_WHAT_TO_CHECK = (
    "check that the bucket exists and that the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
    "or an instance role; AWS_ENDPOINT_URL for an S3-compatible store) may write there"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class RunFolderSync:
    """A run folder kept on local disk and mirrored to its place in the storage.

    With local storage the run folder *is* the storage folder and nothing is copied. With remote storage the
    trial writes to a node-local scratch folder; ``pull`` fills it from the storage (a trial restarted on a
    new node finds its checkpoints), ``push`` uploads what changed since the last push and removes from the
    storage the checkpoints the run deleted (it keeps only the newest few).
    """

    def __init__(self, storage: Storage, scratch_root: Path | None = None) -> None:
        self.storage = storage
        if storage.is_local:
            self.local = storage.local_path
        else:
            root = scratch_root or Path(tempfile.gettempdir()) / "dtgan-scratch"
            parent = posixpath.basename(posixpath.dirname(posixpath.dirname(storage.base)))
            self.local = root / parent / storage.name
        self._pushed: dict[str, tuple[int, int]] = {}

    @property
    def remote(self) -> bool:
        return not self.storage.is_local

    def pull(self) -> list[str]:
        """Download the stored run folder into the scratch folder (remote storage); the files copied."""
        self.local.mkdir(parents=True, exist_ok=True)
        if not self.remote:
            return []
        copied = self.storage.download_to(self.local)
        for relative in copied:
            stat = (self.local / relative).stat()
            self._pushed[relative] = (stat.st_size, stat.st_mtime_ns)
        return copied

    def push(self, prune_under: tuple[str, ...] = ("checkpoints/",)) -> list[str]:
        """Upload new or changed files (remote storage); the files uploaded."""
        if not self.remote or not self.local.is_dir():
            return []
        uploaded, present = [], set()
        # Hidden names are files being written (``atomic_path``'s temporaries): never uploaded half-written.
        for path in sorted(p for p in self.local.rglob("*") if p.is_file() and not p.name.startswith(".")):
            relative = path.relative_to(self.local).as_posix()
            present.add(relative)
            stat = path.stat()
            key = (stat.st_size, stat.st_mtime_ns)
            if self._pushed.get(relative) == key:
                continue
            self.storage.upload_file(path, relative)
            self._pushed[relative] = key
            uploaded.append(relative)
        for relative in [r for r in self._pushed if r not in present and r.startswith(prune_under)]:
            self.storage.delete_file(relative)
            del self._pushed[relative]
        return uploaded

    def stored_uri(self, local_file: str | Path) -> str:
        """Where a file of the local run folder lives in the storage."""
        relative = Path(local_file).resolve().relative_to(self.local.resolve()).as_posix()
        return self.storage.child(*relative.split("/")).uri


def fetch_file(uri: str, target_dir: Path) -> Path:
    """A stored file as a local path: itself when local, else downloaded (whole, or not at all) into
    ``target_dir``; a file fetched before with the same size is not fetched again (stored files are written
    whole and never changed in place)."""
    if not is_uri(uri):
        return Path(uri)
    parent, name = uri.rsplit("/", 1)
    stored = Storage.at(parent).child(name)
    info = stored.fs.get_file_info(stored.base)
    if info.type != _FILE:
        raise StorageError(f"{uri}: no such file in the storage")
    target = target_dir / name
    if target.is_file() and target.stat().st_size == info.size:
        return target
    with atomic_path(target) as tmp:
        pafs.copy_files(
            stored.base, str(tmp), source_filesystem=stored.fs, destination_filesystem=pafs.LocalFileSystem()
        )
    return target
