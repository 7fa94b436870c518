"""The warm-start driver: data -> tokenizer and model -> vision warm-up + whitening -> LLM warm-up(s) ->
SFT -> save -> grounding report (``<out>/warmstart_report.json``).

    >>> from think2seg.warmstart import WarmstartConfig, warmstart
    >>> report = warmstart(WarmstartConfig(out="/tmp/ws", sft_steps=200))     # or `think2seg warmstart`  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.data.scenes import CATEGORY_KEYS
from think2seg.prompters.tiny import META_FILE, TinyPrompter
from think2seg.prompters.tinybuild import save_tiny
from think2seg.warmstart import llm, scenes, sft, vision
from think2seg.warmstart.config import WarmstartConfig
from think2seg.warmstart.report import evaluate, evaluate_sampled

log = logging.getLogger(__name__)


def save(model, processor, cfg: WarmstartConfig, out: Path, report: dict) -> None:
    """fp16 ``save_pretrained`` dir + ``think2seg_prompter.json`` (template, style, size) + the report."""
    import torch

    for prm in model.parameters():
        prm.requires_grad_(True)
    save_tiny(model, processor, out, dtype=torch.float16)
    meta = {"template": cfg.template, "style": cfg.style, "image_size": cfg.image_size, "max_new_tokens": 280,
            "built_by": "think2seg warmstart", "config": asdict(cfg)}
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    (out / "warmstart_report.json").write_text(json.dumps(report, indent=1))


def grounding_report(prompter, cfg: WarmstartConfig, explicit, implicit) -> dict[str, Any]:
    """The report rows on prepared val samples (see :mod:`think2seg.warmstart.report`)."""

    return {
        "explicit": evaluate(prompter, explicit),
        "explicit_shuffled_images": evaluate(prompter, explicit, shuffle_images=True, seed=cfg.seed),
        "implicit": evaluate(prompter, implicit),
        "implicit_forced_think": evaluate(prompter, implicit, forced_think="right"),
        "implicit_forced_wrong_think": evaluate(prompter, implicit, forced_think="wrong", seed=cfg.seed),
        "implicit_sampled": evaluate_sampled(prompter, implicit[: cfg.eval_sampled_n], seed=cfg.seed),
    }


def warmstart(cfg: WarmstartConfig) -> dict:
    """Build the tiny prompter into ``cfg.out`` and return its report."""
    import torch

    t0 = time.time()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"config": asdict(cfg), "timings_s": {}}

    def lap(name: str) -> None:
        report["timings_s"][name] = round(time.time() - t0, 1)
        log.info("[%.0f s] %s done", time.time() - t0, name)

    data = scenes.ensure_data(cfg)
    rng = random.Random(cfg.seed)
    val_exp = scenes.load_split(data, "val", "explicit")
    val_imp = scenes.load_split(data, "val", "implicit")
    ve = scenes.prepare(rng.sample(val_exp, min(cfg.eval_n, len(val_exp))), cfg.image_size)
    vi = scenes.prepare(rng.sample(val_imp, min(cfg.eval_n, len(val_imp))), cfg.image_size)
    report["data"] = {"root": data, "sft_scenes": cfg.sft_scenes, "sft_examples": cfg.sft_steps * cfg.sft_batch}
    lap("data")
    model, processor = llm.build(cfg, scenes.tokenizer_texts(cfg))
    report["params"] = sum(p.numel() for p in model.parameters())
    lap("build")
    if cfg.vision_steps > 0:
        items = scenes.render_warmup_scenes(cfg.vision_scenes, cfg.data_size, cfg.image_size, cfg.seed)
        report["vision_warmup"], head = vision.vision_warmup(model, processor, items, CATEGORY_KEYS, cfg)
        del items
        held_out = scenes.render_warmup_scenes(100, cfg.data_size, cfg.image_size, cfg.seed + 1)
        report["vision_warmup"]["occupancy_iou_held_out"] = vision.occupancy_iou(
            model, processor, head, held_out, CATEGORY_KEYS, cfg.image_size)
        lap("vision_warmup")
    images = [p.image for p in scenes.scene_examples(cfg, stream=scenes.WHITEN_STREAM, count=400)]
    report["whiten"] = vision.whiten_merger(model, processor, images)
    del images
    if cfg.lm_warmup_steps > 0:
        report["lm_warmup"] = llm.lm_warmup(model, processor, scenes.scene_examples(
            cfg, stream=scenes.LM_WARMUP_STREAM, count=cfg.lm_warmup_steps * cfg.sft_batch), cfg)
        lap("lm_warmup")
    if cfg.think_warmup_steps > 0:
        report["think_warmup"] = llm.think_warmup(model, processor, scenes.scene_examples(
            cfg, stream=scenes.LM_WARMUP_STREAM, count=cfg.think_warmup_steps * cfg.sft_batch), cfg)
        lap("think_warmup")
    report["sft"] = sft.run_sft(model, processor, cfg, out / "_sft_work")
    lap("sft")
    save(model, processor, cfg, out, report)

    report["eval"] = grounding_report(TinyPrompter(out), cfg, ve, vi)
    lap("eval")
    report["wall_time_s"] = round(time.time() - t0, 1)
    (out / "warmstart_report.json").write_text(json.dumps(report, indent=1))
    shutil.rmtree(out / "_sft_work", ignore_errors=True)
    return report
