"""Can an output go where it was asked to go? Checked before the compute, so an evaluation does not run for an
hour and then fail to write its report; and what an OSError that happens anyway means, in one line."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from dtgan.errors import DTGANError


class DestinationError(DTGANError):
    """An output path that cannot be written: read-only, a file where a folder goes (or the reverse), full."""


def check_destination(path: str | Path, what: str, kind: Literal["folder", "file"] = "folder") -> Path:
    """Raise a one-line :class:`DestinationError` unless ``path`` can be created (or written) as a ``kind``.

    Creates nothing: the deepest existing folder on the way must be a writable folder, and ``path`` itself,
    when it exists, must be a ``kind`` (a writable folder, or a file in a writable folder).
    """
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise DestinationError(
                f"{what} {path}: is a file where a folder is expected; move it or pick another path"
            )
        if kind == "file" and path.is_dir():
            raise DestinationError(
                f"{what} {path}: is a folder where a file is expected; move it or pick another path"
            )
    existing = path if kind == "folder" and path.is_dir() else path.parent
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        raise DestinationError(
            f"{what} {path}: {existing} is a file where a folder is expected; move it or pick another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DestinationError(
            f"{what} {path}: {existing} is not writable (read-only or another user's); "
            "make it writable or pick another path"
        )
    return path


@contextlib.contextmanager
def removed_on_failure(folder: str | Path) -> Iterator[None]:
    """When the block raises, remove what it added to ``folder`` (its new entries, or ``folder`` itself and the
    folders above it that the block created), so a failed command leaves no half-written output. Entries that
    were there before are left alone. Meant for a folder the caller holds the writer lock of."""
    folder = Path(folder)
    created = [f for f in (folder, *folder.parents) if not f.exists()]
    before = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        elif folder.is_dir():
            for entry in folder.iterdir():
                if entry.name not in before:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(
                        missing_ok=True
                    )
        raise


_ADVICE = {
    errno.EACCES: "make it writable or pick another path",
    errno.EPERM: "make it writable or pick another path",
    errno.EROFS: "it is on a read-only file system; pick another path",
    errno.ENOSPC: "the disk is full; free space or pick a path on another disk",
    errno.EDQUOT: "the disk quota is used up; free space or pick a path on another disk",
    errno.ENOTDIR: "a file is where a folder is expected; move it or pick another path",
    errno.EEXIST: "a file is where a folder is expected; move it or pick another path",
    errno.EISDIR: "a folder is where a file is expected; move it or pick another path",
    errno.ENOENT: "it does not exist; check the path",
    errno.ELOOP: "it is a symlink loop; fix the link",
    errno.ENAMETOOLONG: "the name is too long; pick a shorter path",
}

# Errors that say what is wrong without a path: the output's disk is full or read-only.
_NO_PATH_NEEDED = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def os_error_line(exc: OSError) -> str | None:
    """``<path>: <what the system said>; <what to do>`` for an OSError that names a path (a full disk or a
    read-only file system also without one: a write to an open file names none), else None."""
    if exc.errno not in _ADVICE:
        return None
    if exc.filename is None:
        if exc.errno not in _NO_PATH_NEEDED:
            return None
        return f"a write failed: {exc.strerror or os.strerror(exc.errno)}; {_ADVICE[exc.errno]}"
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else f"{exc.filename}"
    return f"{where}: {exc.strerror or os.strerror(exc.errno)}; {_ADVICE[exc.errno]}"
