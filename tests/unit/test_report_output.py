"""Report output: the CLI (Markdown on the terminal, exit 2 with one line), atomic files, logging to the parent run."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from report_store import Store

from dtgan.cli.main import main
from dtgan.tracking.mlflow.reading import log_report_to_run
from dtgan.tracking.report import ReportConfig, build_report


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("mlflow"))
    experiment = store.experiment("ladder")
    store.parent_id = store.parent(experiment, "ablation")
    for variant, values in {"a": [40.0, 42.0], "b": [30.0, 31.0]}.items():
        for seed, fid in enumerate(values):
            store.child(experiment, store.parent_id, variant, seed, metrics={"eval/fid_mix": fid})
    store.experiment("empty")
    return store


def test_cli_prints_the_markdown_and_writes_every_format(store, tmp_path, capsys):
    out = tmp_path / "report"
    argv = [
        "report",
        "--experiment",
        "ladder",
        "--tracking-uri",
        store.uri,
        "--out",
        str(out),
        "--bootstrap-samples",
        "10",
    ]
    assert main([*argv, *[x for f in ("md", "csv", "parquet", "html") for x in ("--format", f)]]) == 0
    printed = capsys.readouterr().out
    assert "| (b) | **30.50 ± 0.71 (2 seeds)** CI — [3] |" in printed  # [1]: the ceiling's reason
    written = (out / "report.md").read_text()
    assert (
        "Pairwise comparisons (" in written
        and "Pairwise comparisons: 1 (1 significant) in report.md" in printed
    )
    cells = pd.read_csv(out / "report_cells.csv")
    assert cells.loc[cells.row == "(a)", "mean"].item() == pytest.approx(41.0)
    assert pq.read_table(out / "report_cells.parquet").num_rows == 4  # + the floor and ceiling rows
    assert "<b>30.50" in (out / "report.html").read_text()  # (b) is lower over both seeds
    assert (out / "plots" / "ablation_fid.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.rglob("*.tmp"))


def test_cli_on_an_empty_experiment_exits_2_with_one_line(store, tmp_path, capsys):
    assert main(["report", "--experiment", "empty", "--tracking-uri", store.uri, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "dtgan: error: experiment 'empty' has no runs; run a study into it first (e.g. experiments/ablation.py)\n"
    )
    assert not list(tmp_path.iterdir())


def test_a_failed_write_leaves_the_previous_files_whole(store, tmp_path, monkeypatch):
    report = build_report("ladder", store.uri, config=ReportConfig(bootstrap_samples=10))
    report.write(tmp_path, ["md", "parquet"])
    before = (tmp_path / "report_cells.parquet").read_bytes()

    def half_write(table, where, **kwargs):
        open(where, "wb").write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        report.write(tmp_path, ["parquet"])
    assert (tmp_path / "report_cells.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plots",
        "report.md",
        "report_cells.parquet",
        "report_comparisons.parquet",
    ]


def test_report_is_logged_to_the_parent_run_once_per_table(store):
    report = build_report("ladder", store.uri, config=ReportConfig(bootstrap_samples=10))
    log_report_to_run(report, store.parent_id, store.uri)
    client = MlflowClient(store.uri)
    names = {f.path for f in client.list_artifacts(store.parent_id, "report")}
    assert names == {
        "report/report.md",
        "report/report.html",
        "report/report_cells.parquet",
        "report/report_comparisons.parquet",
        "report/plots",
    }
    assert {f.path for f in client.list_artifacts(store.parent_id, "report/plots")} == {
        "report/plots/ablation_fid.png"
    }


def test_terminal_markdown_counts_the_comparisons_instead_of_listing_them(store):
    report = build_report("ladder", store.uri, config=ReportConfig(bootstrap_samples=10))
    full, short = report.markdown(), report.markdown(comparisons=False)
    assert "Pairwise comparisons (" in full and "Pairwise comparisons (" not in short
    assert "Pairwise comparisons: " in short and "in report.md" in short
    for table in report.tables:
        assert f"## {table.title}" in short


@pytest.mark.parametrize("scheme", ["sqlite", "file"])
def test_cli_on_a_missing_local_store_names_it_and_creates_nothing(tmp_path, capsys, scheme):
    missing = tmp_path / "missing" / "dir" / ("x.db" if scheme == "sqlite" else "mlruns")
    uri = f"sqlite:///{missing}" if scheme == "sqlite" else missing.as_uri()
    code = main(["report", "--experiment", "ladder", "--tracking-uri", uri, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--tracking-uri {uri}: no MLflow store at {missing} (nothing was created)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_without_a_store_in_this_folder_creates_no_mlflow_db(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["report", "--experiment", "ladder"]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
