"""The think2seg command: help on every subcommand, doctor's discovery of weights, errors named."""

import json
import subprocess
import sys

import pytest

from think2seg.cli import COMMANDS, main


def test_every_subcommand_has_help(capsys):
    names = {"data": ["data-stats", "synth"], "bench": ["bench"]}
    for module in COMMANDS:
        for cmd in names.get(module, [module]):
            if cmd == "train":  # trl's parser owns the options; -h prints ours and returns
                assert main([cmd, "-h"]) == 0
            else:
                with pytest.raises(SystemExit) as e:
                    main([cmd, "--help"])
                assert e.value.code == 0, cmd
            assert "usage" in capsys.readouterr().out.lower(), cmd


def test_doctor_finds_checkpoints_and_model_dirs(tmp_path):
    sam = tmp_path / "sam2"
    sam.mkdir()
    (sam / "sam2.1_hiera_small.pt").write_bytes(b"x")
    models = tmp_path / "models"
    (models / "qwen").mkdir(parents=True)
    (models / "qwen" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    env = {"THINK2SEG_SAM2_DIR": str(sam), "THINK2SEG_MODELS_DIR": str(models), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "think2seg.cli", "doctor", "--json"], capture_output=True, text=True,
                         env=env, check=True).stdout
    info = json.loads(out[out.index("{"):])
    assert info["sam2_checkpoints"]["small"] == str(sam / "sam2.1_hiera_small.pt")
    assert info["sam2_checkpoints"]["large"] is None
    assert info["model_dirs"] == [{"path": str(models / "qwen"), "model_type": "qwen2_5_vl"}]
    for key in ("torch", "cuda_available", "bf16_supported", "transformers", "trl", "sam2", "deepspeed"):
        assert key in info


def test_unknown_profile_is_a_named_error(capsys):
    assert main(["reproduce", "--profile", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err
