"""I/O that fails: each case gives one line naming the path or key and what to do, exit 2, and leaves nothing
half-written (a store that is not MLflow's stays as it was, an export that fails takes its PNGs back)."""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dtgan.cli.main import main
from dtgan.data.synth import synthesize_benchmark
from dtgan.errors import ConfigError
from dtgan.evaluation.export import MANIFEST_FILE, _write_folders
from dtgan.search.spaces import load_search_space
from dtgan.utils.destination import DestinationError, check_destination
from dtgan.utils.entry import run_entry_point


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def _tables(path) -> list[str]:
    with sqlite3.connect(path) as con:
        return sorted(row[0] for row in con.execute("SELECT name FROM sqlite_master"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_that_is_not_mlflows_or_does_not_answer_is_one_line_and_left_alone(tmp_path, capsys):
    other = tmp_path / "inventory.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE parts (id INTEGER)")
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    for path, expected in ((other, "not an MLflow store"), (text, "not an SQLite database")):
        before = path.read_bytes()
        assert main(["report", "--experiment", "x", "--tracking-uri", f"sqlite:///{path}"]) == 2
        assert expected in _one_line(capsys)
        assert path.read_bytes() == before  # MLflow never opened it: no tables added
    assert _tables(other) == ["parts"]
    started = time.monotonic()
    uri = f"http://127.0.0.1:{_closed_port()}"
    assert main(["report", "--experiment", "x", "--tracking-uri", uri]) == 2
    assert "does not answer" in _one_line(capsys) and time.monotonic() - started < 30  # not MLflow's retries


def test_binary_yaml_and_a_parquet_column_of_the_wrong_type_are_one_line(tmp_path, capsys):
    preset = tmp_path / "preset.yaml"
    preset.write_bytes(bytes(range(256)))
    assert main(["config", "show", "-c", str(preset)]) == 2
    assert "not a text file" in _one_line(capsys)
    with pytest.raises(ConfigError, match="not a text file"):
        load_search_space(preset)
    data = tmp_path / "d.parquet"
    synthesize_benchmark(str(data), size=32, scale=0.05, seed=0)
    table = pq.read_table(data)
    column = table.schema.get_field_index("image")
    bad = table.set_column(column, "image", pa.array(range(len(table)))).replace_schema_metadata(
        table.schema.metadata
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    assert main(["data", "describe", str(tmp_path / "bad.parquet")]) == 2
    assert "column 'image' holds int64" in _one_line(capsys)


def test_destinations_are_checked_before_any_compute(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DestinationError, match="is a file where a folder is expected"):
        check_destination(a_file, "--out")
    with pytest.raises(DestinationError, match="is a file where a folder is expected"):
        check_destination(a_file / "sub" / "out", "--out")
    with pytest.raises(DestinationError, match="is a folder where a file is expected"):
        check_destination(tmp_path, "--out", "file")
    assert check_destination(tmp_path / "new" / "out", "--out") == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists()  # the check creates nothing
    if os.geteuid() != 0:  # root writes anywhere: the read-only case needs an ordinary user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(DestinationError, match="is not writable"):
            check_destination(locked / "out", "--out")


def test_a_full_disk_is_one_line_with_what_to_do(capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")

    def fill(_args):
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 65536)
            fh.flush()

    assert run_entry_point(fill, argparse.Namespace(), prefix="dtgan: ") == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and "disk is full; free space" in err


def test_an_export_that_fails_halfway_takes_its_files_back(tmp_path):
    out = tmp_path / "export"
    records = [({"file": f"cast/scratch/s{i}_latent_0.png"}, b"\x89PNG fake") for i in range(3)] + [
        ({"file": "woven/spot/s0_latent_0.png"}, b"\x89PNG fake")
    ]
    out.mkdir()
    (out / "woven").write_text("a file where the product folder goes")
    manifest = [{"file": r["file"]} for r, _ in records]
    with pytest.raises(NotADirectoryError):
        _write_folders(out, records, manifest)
    assert sorted(p.name for p in out.rglob("*")) == ["woven"]  # no PNG, no manifest, no empty folder
    assert not (out / MANIFEST_FILE).exists()
