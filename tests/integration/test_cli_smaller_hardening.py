"""Smaller hardening of the commands: a finished run resumed says so (no 'nan images/s'), a run name cannot leave
out_dir, a bundled preset's search space is found from any working directory."""

from __future__ import annotations

from pathlib import Path

from dtgan.cli.main import main
from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.search.spaces import load_search_space


def test_resuming_a_finished_run_says_it_is_done(tmp_path, capsys):
    data = tmp_path / "bench.parquet"
    synthesize_benchmark(str(data), size=32, scale=0.02, seed=0)
    argv = ["train", "-c", "smoke", "-o", f"data.path={data}", "-o", f"train.out_dir={tmp_path / 'runs'}"]
    argv += ["-o", "train.total_steps=1", "-o", "train.run_name=r"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "already at step 1" in out and "nan" not in out, out
    assert not list((tmp_path / "runs").glob(".*.lock"))  # the writer lock went with the writer


def test_a_run_name_outside_out_dir_is_refused_before_anything_is_written(tmp_path, capsys):
    for name in ("../escaped", str(tmp_path / "abs")):
        argv = ["train", "-o", f"train.out_dir={tmp_path / 'runs'}", "-o", f"train.run_name={name}"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "is not a folder name" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bundled_presets_search_space_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for preset in ("search_smoke", "sdi"):
        space = Path(load_config(preset).study.search_space)
        assert space.is_absolute() and space.parent.name == "search" and load_search_space(space)
