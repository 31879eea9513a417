"""Two writers, one folder: the second gets one line naming the holder and exit 2; a dead holder's lock is taken
over; the lock leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from dtgan.cli.main import main
from dtgan.utils.lock import (
    LockHeld,
    acquire_lock,
    hold_lock_until_exit,
    lock_path,
    release_lock,
    writer_lock,
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from dtgan.utils.lock import acquire_lock
    acquire_lock(sys.argv[1], "run folder")
    print("held", flush=True)
    if sys.argv[2] == "stay":
        time.sleep(120)
    else:
        import os
        os._exit(0)  # dies holding it: no release, the lock file stays
    """
)


def _holder(target, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target), mode], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_gets_one_line_naming_the_holder_and_exit_2(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    proc = _holder(run_dir, "stay")
    try:
        with pytest.raises(LockHeld, match=f"pid {proc.pid} on {socket.gethostname()} since 20"):
            acquire_lock(run_dir, "run folder")
        argv = ["train", "-o", f"train.out_dir={tmp_path / 'runs'}", "-o", "train.run_name=r"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert f"pid {proc.pid}" in err and "run folder is in use" in err and "\n" not in err, err
        assert not run_dir.exists()  # the second writer wrote nothing
    finally:
        proc.kill()
        proc.wait()


def test_a_dead_holders_lock_is_taken_over_and_released_without_a_trace(tmp_path, caplog):
    out = tmp_path / "new" / "export"
    proc = _holder(out, "die")
    proc.wait()
    stale = json.loads(lock_path(out).read_text())
    assert stale["pid"] == proc.pid
    with writer_lock(out, "export folder"):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
        assert f"took over the stale lock of pid {proc.pid}" in caplog.text
    assert not lock_path(out).exists()
    with writer_lock(tmp_path / "fresh" / "a" / "export", "export folder"):
        assert (tmp_path / "fresh" / "a").is_dir()
    assert not (tmp_path / "fresh").exists()  # the folders made for a lock file go with it


def test_a_study_lock_held_until_exit_is_reentrant_in_its_process(tmp_path):
    folder = tmp_path / "study"
    first = hold_lock_until_exit(folder, "study folder")
    assert hold_lock_until_exit(folder, "study folder") is first
    release_lock(folder)
    assert lock_path(folder).exists()  # taken twice, given back once
    release_lock(folder)
    assert not lock_path(folder).exists()


def test_an_export_folder_is_locked_and_a_failed_writer_leaves_no_lock_or_folder(tmp_path, capsys):
    out = tmp_path / "export"
    proc = _holder(out, "stay")
    try:
        assert main(["sample", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "export folder is in use" in err and f"pid {proc.pid}" in err, err
    finally:
        proc.kill()
        proc.wait()
    runs = tmp_path / "fresh" / "runs"
    argv = ["train", "-o", f"data.path={tmp_path / 'missing.parquet'}", "-o", f"train.out_dir={runs}"]
    assert main(argv) == 2
    assert "no such data set" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()  # neither the run folder nor the lock file nor out_dir stay


def test_two_resumes_of_one_study_launch_do_not_both_run(tmp_path):
    from dtgan.config import load_config
    from dtgan.search.driver import launch_study

    storage = tmp_path / "ray_results"
    launch = storage / "search-smoke-20260101-000000"
    launch.mkdir(parents=True)
    proc = _holder(launch, "stay")
    try:
        config = load_config(
            "smoke", [f"study.storage_path={storage}", f"tracking.tracking_uri=sqlite:///{tmp_path}/m.db"]
        )
        with pytest.raises(LockHeld, match=f"study folder is in use by pid {proc.pid}"):
            launch_study(config, "search", resume=launch.name)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "m.db").exists()  # refused before the MLflow store was touched
