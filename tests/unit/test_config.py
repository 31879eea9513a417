"""Config: presets with base inheritance, dotted overrides, one-line errors that name the key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from dtgan.config import DTGANConfig, flatten, load_config, to_yaml
from dtgan.config.model import ModelConfig, toggles_of_step
from dtgan.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_embedded_defaults_are_the_paper_configuration():
    cfg = load_config()
    assert cfg.model.img_size == 128 and cfg.train.batch_size == 4 and cfg.train.total_steps == 100_000
    assert cfg.optim.lr == 1e-4 and cfg.optim.mapping_lr == 1e-6
    assert cfg.model.resolved_stem_dim == 128
    assert all(
        getattr(cfg.loss, f"lambda_{k}") == 1.0 for k in ("reg", "sty", "ds", "cyc", "con", "fg", "bg")
    )


def test_preset_inherits_through_base_chain():
    cfg = load_config("smoke")
    assert cfg.model.img_size == 32  # from tiny
    assert cfg.train.total_steps == 200  # from smoke
    assert cfg.optim.beta2 == 0.99  # from the schema defaults
    assert cfg.preset == "smoke"


def test_dotted_override_is_applied_and_typed():
    cfg = load_config("smoke", ["loss.lambda_cyc=2", "model.ablation=c", "train.run_name=x"])
    assert cfg.loss.lambda_cyc == 2.0 and cfg.model.ablation == "c" and cfg.train.run_name == "x"


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.loss.lambda_cyc = 3  # type: ignore[misc]


def test_unknown_key_names_the_key_and_allowed_keys():
    with pytest.raises(ConfigError) as err:
        load_config("smoke", ["loss.lamda_cyc=2"])
    msg = str(err.value)
    assert "loss.lamda_cyc" in msg and "lambda_cyc" in msg and "\n" not in msg


def test_out_of_range_value_names_the_key():
    with pytest.raises(ConfigError, match=r"'loss.lambda_cyc'.*greater than or equal to 0"):
        load_config(None, ["loss.lambda_cyc=-1"])


def test_bad_literal_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"model.ablation.*'a'.*'g'"):
        load_config(None, ["model.ablation=z"])


def test_malformed_override_explains_the_form():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["lambda_cyc"])


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError, match="smoke"):
        load_config("no-such-preset")


def test_preset_file_with_base_relative_to_its_folder(tmp_path):
    (tmp_path / "parent.yaml").write_text("train:\n  seed: 5\n")
    (tmp_path / "child.yaml").write_text("base: parent\nloss:\n  lambda_ds: 2\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.train.seed == 5 and cfg.loss.lambda_ds == 2


def test_base_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b\n")
    (tmp_path / "b.yaml").write_text("base: a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_ladder_steps_are_cumulative():
    assert not any(toggles_of_step("a"))
    assert all(toggles_of_step("g"))
    t = toggles_of_step("d")
    assert t.style_content and t.fg_classifier and t.bg_classifier and not t.separate_decoders


def test_explicit_toggle_overrides_the_ladder_step():
    t = ModelConfig(ablation="g", mapping_noise=False).toggles
    assert t.anchor_normal and not t.mapping_noise


def test_invalid_toggle_combination_is_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="anchor_normal needs style_content"):
        load_config(None, ["model.ablation=a", "model.anchor_normal=true"])


def test_yaml_round_trip_and_flatten():
    cfg = load_config("smoke", ["loss.lambda_bg=0.5"])
    again = DTGANConfig.model_validate(yaml.safe_load(to_yaml(cfg)))
    assert again == cfg
    flat = flatten(cfg)
    assert flat["loss.lambda_bg"] == 0.5 and flat["model.img_size"] == 32


def test_every_preset_resolves():
    for path in (REPO / "experiments" / "presets").glob("*.yaml"):
        load_config(path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dtgan", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_config_show_prints_resolved_yaml():
    out = _cli("config", "show", "-c", "smoke", "-o", "loss.lambda_cyc=2")
    assert out.returncode == 0, out.stderr
    shown = yaml.safe_load(out.stdout)
    assert shown["loss"]["lambda_cyc"] == 2 and shown["model"]["img_size"] == 32


def test_cli_typo_exits_nonzero_with_one_line():
    out = _cli("config", "show", "-o", "loss.lamda_cyc=2")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "loss.lamda_cyc" in lines[0]


def test_a_key_given_twice_in_a_preset_is_refused_naming_the_line(tmp_path):
    preset = tmp_path / "twice.yaml"
    preset.write_text("base: smoke\noptim:\n  lr: 0.001\n  beta1: 0.0\n  lr: 0.5\n")
    with pytest.raises(ConfigError, match=r"twice.yaml line 5: not valid YAML \(duplicate key 'lr'\)") as err:
        load_config(str(preset))
    assert "\n" not in str(err.value)
    top = tmp_path / "sections.yaml"
    top.write_text("optim:\n  lr: 0.001\ntrain:\n  seed: 1\noptim:\n  beta1: 0.5\n")
    with pytest.raises(ConfigError, match="line 5.*duplicate key 'optim'"):
        load_config(str(top))


@pytest.mark.parametrize("value", ["inf", ".inf", "-inf", "nan", ".nan", "1e999"])
def test_inf_and_nan_values_are_refused(value):
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config("smoke", [f"optim.lr={value}"])
    with pytest.raises(ConfigError, match="loss.lambda_cyc"):
        load_config("smoke", [f"loss.lambda_cyc={value}"])


def test_cpu32_3000_is_cpu32_trained_longer():
    """Its first 1,500 steps are cpu32's: only the length (and the checkpoints kept) differ, and no schedule reads
    the length, so it trains what the resumed runs of docs/results.md 11.7.1 trained."""
    from dtgan.training import schedules

    long, base = load_config("cpu32_3000"), load_config("cpu32")
    flat_long, flat_base = flatten(long), flatten(base)
    changed = {k for k in flat_long.keys() | flat_base.keys() if flat_long.get(k) != flat_base.get(k)}
    assert changed <= {"train.total_steps", "train.keep_checkpoints", "preset"}, changed
    assert long.train.total_steps == 3000 and long.loss.ds_decay_steps == base.loss.ds_decay_steps == 1500
    for step in (0, 1499, 1500, 2999):
        assert schedules.lambda_ds(step, long.loss) == schedules.lambda_ds(step, base.loss)
        assert schedules.lambda_self_rec(step, long.loss) == schedules.lambda_self_rec(step, base.loss)
        assert schedules.ema_beta(step, long.train) == schedules.ema_beta(step, base.train)
