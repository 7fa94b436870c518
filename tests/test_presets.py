"""Loss-variant presets (think2seg.training.presets): each changes only trl's loss fields, wins over the YAML
config, loses to the command line, and is recorded in the resolved config."""

import json
from pathlib import Path

import pytest
import yaml

from think2seg.cli import main as cli_main
from think2seg.training.grpo import parse_args, save_resolved_config
from think2seg.training.presets import PRESET_DIR, PRESET_FIELDS, load_preset, preset_names

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "train" / "cpu_demo.yaml")


def test_presets_set_only_the_loss_fields():
    assert {"grpo", "dr_grpo", "dapo", "bnpo"} <= set(preset_names())
    for name in preset_names():
        assert set(yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())) == set(PRESET_FIELDS), name


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "dapo", "bnpo"])
def test_preset_changes_those_fields_and_nothing_else(name, tmp_path):
    base_t2s, base = parse_args(["--config", CONFIG, "--output_dir", str(tmp_path / "a")])
    t2s, cfg = parse_args(["--config", CONFIG, "--output_dir", str(tmp_path / "a"), "--preset", name])
    want = load_preset(name)
    assert {k: getattr(cfg, k) for k in PRESET_FIELDS} == want
    a, b = base.to_dict(), cfg.to_dict()
    assert {k for k in a if a[k] != b[k]} <= set(PRESET_FIELDS)
    assert {k: v for k, v in vars(t2s).items() if k != "preset"} == {
        k: v for k, v in vars(base_t2s).items() if k != "preset"}
    saved = json.loads(save_resolved_config(t2s, cfg).read_text())
    assert saved["preset"] == {"name": name, "fields": want} and saved["grpo"]["loss_type"] == want["loss_type"]


def test_command_line_wins_over_the_preset(tmp_path):
    _, cfg = parse_args(["--config", CONFIG, "--output_dir", str(tmp_path), "--preset", "dapo",
                         "--epsilon_high", "0.3"])
    assert cfg.epsilon_high == 0.3 and cfg.loss_type == "dapo" and cfg.mask_truncated_completions is True


def test_unknown_preset_is_one_line(tmp_path, capsys):
    rc = cli_main(["train", "--config", CONFIG, "--output_dir", str(tmp_path), "--preset", "ppo"])
    err = capsys.readouterr().err
    assert rc == 2 and "--preset ppo: no such preset" in err and "dr_grpo" in err and "Traceback" not in err
