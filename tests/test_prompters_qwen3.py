"""Qwen3-VL and Qwen3.5 prompters on tiny random-init models of the real classes, saved and reloaded
through ``hf:<dir>`` (no mocks): family detection, pixel pinning to patch 16 x merge 2, generation, the
thinking template of Qwen3.5, one GRPO step each through the trl entry, and think2seg_prompter.json."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tiny_models import build_tiny  # noqa: E402

from think2seg.core.types import Sample  # noqa: E402
from think2seg.prompters import HFPrompter, build_prompter  # noqa: E402
from think2seg.prompters.chat import opens_think  # noqa: E402
from think2seg.prompters.families import FAMILIES, META_FILE  # noqa: E402

NEW = ("qwen3-vl", "qwen3.5")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_qwen3")
    for fam in NEW:
        build_tiny(fam, root / fam, image_size=64)
    return {fam: root / fam for fam in NEW}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    out = []
    for i, q in enumerate(["Where is the runway?", "Which large round tanks store oil near the harbour?"]):
        path = root / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (50 + 30 * i, 90, 3), dtype=np.uint8)).save(path)
        out.append(Sample(id=f"s{i}", image_id=str(i), question=q, image_path=path, dataset="unit", split="test"))
    return out


@pytest.mark.parametrize("fam", NEW)
def test_family_size_and_generation_through_hf_spec(dirs, samples, fam):
    p = build_prompter(f"hf:{dirs[fam]}?max_new_tokens=5&batch_size=4")
    assert isinstance(p, HFPrompter) and p.family.name == fam and p.image_size == (832, 832)
    p = build_prompter(f"hf:{dirs[fam]}?image_size=64&max_new_tokens=5&batch_size=4")
    greedy = p.generate(samples)
    assert [len(g) for g in greedy] == [1, 1] and all(isinstance(g[0], str) and g[0] for g in greedy)
    assert p.generate(samples[:1]) == greedy[:1]  # left padding does not change the short prompt's answer
    a = p.generate(samples, n=2, temperature=1.0, seed=3)
    assert a == p.generate(samples, n=2, temperature=1.0, seed=3) and any(x[0] != x[1] for x in a)
    assert p.model.dtype.is_floating_point and str(p.model.dtype) == "torch.float32"  # fp32 on CPU


@pytest.mark.parametrize("fam", NEW)
def test_pixels_are_pinned_to_patch_16_times_merge_2(dirs, samples, fam):
    p = HFPrompter(dirs[fam], image_size=96, max_new_tokens=3)  # saved processor pinned at 64 px
    inputs = p.prepare(samples, repeat=2)
    assert inputs["image_grid_thw"].tolist() == [[1, 6, 6]] * 4  # 96 / 16 patches per side
    per_row = (inputs["input_ids"] == p.model.config.image_token_id).sum(1).tolist()
    assert per_row == [9] * 4  # (96 / 32) ** 2 merged tokens, every row (left padded)
    assert inputs["attention_mask"][:, -1].all()
    with pytest.raises(ValueError, match="multiple of 32"):
        HFPrompter(dirs[fam], image_size=84).load()


def test_qwen35_thinking_template_leaves_the_think_tag_to_the_model(dirs):
    p = HFPrompter(dirs["qwen3.5"], image_size=64)
    text = p.prompt_text("Where is the runway?")
    assert text.endswith("<|im_start|>assistant\n") and not text.rstrip().endswith("<think>")
    assert not opens_think(p.processor)
    # the saved template itself opens <think> (what the wrapper removes); a user turn renders unchanged
    from transformers import AutoProcessor

    raw = AutoProcessor.from_pretrained(dirs["qwen3.5"])
    assert opens_think(raw)
    msgs = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert raw.apply_chat_template(msgs, tokenize=False) == p.processor.apply_chat_template(msgs, tokenize=False)
    q = HFPrompter(dirs["qwen3-vl"], image_size=64)
    assert q.prompt_text("x").endswith("<|im_start|>assistant\n") and not opens_think(q.processor)


def test_lora_targets_cover_qwen35_linear_attention():
    assert {"in_proj_qkv", "in_proj_z", "out_proj"} <= set(FAMILIES["qwen3.5"].lora_targets)
    assert FAMILIES["qwen3-vl"].lora_targets == FAMILIES["qwen2.5-vl"].lora_targets
    assert FAMILIES["qwen3-vl"].vllm and FAMILIES["qwen3.5"].vllm


@pytest.mark.parametrize("fam,lora", [("qwen3-vl", False), ("qwen3.5", True)])
def test_one_grpo_step_and_prompter_meta_round_trip(dirs, synth_root, tmp_path, fam, lora):
    from safetensors import safe_open

    from think2seg.training.grpo import main

    out = tmp_path / fam
    args = ["--model", str(dirs[fam]), "--data", f"earthreason:{synth_root}", "--output_dir", str(out),
            "--image_size", "64", "--template", "compact", "--num_generations", "2",
            "--per_device_train_batch_size", "2", "--max_completion_length", "6", "--max_steps", "1",
            "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--gradient_checkpointing", "false",
            "--save_steps", "100", "--seed", "0", "--segmenter", "boxfill", "--learning_rate", "1e-3"]
    if lora:
        args += ["--lora_r", "4"]
    assert main(args) == 0
    done = json.loads((out / "think2seg_done.json").read_text())
    assert done["global_step"] == 1
    meta = json.loads((out / META_FILE).read_text())
    assert meta["image_size"] == 64 and meta["template"] == "compact"
    saved = json.loads((out / "think2seg_train_config.json").read_text())["think2seg"]
    if lora:
        targets = saved["lora_target_modules"].split(",")
        assert "in_proj_qkv" in targets and "q_proj" in targets  # the family's default targets
        adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
        assert "in_proj_qkv" in adapter["target_modules"]
        with safe_open(out / "model.safetensors", "pt") as merged:
            assert not [k for k in merged.keys() if "lora_" in k]  # noqa: SIM118 (merged: no lora_ tensors)
    p = build_prompter(f"hf:{out}?max_new_tokens=4")  # meta file -> 64 px, compact template
    assert p.family.name == fam and p.image_size == (64, 64) and p.template == "compact"
    assert not opens_think(p.processor)
    assert len(p.generate([_sample(synth_root)])[0]) == 1


def _sample(root):
    from think2seg.data import load_dataset

    return load_dataset(f"earthreason:{root}", "val", questions="first", limit=1)[0]
