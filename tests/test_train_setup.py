"""What training fixes before trl sees the model, and what a trained policy carries to evaluation: the
paper recipe read back through the config loader, the processor pinned to the training size, the
checkpoint's think2seg_prompter.json read by `hf:`, images decoded once per step, the SAM2 checkpoint
resolved first, the flash-attention fallback, and a LoRA run evaluated as `hf:<output_dir>`."""

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER = ("paper_qwen3b.yaml", "paper_qwen7b.yaml", "paper_qwen3b_vllm.yaml", "paper_qwen3vl2b.yaml",
         "paper_qwen3vl2b_lora.yaml")


def _parse(*argv: str):
    from think2seg.training.grpo import parse_args

    return parse_args(list(argv))


@pytest.mark.parametrize("name", PAPER)
def test_paper_configs_state_the_released_sampling_and_kl(name):
    # --use_cpu only lets bf16 configs parse on a machine without a GPU; nothing else is overridden
    t2s, cfg = _parse("--config", str(REPO / "configs/train" / name), "--use_cpu", "true")
    assert (cfg.temperature, cfg.top_k, cfg.top_p, cfg.repetition_penalty) == (1.0, 50, 1.0, 1.0)
    assert cfg.use_bias_correction_kl is False and cfg.beta == 1e-3
    assert cfg.log_multimodal is False and cfg.save_total_limit == 2 and cfg.save_only_model is False
    assert t2s.image_size == (832 if "qwen3vl" in name else 840)
    assert cfg.model_init_kwargs["attn_implementation"] == "flash_attention_2"
    assert (t2s.lora_r, t2s.freeze_vision) == ((64, True) if name.endswith("_lora.yaml") else (0, False))
    if name.endswith("_vllm.yaml"):
        assert cfg.use_vllm and cfg.vllm_mode == "colocate" and cfg.vllm_max_model_length == 3072
        assert 0 < cfg.vllm_gpu_memory_utilization < 1 and cfg.vllm_tensor_parallel_size == 1
    else:
        assert cfg.use_vllm is False


def test_hf_prompter_takes_size_and_template_from_the_checkpoint(tiny_policy, tmp_path):
    from think2seg.prompters import build_prompter

    p = build_prompter(f"hf:{tiny_policy}")
    assert p.image_size == (56, 56) and p.template == "compact"
    assert build_prompter(f"hf:{tiny_policy}?image_size=28").image_size == (28, 28)  # explicit wins
    bare = tmp_path / "bare"
    shutil.copytree(tiny_policy, bare)
    (bare / "think2seg_prompter.json").unlink()
    assert build_prompter(f"hf:{bare}").image_size == (840, 840)  # the family default without it


def _train_args(policy: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", f"tiny:{policy}", "--data", f"earthreason:{data}", "--output_dir", str(out),
            "--num_generations", "4", "--per_device_train_batch_size", "4", "--max_completion_length", "8",
            "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--gradient_checkpointing", "false",
            "--seed", "0", *extra]


def test_training_pins_the_processor_and_falls_back_from_flash_attention(
    tiny_policy, synth_root, tmp_path, caplog
):
    from transformers import AutoProcessor

    from think2seg.training.grpo import make_trainer
    from think2seg.training.setup import flash_attention_status

    # a checkpoint whose saved processor caps images at 28 x 28 pixels (one merged token)
    capped = tmp_path / "capped"
    shutil.copytree(tiny_policy, capped)
    proc = AutoProcessor.from_pretrained(capped)
    proc.image_processor.size = {"shortest_edge": 784, "longest_edge": 784}
    proc.save_pretrained(capped)
    image = np.zeros((56, 56, 3), np.uint8)

    def tokens(processor) -> int:
        out = processor(text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[image], return_tensors="pt")
        return int(out["image_grid_thw"].prod()) // 4  # merged 2 x 2 patches per token

    assert tokens(AutoProcessor.from_pretrained(capped)) == 1  # as saved: the 56 px image is downscaled
    t2s, cfg = _parse(*_train_args(capped, synth_root, tmp_path / "run", "--max_steps", "1"))
    cfg.model_init_kwargs = {"attn_implementation": "flash_attention_2"}
    with caplog.at_level("WARNING"):
        trainer = make_trainer(t2s, cfg)
    assert trainer.think2seg_args.image_size == 56 and tokens(trainer.processing_class) == 4  # 2 x 2 tokens
    assert t2s.image_size is None and cfg.model_init_kwargs == {"attn_implementation": "flash_attention_2"}  # as given
    if flash_attention_status() is not None:  # this machine: flash_attn missing (or no CUDA)
        assert trainer.model.config._attn_implementation == "sdpa"
        assert any("flash_attention_2 requested" in r.getMessage() for r in caplog.records)

    t2s, cfg = _parse(*_train_args(capped, synth_root, tmp_path / "run2", "--image_size", "50"))
    with pytest.raises(ValueError, match="--image_size 50: must be a multiple of 28"):
        make_trainer(t2s, cfg)


