"""Training never leaves a poisoned checkpoint, and a resume never runs a config it does not record."""

import json

import pytest
import torch
from test_train_cli import _Collect, _dtgan, _overrides, benchmark  # noqa: F401  (fixture)

from dtgan.config import load_config
from dtgan.errors import CheckpointError, TrainingDiverged
from dtgan.training.checkpoint import first_non_finite, list_checkpoints, read_checkpoint
from dtgan.training.loop import train
from dtgan.training.run_dir import CONFIG_CHANGES_FILE


def test_a_diverging_run_leaves_only_finite_checkpoints_and_names_the_good_one(benchmark, tmp_path):  # noqa: F811
    # optim.lr=0.5 (the probe's case): finite losses for a step or two while the weights already hold NaNs.
    config = load_config(
        "smoke",
        [
            *_overrides(benchmark, tmp_path, total_steps=8, checkpoint_every_steps=1, keep_checkpoints=8),
            "optim.lr=0.5",
        ],
    )
    with pytest.raises(TrainingDiverged) as err:
        train(config, reporter=_Collect())
    assert "\n" not in str(err.value)
    saved = list_checkpoints(tmp_path / "smoke-g-seed777")
    for path in saved:
        payload = torch.load(path, weights_only=True)
        assert first_non_finite({k: payload[k] for k in ("nets", "nets_ema", "optimizers")}) is None, (
            path.name
        )
    named = str(saved[-1]) if saved else "no checkpoint was written yet"
    assert named in str(err.value)


def test_a_checkpoint_holding_a_nan_is_refused_naming_its_step(benchmark, tmp_path):  # noqa: F811
    result = train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    payload = torch.load(result.checkpoint_path, weights_only=True)
    weight = next(iter(payload["nets_ema"]["generator"]))
    payload["nets_ema"]["generator"][weight][0] = float("nan")
    poisoned = tmp_path / "poisoned.pt"
    torch.save(payload, poisoned)
    with pytest.raises(
        CheckpointError,
        match=rf"the checkpoint of step 2 holds non-finite values \(nets_ema.generator.{weight}\)",
    ):
        read_checkpoint(poisoned)
    done = _dtgan("sample", str(poisoned), "--out", str(tmp_path / "samples"))
    assert done.returncode == 2 and "non-finite" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "samples").exists()


def test_resume_with_a_changed_training_value_is_refused_naming_the_keys(benchmark, tmp_path):  # noqa: F811
    train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    run = tmp_path / "smoke-g-seed777"
    config_before = (run / "config.yaml").read_text()
    for override, key in (("optim.lr=10000.0", "optim.lr"), ("loss.lambda_cyc=2", "loss.lambda_cyc")):
        changed = load_config("smoke", [*_overrides(benchmark, tmp_path, total_steps=4), override])
        with pytest.raises(
            CheckpointError, match=rf"resuming with changed {key} \(saved .*, now .*\); steps 1..2 ran"
        ) as err:
            train(changed, reporter=_Collect(), resume=True)
        assert "\n" not in str(err.value)
    assert (run / "config.yaml").read_text() == config_before  # nothing rewritten
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt"]


def test_resume_may_extend_the_run_and_records_the_change_at_its_step(benchmark, tmp_path):  # noqa: F811
    train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    run = tmp_path / "smoke-g-seed777"
    result = train(
        load_config("smoke", _overrides(benchmark, tmp_path, total_steps=4)), reporter=_Collect(), resume=True
    )
    assert result.step == 4
    (line,) = (run / CONFIG_CHANGES_FILE).read_text().splitlines()
    assert json.loads(line) == {"step": 2, "changes": {"train.total_steps": {"before": 2, "after": 4}}}
    assert "total_steps: 4" in (run / "config.yaml").read_text()


def test_unfinished_checkpoint_writes_are_swept_when_the_run_continues(benchmark, tmp_path):  # noqa: F811
    train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    checkpoints = tmp_path / "smoke-g-seed777" / "checkpoints"
    leftover = checkpoints / ".step_00000004.pt.k2j3h4.tmp"  # what a SIGKILL inside torch.save leaves
    leftover.write_bytes(b"half a checkpoint")
    train(
        load_config("smoke", _overrides(benchmark, tmp_path, total_steps=3)), reporter=_Collect(), resume=True
    )
    assert not leftover.exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_00000002.pt", "step_00000003.pt"]


def test_a_run_that_fails_on_its_data_leaves_no_run_folder(tmp_path):
    done = _dtgan(
        "train",
        "-c",
        "smoke",
        "-o",
        f"data.path={tmp_path / 'missing.parquet'}",
        "-o",
        f"train.out_dir={tmp_path / 'runs'}",
    )
    assert done.returncode == 2 and "missing.parquet" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_sample_onto_an_existing_file_is_a_one_line_error(benchmark, tmp_path):  # noqa: F811
    result = train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    done = _dtgan("sample", str(result.run_dir), "--out", str(target), "--max-sources", "1")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "exists and is not a folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert target.read_text() == "keep me"


def _failing_step(fail_at: int):
    from dtgan.training import loop

    real = loop.train_step

    def step(state, *args):
        if state.step + 1 == fail_at:
            raise RuntimeError(f"injected failure at step {fail_at}")
        return real(state, *args)

    return step


def test_a_run_that_fails_before_writing_anything_leaves_no_run_folder(benchmark, tmp_path, monkeypatch):  # noqa: F811
    from dtgan.training import loop

    monkeypatch.setattr(loop, "train_step", _failing_step(1))
    out = tmp_path / "runs" / "deeper"
    config = load_config("smoke", _overrides(benchmark, out, checkpoint_at_start="false"))
    with pytest.raises(RuntimeError, match="injected failure at step 1"):
        train(config)  # the console reporter: metrics.jsonl would be the first record
    assert not (tmp_path / "runs").exists()  # the run folder and the folders made for it are gone


def test_a_failed_run_keeps_its_folder_once_it_holds_a_record(benchmark, tmp_path, monkeypatch):  # noqa: F811
    from dtgan.training import loop

    monkeypatch.setattr(loop, "train_step", _failing_step(2))
    config = load_config("smoke", _overrides(benchmark, tmp_path, total_steps=4, checkpoint_at_start="false"))
    with pytest.raises(RuntimeError, match="injected failure at step 2"):
        train(config)
    run = tmp_path / "smoke-g-seed777"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]
    assert (run / "config.yaml").is_file()


def test_a_failed_run_never_removes_a_folder_it_did_not_create(benchmark, tmp_path, monkeypatch):  # noqa: F811
    from dtgan.training import loop

    run = tmp_path / "smoke-g-seed777"
    run.mkdir()
    monkeypatch.setattr(loop, "train_step", _failing_step(1))
    with pytest.raises(RuntimeError):
        train(
            load_config("smoke", _overrides(benchmark, tmp_path, checkpoint_at_start="false")),
            reporter=_Collect(),
        )
    assert run.is_dir()


def test_sample_does_not_replace_an_earlier_export_without_overwrite(benchmark, tmp_path):  # noqa: F811
    result = train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    earlier = tmp_path / "earlier.parquet"
    earlier.write_bytes(b"an earlier export")
    args = ("sample", str(result.run_dir), "--out", str(earlier), "--format", "parquet", "--max-sources", "1")
    done = _dtgan(*args)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert "earlier.parquet exists (an earlier export); pass --overwrite" in done.stderr
    assert earlier.read_bytes() == b"an earlier export"
    done = _dtgan(*args, "--overwrite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert earlier.read_bytes()[:4] == b"PAR1"
