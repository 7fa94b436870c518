"""The think2seg command: help on every subcommand, doctor's discovery of weights, errors named."""

import json
import subprocess
import sys

import pytest

from think2seg.cli import COMMANDS, main


def test_every_subcommand_has_help(capsys):
    names = {"data": ["data-stats", "synth"], "bench": ["bench"], "ship_policies": ["ship-policies"],
             "sam2_train": ["sam2-train"]}
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
    shipped = info["segmenters_shipped"]  # what runs without a download
    assert shipped["grabcut"] == "weightless" and shipped["sam2:mini-t"].endswith("sam2_mini/mini-t.pt")
    assert "sam2-train --config configs/sam2_mini/mini-s.yaml" in shipped["sam2:mini-s"] or shipped["sam2:mini-s"].endswith(".pt")
    for key in ("torch", "cuda_available", "bf16_supported", "transformers", "trl", "sam2", "deepspeed"):
        assert key in info
    assert "qwen3-vl (Qwen3VLForConditionalGeneration)" in info["prompter_families"]
    assert "qwen3.5 (Qwen3_5ForConditionalGeneration)" in info["prompter_families"]
    assert set(info["hf_segmenters"]) == {"hf-sam2", "samhq", "sam3"}


def test_unknown_profile_is_a_named_error(capsys):
    assert main(["reproduce", "--profile", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err


def _one_line_error(capsys, argv, *named):
    """``main(argv)`` exits 2 with one stderr line that names every string in ``named``."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"think2seg {argv[0]}: error: ") and "Traceback" not in err
    for thing in named:
        assert thing in err, (thing, err)
    return err


def test_user_errors_are_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./checkpoints here
    monkeypatch.setenv("THINK2SEG_SAM2_DIR", str(tmp_path / "no-sam2"))
    data = ["--data", f"earthreason:{tmp_path / 'no-data'}", "--out", str(tmp_path / "run")]
    _one_line_error(capsys, ["eval", *data, "--prompter", "hf:/nonexistent"], "/nonexistent", "model directory")
    _one_line_error(capsys, ["eval", *data, "--segmenter", "sam2:small:/nope.pt"], "/nope.pt", "checkpoint")
    _one_line_error(capsys, ["eval", *data, "--segmenter", "sam2:small"], "sam2.1_hiera_small.pt",
                    str(tmp_path / "no-sam2"))
    _one_line_error(capsys, ["eval", *data, "--prompter", "bogus"], "--prompter", "'bogus'")
    _one_line_error(capsys, ["eval", *data, "--segmenter", "sam9"], "--segmenter", "'sam9'")
    _one_line_error(capsys, ["eval", "--data", "bogus:/x", "--out", str(tmp_path / "r")], "--data", "'bogus'")
    _one_line_error(capsys, ["eval", *data], str(tmp_path / "no-data"))  # a missing dataset folder
    _one_line_error(capsys, ["warmstart", "--config", str(tmp_path / "no.yaml"), "--out", str(tmp_path / "ws")],
                    "--config", "no.yaml")


def test_train_user_errors_are_one_line_exit_2(capsys, tmp_path):
    from pathlib import Path

    smoke = str(Path(__file__).resolve().parent.parent / "configs" / "train" / "smoke.yaml")
    out = ["--output_dir", str(tmp_path / "out")]
    _one_line_error(capsys, ["train", "--config", str(tmp_path / "nope.yaml")], "--config", "nope.yaml")
    _one_line_error(capsys, ["train", f"--config={tmp_path / 'nope.yaml'}"], "--config", "nope.yaml")
    _one_line_error(capsys, ["train", "--config", smoke, *out, "--model", "/no/model"], "--model", "/no/model")
    _one_line_error(capsys, ["train", "--config", smoke, *out, "--data", "bogus:/x"], "--data", "'bogus'")
    _one_line_error(capsys, ["train", "--config", smoke, *out, "--segmenter", "sam2:huge"], "--segmenter", "'huge'")
    assert not (tmp_path / "out").exists()  # refused before anything was built


def test_debug_shows_the_traceback(tmp_path):
    from think2seg.core.errors import ConfigNotFoundError, ModelNotFoundError, UserError

    data = ["--data", f"earthreason:{tmp_path}", "--out", str(tmp_path / "run")]
    with pytest.raises(ModelNotFoundError, match="/nonexistent"):
        main(["--debug", "eval", *data, "--prompter", "hf:/nonexistent"])
    with pytest.raises(UserError, match="--prompter"):
        main(["eval", *data, "--prompter", "bogus", "--debug"])  # also after the command
    with pytest.raises(ConfigNotFoundError):
        main(["--debug", "train", "--config", str(tmp_path / "nope.yaml")])


def test_python_dash_m_cli_is_one_line_too(tmp_path):
    """``python -m think2seg.cli`` runs the module as __main__: its errors are still caught."""
    r = subprocess.run([sys.executable, "-m", "think2seg.cli", "eval", "--data", f"earthreason:{tmp_path}",
                        "--out", str(tmp_path / "r"), "--prompter", "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "--prompter" in r.stderr


def test_python_dash_m_train_is_one_line_too(tmp_path):
    """``accelerate launch -m think2seg.training.grpo`` runs think2seg.training.grpo as __main__: a missing config is one line."""
    r = subprocess.run([sys.executable, "-m", "think2seg.training.grpo", "--config", str(tmp_path / "no.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"think2seg.training.grpo: error: --config {tmp_path / 'no.yaml'}: no such file"
