"""A writer lock for an output folder (a run folder, a study launch, an export): one writer at a time.

The lock is a small JSON file beside the folder, ``.<name>.lock``, holding the writer's pid, host and start
time; the writer holds an exclusive ``flock`` on it for as long as it writes. A second writer finds the
``flock`` taken and stops with one line naming the holder. When the holder dies the kernel drops its
``flock``, so a lock file left by a dead process is stale: the next writer takes it over (with a warning).
Where the file system has no ``flock``, a lock whose holder ran on this host and is no longer alive is stale.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dtgan.errors import DTGANError

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


class LockHeld(DTGANError):
    """Another process writes into the folder; the message names it (pid, host, start time)."""


def lock_path(target: str | Path) -> Path:
    """``<parent>/.<name>.lock``: beside the folder, so a run that fails early can still remove its folder."""
    target = Path(os.path.abspath(target))  # "." and "out/" have a name too
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


def _holder_record(what: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "what": what,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "",
    }


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "another process (its lock file is empty or unreadable)"
    command = f", `{holder['command']}`" if holder.get("command") else ""
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')}{command}"


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _stale_without_flock(holder: dict) -> bool:
    """No flock on this file system: stale when the holder ran here and is gone (another host: not known)."""
    return holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid"))


@dataclass
class WriterLock:
    """A held lock; :meth:`release` removes the lock file and the folders it made to hold it (if empty)."""

    target: Path
    path: Path
    fd: int | None
    created: Path | None  # the highest folder made for the lock file, removed on release when empty
    holds: int = 1  # this process took it that many times (a study launched twice in one process)

    def release(self) -> None:
        self.holds -= 1
        if self.fd is None or self.holds > 0:
            return
        _HELD.pop(self.path.resolve(), None)
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                self.path.unlink()
        os.close(self.fd)
        self.fd = None
        folder = self.path.parent
        while self.created is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            if folder == self.created:
                break
            folder = folder.parent


_HELD: dict[Path, WriterLock] = {}  # the locks this process holds, by lock file


def _first_missing(folder: Path) -> Path | None:
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def acquire_lock(target: str | Path, what: str) -> WriterLock:
    """Take the writer lock of ``target`` (``what`` names it in messages: "run folder", "export folder").

    Raises :class:`LockHeld` (one line, exit 2) when a live process holds it; takes over a stale lock.
    """
    target = Path(target)
    path = lock_path(target)
    held = _HELD.get(path.resolve())
    if held is not None and held.fd is not None:
        held.holds += 1
        return held
    created = _first_missing(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DTGANError(
            f"{path.parent}: is a file where the {what} {target.name} needs a folder; pick another path"
        ) from None
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        locked = _try_flock(fd)
        holder = _read_holder(fd)
        if locked is False or (locked is None and holder and not _stale_without_flock(holder)):
            os.close(fd)
            raise LockHeld(
                f"{target}: the {what} is in use by {describe_holder(holder)}; wait for it to end or "
                f"write elsewhere (if that process is gone, delete {path})"
            )
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (and removed) the file between our open and our flock: again
            os.close(fd)
            continue
        if holder:
            log.warning(
                "%s: took over the stale lock of %s (that process is gone)", target, describe_holder(holder)
            )
        record = json.dumps(_holder_record(what)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)
        lock = WriterLock(target, path, fd, created)
        _HELD[path.resolve()] = lock
        return lock
    raise LockHeld(f"{target}: could not take the {what} lock {path} (it keeps changing); try again")


def _try_flock(fd: int) -> bool | None:
    """True: locked; False: another holds it; None: this file system has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        return None
    return True


@contextlib.contextmanager
def writer_lock(target: str | Path, what: str) -> Iterator[WriterLock]:
    """``with writer_lock(run_dir, "run folder"):`` hold the lock while the body writes into ``target``."""
    lock = acquire_lock(target, what)
    try:
        yield lock
    finally:
        lock.release()


def hold_lock_until_exit(target: str | Path, what: str) -> WriterLock:
    """Take the lock of ``target`` and keep it until this process exits (for code without a ``with``)."""
    lock = acquire_lock(target, what)
    atexit.register(lock.release)
    return lock


def release_lock(target: str | Path) -> None:
    """Give back this process's lock of ``target`` (taken by :func:`hold_lock_until_exit`), if it holds one."""
    lock = _HELD.get(lock_path(target).resolve())
    if lock is not None:
        lock.release()


@contextlib.contextmanager
def waiting_lock(target: str | Path) -> Iterator[None]:
    """``with waiting_lock(cache_file):`` one process at a time builds ``target``; the others wait for it (then
    find what it built) instead of building it too. Where the file system has no ``flock`` nobody waits."""
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError as exc:
            log.warning("%s: no flock here (%s); building without waiting for other processes", path, exc)
        yield