def test_training_images_are_decoded_once_per_image(tiny_policy, synth_root, tmp_path):
    from think2seg.training.grpo import build_train_dataset

    t2s, _ = _parse(*_train_args(tiny_policy, synth_root, tmp_path / "run"))
    ds = build_train_dataset(t2s, 56, "compact")
    rows = ds[[0, 0, 0, 1]]["image"]  # trl's sampler repeats each prompt G times in a row
    assert rows[0] is rows[1] is rows[2] and rows[3] is not rows[0]
    assert rows[0].size == (56, 56) and ds[0]["image"] is rows[0]


def test_missing_sam2_checkpoint_fails_before_the_model_loads(tiny_policy, synth_root, tmp_path, monkeypatch):
    from think2seg.segmenters import CheckpointNotFoundError
    from think2seg.training.grpo import make_trainer

    monkeypatch.setenv("THINK2SEG_SAM2_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no ./checkpoints either
    t2s, cfg = _parse(*_train_args(tiny_policy, synth_root, tmp_path / "run", "--segmenter", "sam2:small"))
    with pytest.raises(CheckpointNotFoundError):
        make_trainer(t2s, cfg)


@pytest.mark.slow
def test_lora_run_is_evaluated_as_hf_output_dir(tiny_policy, synth_root, tmp_path):
    from safetensors import safe_open

    from think2seg.evaluation.engine import EvalConfig, evaluate
    from think2seg.training.grpo import main

    out = tmp_path / "lora"
    assert main(_train_args(tiny_policy, synth_root, out, "--max_steps", "1", "--lora_r", "4",
                            "--save_steps", "100", "--learning_rate", "1e-3")) == 0
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "config.json").is_file()
    assert not (out / "adapter_config.json").exists()  # else transformers would load the base instead
    with safe_open(out / "model.safetensors", "pt") as merged, safe_open(tiny_policy / "model.safetensors", "pt") as base:
        assert set(merged.keys()) == set(base.keys())  # a plain model: LoRA merged, no lora_ tensors
    m = evaluate(EvalConfig(data=f"earthreason:{synth_root}", split="val", prompter=f"hf:{out}?max_new_tokens=8",
                            segmenter="grabcut", limit=2, out=str(tmp_path / "ev")), progress=False)
    cfg = json.loads((tmp_path / "ev" / "config.json").read_text())
    assert m["n"] == 2 and cfg["result_options"]["image_size"] == [56, 56]


@pytest.mark.parametrize("extra,expect", [((), "grabcut"), (("--segmenter", "boxfill"), "boxfill"),
                                          (("--segmenter", "boxfill", "--eval_segmenter", "grabcut"), "grabcut")])
def test_eval_segmenter_defaults_to_the_training_one(tiny_policy, synth_root, tmp_path, extra, expect):
    from think2seg.training.grpo import check_args
    from think2seg.training.setup import eval_segmenter_of

    t2s, _ = _parse(*_train_args(tiny_policy, synth_root, tmp_path / "run", *extra))
    check_args(t2s)
    assert eval_segmenter_of(t2s) == expect
    assert eval_segmenter_of(asdict(t2s)) == expect  # the saved form (think2seg_train_config.json)


def test_bad_eval_segmenter_is_one_line_naming_the_option(tiny_policy, synth_root, tmp_path, monkeypatch):
    from think2seg.core.errors import UserError
    from think2seg.training.grpo import check_args

    t2s, _ = _parse(*_train_args(tiny_policy, synth_root, tmp_path / "run", "--eval_segmenter", "sam9"))
    with pytest.raises(UserError, match="^--eval_segmenter: unknown segmenter backend 'sam9'"):
        check_args(t2s)
    monkeypatch.setenv("THINK2SEG_SAM2_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    t2s, _ = _parse(*_train_args(tiny_policy, synth_root, tmp_path / "run", "--eval_segmenter", "sam2:small"))
    from think2seg.segmenters import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError):  # resolved before any model loads
        check_args(t2s)
