"""GRPO training through trl's GRPOTrainer: a smoke run that checkpoints and resumes, and a 2-process
CPU (gloo) run, on a tiny random-init Qwen2.5-VL of the real class and a SynthEarth fixture."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from think2seg.core.records import read_records

REPO = Path(__file__).resolve().parents[1]


def _args(policy: Path, data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [
        "--model",
        f"tiny:{policy}",
        "--data",
        f"earthreason:{data}",
        "--max_steps",
        str(steps),
        "--num_generations",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--max_completion_length",
        "16",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--output_dir",
        str(out),
        "--report_to",
        "none",
        "--save_steps",
        "1",
        "--logging_steps",
        "1",
        "--learning_rate",
        "1e-4",
        "--seed",
        "0",
        "--gradient_checkpointing",
        "false",
        *extra,
    ]


def _state(path: Path) -> dict:
    return json.loads((path / "trainer_state.json").read_text())


@pytest.mark.slow
def test_smoke_train_checkpoints_and_resumes(tiny_policy, synth_root, tmp_path):
    from think2seg.training.grpo import main

    out = tmp_path / "run"
    # the random test policy rarely ends an answer: its evaluations are capped below the protocol's 2048
    assert main(_args(tiny_policy, synth_root, out, 2, "--eval_split", "val", "--eval_limit", "2",
                      "--eval_max_new_tokens", "16")) == 0
    assert (out / "checkpoint-2").is_dir() and (out / "model.safetensors").is_file()
    cfg = json.loads((out / "think2seg_train_config.json").read_text())
    assert cfg["think2seg"]["reward"] == "think2seg" and cfg["grpo"]["num_generations"] == 4
    assert cfg["eval_generation"]["max_new_tokens"] == 16 and cfg["eval_generation"]["repetition_penalty"] == 1.0
    assert (out / "checkpoint-2" / "think2seg_prompter.json").is_file()
    logs = _state(out / "checkpoint-2")["log_history"]
    for key in (
        "rewards/think_format_reward/mean",
        "rewards/json_format/mean",
        "rewards/mask_iou/mean",
        "iou/median",
    ):
        assert any(key in row for row in logs), key
    curve = [json.loads(line) for line in (out / "eval_curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [0, 2] and all(r["n"] == 2 for r in curve)
    # each point says whether the answers depend on the question (SynthEarth records carry the category);
    # answer shares are over produced (non-empty) answers: NaN when the random policy produced none
    recs = read_records(out / "evals" / "step-2" / "records.jsonl")
    produced = sum(bool(x["produced"]) for x in recs)
    for r in curve:
        assert 0 <= r["think names category"] <= 1 and 0 <= r["distinct answers"] <= 1
        assert math.isnan(r["box area"]) or 0 < r["box area"] <= 1
    assert math.isnan(curve[-1]["top answer share"]) == (produced == 0)
    # the saved policy is usable as a prompter, with the metadata it was trained with
    from think2seg.prompters import build_prompter

    assert build_prompter(f"tiny:{out}").image_size == (56, 56)

    # resume from the last checkpoint with transformers' own mechanism: continues at step 2 -> 3; a thread
    # count for the run is recorded and the process's own setting is back afterwards
    import torch

    threads = torch.get_num_threads()
    assert main(_args(tiny_policy, synth_root, out, 3, "--resume_from_checkpoint", "last", "--threads", "1")) == 0
    steps = [row["step"] for row in _state(out / "checkpoint-3")["log_history"] if "loss" in row]
    assert steps == [1, 2, 3]
    assert json.loads((out / "think2seg_train_config.json").read_text())["think2seg"]["threads"] == 1
    assert torch.get_num_threads() == threads


def test_cpu_threads_sets_restores_and_rejects_zero():
    import torch

    from think2seg.training.grpo import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="--threads 0"), cpu_threads(0):
        pass


@pytest.mark.slow
def test_two_process_cpu_run(tiny_policy, synth_root, tmp_path):
    # 2 processes over gloo: in-training evaluation is data-parallel (every rank generates its share and
    # the ranks meet again in trl's next collective), and the wall-clock budget (0.001 min, spent before
    # the first step ends) is rank 0's decision, so both ranks stop after step 1 of 3 and save
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "configs/accelerate/cpu2.yaml"),
        "-m",
        "think2seg.training.grpo",
        *_args(tiny_policy, synth_root, out, 3, "--per_device_train_batch_size", "2", "--save_steps", "100",
               "--eval_split", "val", "--eval_limit", "3", "--eval_max_new_tokens", "16",
               "--max_minutes", "0.001"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    cfg = json.loads((out / "think2seg_train_config.json").read_text())
    # 2 per device x 2 processes = one group of G = 4 (a single process would be refused by trl)
    assert cfg["grpo"]["per_device_train_batch_size"] == 2 and cfg["world_size"] == 2
    assert json.loads((out / "think2seg_done.json").read_text())["global_step"] == 1
    curve = [json.loads(line) for line in (out / "eval_curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [0, 1] and all(r["n"] == 3 for r in curve)
    ev = out / "evals" / "step-1"
    assert json.loads((ev / "config.json").read_text())["world_size"] == 2
    assert len(read_records(ev / "records.jsonl")) == 3 and not list(ev.glob("records.part-*"))


@pytest.mark.slow
def test_sigterm_stops_after_the_step_and_saves(tiny_policy, synth_root, tmp_path):
    """A run killed with SIGTERM (a scheduler's pre-emption, `kill`) ends like a finished run with fewer
    steps: final model, trainer_state and think2seg_done.json saying why; exit status 0."""
    import signal
    import time

    out = tmp_path / "sig"
    log = tmp_path / "train.log"
    cmd = [sys.executable, "-m", "think2seg.training.grpo",
           *_args(tiny_policy, synth_root, out, 10_000, "--save_steps", "100000", "--logging_steps", "1")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while "'loss'" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)  # wait until optimizer steps are being logged
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "SIGTERM received: stopping after the current step" in text
    done = json.loads((out / "think2seg_done.json").read_text())
    assert done["stopped_by"] == "SIGTERM" and 1 <= done["global_step"] < 10_000
    assert (out / "model.safetensors").is_file() and (out / "trainer_state.json").is_file()
    assert _state(out)["global_step"] == done["global_step"]


SLOW_SAVE = '''"""think2seg.training.grpo with a final save slowed past torch elastic's default 30 s grace (test only)."""
import sys
import time

import transformers

from think2seg.training.grpo import main

save_model = transformers.Trainer.save_model


def slow_save_model(self, *args, **kwargs):
    time.sleep(35.0)
    return save_model(self, *args, **kwargs)


transformers.Trainer.save_model = slow_save_model
sys.exit(main())
'''


@pytest.mark.slow
def test_sigterm_to_accelerate_launch_saves_despite_a_slow_save(tiny_policy, synth_root, tmp_path):
    """item 5: under `accelerate launch` the SIGTERM goes to torch elastic's agent, which forwards it and
    SIGKILLs the workers TORCH_ELASTIC_SHUTDOWN_TIMEOUT s later (30 by default). With the value the
    documented launch lines export, a 2-process run whose final save takes 35 s still ends saved."""
    import re
    import signal
    import time

    exported = re.search(r"export TORCH_ELASTIC_SHUTDOWN_TIMEOUT=(\d+)", (REPO / "docs/gpus.md").read_text())
    out, log, script = tmp_path / "sig2", tmp_path / "train.log", tmp_path / "slow_save.py"
    script.write_text(SLOW_SAVE)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate/cpu2.yaml"),
           str(script), *_args(tiny_policy, synth_root, out, 10_000, "--per_device_train_batch_size", "2",
                               "--save_steps", "100000")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": exported.group(1)}
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while "'loss'" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)  # to the launcher only, as a scheduler's pre-emption would
        proc.wait(timeout=300)
    text = log.read_text()
    assert "SIGTERM received: stopping after the current step" in text
    done = json.loads((out / "think2seg_done.json").read_text())
    assert done["stopped_by"] == "SIGTERM" and done["global_step"] >= 1
    assert (out / "model.safetensors").is_file() and _state(out)["global_step"] == done["global_step"]
