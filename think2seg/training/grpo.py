"""GRPO training of the LVLM prompter with trl's ``GRPOTrainer`` (not a fork) and a mask-only reward.

    think2seg train --config configs/train/smoke.yaml [--max_steps 5 --output_dir runs/x ...]
    accelerate launch --config_file configs/accelerate/zero3.yaml -m think2seg.training.grpo --config configs/train/paper_qwen3b.yaml

Configuration is read by ``trl.TrlParser``: every ``GRPOConfig`` field (learning_rate, num_generations,
beta, temperature, max_completion_length, bf16, gradient_checkpointing, deepspeed...) plus
:class:`Think2SegArgs` (model, dataset, question policy, image size, prompt style/template, segmenter,
reward scheme, LoRA / frozen vision tower). YAML file first, command-line ``--key value`` overrides it.
The resolved configuration is written to ``<output_dir>/think2seg_train_config.json``.

Data: each training row is one (image, question) of the dataset with columns ``prompt`` (conversational
messages from :func:`think2seg.core.styles.build_messages`, image placeholder first), ``image`` (the image
squashed to the model input size, so coordinates and the reward's masks share one space), ``gt_mask``
(the label file path, resized with nearest neighbour by the reward), ``sample_id``, ``kind``.
Rewards come from :func:`think2seg.rewards.build_reward_funcs` (scheme ``think2seg`` = format +
mask IoU through the segmenter, one encoder pass per image per group).

Resuming: ``--resume_from_checkpoint last`` (or a checkpoint path) continues with transformers' own
mechanism (optimizer, scheduler, RNG and step restored).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from contextlib import contextmanager
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from think2seg.core import distributed as dist
from think2seg.core.errors import UserError, config_file
from think2seg.core.geometry import DEFAULT_MODEL_SIZE, resize_image
from think2seg.core.io import read_image
from think2seg.core.model_dirs import check_model_dir, looks_local
from think2seg.core.provenance import provenance
from think2seg.core.styles import build_messages
from think2seg.data import check_spec, load_dataset
from think2seg.evaluation.generation import eval_generation
from think2seg.prompters.chat import own_think_tags
from think2seg.prompters.families import FAMILIES, LM_TARGETS, Family, read_meta
from think2seg.prompters.tiny import check_checkpoint
from think2seg.rewards import build_reward_funcs, needs_segmenter
from think2seg.segmenters import parse_segmenter_spec, resolve_sam2_checkpoint, resolve_segmenter
from think2seg.training.options import Think2SegArgs
from think2seg.training.presets import PRESET_FIELDS, apply_preset
from think2seg.training.setup import (
    EVAL_PROTOCOL,
    attention_fallback,
    check_saved_pixels,
    eval_segmenter_of,
    merge_lora,
    pin_image_processor,
)

log = logging.getLogger(__name__)

IMAGE_CACHE = 64  # decoded, resized training images kept (per process): >= the distinct images of a step


def resolve_model(spec: str) -> tuple[str, dict[str, Any]]:
    """Model spec -> (path or hub id, its prompter metadata: template / style / image_size, read from a
    local checkpoint's ``think2seg_prompter.json``)."""

    if spec == "tiny" or spec.startswith("tiny:"):
        path = check_checkpoint(spec[5:] if spec.startswith("tiny:") else None)
        meta = read_meta(path)
        meta.setdefault("family", "qwen2.5-vl")
        return str(path), meta

    if looks_local(spec):
        path = check_model_dir(spec, "--model")
        return str(path), read_meta(path)
    return spec, {}


def build_train_dataset(
    t2s: Think2SegArgs,
    image_size: int,
    template: str,
    split: str | None = None,
    question_kind: str | None = None,
    limit: int | None = None,
):
    """A ``datasets.Dataset`` in trl's conversational VLM format (see module doc)."""
    from datasets import Dataset

    samples = load_dataset(
        t2s.data,
        split or t2s.train_split,
        questions=t2s.questions,
        question_kind=question_kind if question_kind is not None else t2s.question_kind,
        limit=limit if limit is not None else t2s.train_limit,
    )
    if len(samples) == 0:
        raise ValueError(f"--data {t2s.data!r} split {split or t2s.train_split!r}: no samples")
    rows = []
    for s in samples:
        if s.mask_path is None:
            raise ValueError(f"{s.id}: training needs a mask file per sample (mask_path)")
        rows.append(
            {
                "prompt": build_messages(s.question, t2s.style, template),
                "image_path": str(s.image_path),
                "gt_mask": str(s.mask_path),
                "sample_id": s.id,
                "kind": str(s.extra.get("kind", "")),
            }
        )
    ds = Dataset.from_list(rows)

    @lru_cache(maxsize=IMAGE_CACHE)
    def model_image(path: str) -> Image.Image:
        return Image.fromarray(resize_image(read_image(path), image_size))

    def add_images(batch: dict[str, list]) -> dict[str, list]:
        # trl repeats every prompt G times in a row: decode and resize each image once, not G times
        batch = dict(batch)
        batch["image"] = [model_image(p) for p in batch["image_path"]]
        return batch

    return ds.with_transform(add_images)


def resolve_args(t2s: Think2SegArgs, cfg: Any) -> tuple[Think2SegArgs, Any]:
    """New copies of the two config objects with what the run derives filled in (the given ones stay as
    they are): the template and input size (option, else the checkpoint's metadata, else the family's),
    the LoRA targets (option, else the family's), the attention kernel this machine can run, the scheme's reward weights (unless given) and
    ``remove_unused_columns=False`` (the rewards need the image and mask columns). Idempotent."""
    model_path, meta = resolve_model(t2s.model)
    template = t2s.template or meta.get("template", "reference")
    family = _family(model_path)
    image_size = int(t2s.image_size or meta.get("image_size") or (family.image_size if family else DEFAULT_MODEL_SIZE))
    targets = t2s.lora_target_modules or ",".join(family.lora_targets if family else LM_TARGETS)
    t2s = replace(t2s, template=template, image_size=image_size, lora_target_modules=targets)
    cfg = copy.copy(cfg)
    attn, warning = attention_fallback(cfg.model_init_kwargs)
    if warning:
        log.warning(warning)
        cfg.model_init_kwargs = {**cfg.model_init_kwargs, "attn_implementation": attn}
    if cfg.reward_weights is None:
        _, cfg.reward_weights = build_reward_funcs(t2s.reward, segmenter=t2s.segmenter, style=t2s.style,
                                                   policy=t2s.parse_policy)
    cfg.remove_unused_columns = False
    return t2s, cfg


def make_trainer(t2s: Think2SegArgs, cfg: Any, callbacks: list | None = None):
    """A ready ``GRPOTrainer`` (model, processor, dataset, rewards) from the two config objects."""
    from transformers import AutoProcessor

    from think2seg.training.loss_tokens import trainer_class

    t2s, cfg = resolve_args(t2s, cfg)
    model_path, _ = resolve_model(t2s.model)
    # the segmenter (SAM2 checkpoint resolved now: a missing file fails before minutes of model loading)
    segmenter = resolve_segmenter(t2s.segmenter) if needs_segmenter(t2s.reward) else t2s.segmenter
    processor = AutoProcessor.from_pretrained(model_path)
    if getattr(processor, "tokenizer", None) is not None:
        processor.tokenizer.padding_side = "left"
    own_think_tags(processor)  # a template opening <think> itself would cost every completion its tag
    if getattr(cfg, "use_vllm", False):
        check_saved_pixels(processor, t2s.image_size, model_path)
    pin_image_processor(processor, t2s.image_size)
    funcs, _ = build_reward_funcs(
        t2s.reward,
        segmenter=segmenter,
        style=t2s.style,
        empty_json_ok_on_target=t2s.empty_json_ok_on_target,
        policy=t2s.parse_policy,
    )
    train_ds = build_train_dataset(t2s, t2s.image_size, t2s.template)

    peft_config = None
    if t2s.lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=t2s.lora_r,
            lora_alpha=t2s.lora_alpha,
            lora_dropout=t2s.lora_dropout,
            target_modules=[m.strip() for m in t2s.lora_target_modules.split(",") if m.strip()],
            # restrict to the language model: vision blocks reuse some of these names
            exclude_modules=r".*visual.*|.*vision.*",
            task_type="CAUSAL_LM",
        )
    trainer = trainer_class(t2s.loss_tokens)(
        model=model_path,
        reward_funcs=funcs,
        args=cfg,
        train_dataset=train_ds,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    trainer.think2seg_args = t2s  # the resolved options (the caller's object stays as given)
    if t2s.freeze_vision:
        n = 0
        for name, p in trainer.model.named_parameters():
            if ".visual." in f".{name}" or "vision_tower" in name or "vision_model" in name:
                p.requires_grad_(False)
                n += p.numel()
        log.info("froze %d vision parameters", n)
    return trainer


def _family(model_path: str) -> Family | None:
    """The model's family (:data:`think2seg.prompters.families.FAMILIES`: input size, LoRA targets), or None."""
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(model_path).model_type
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def save_resolved_config(t2s: Think2SegArgs, cfg: Any) -> Path | None:
    """Write ``<output_dir>/think2seg_train_config.json`` (the options, trl's config, the world size, the
    evaluation generation settings, provenance) on rank 0; other ranks write nothing and get None."""
    if dist.rank() != 0:
        return None
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    grpo = {k: v for k, v in cfg.to_dict().items() if not k.startswith("_")}
    path = out / "think2seg_train_config.json"
    path.write_text(
        json.dumps(
            {
                "think2seg": asdict(t2s),
                "preset": {"name": t2s.preset, "fields": {k: getattr(cfg, k) for k in PRESET_FIELDS}}
                if t2s.preset else None,
                "grpo": grpo,
                "world_size": cfg.world_size,
                # how the in-training evaluations decode (those of `think2seg eval --protocol authors`)
                "eval_generation": eval_generation(EVAL_PROTOCOL, t2s.eval_max_new_tokens) if t2s.eval_split else None,
                **provenance(),
            },
            indent=2,
            default=str,
        )
    )
    return path


def parse_args(argv: list[str] | None = None):
    from trl import GRPOConfig, TrlParser

    args = sys.argv[1:] if argv is None else argv
    for i, a in enumerate(args):  # a missing --config is the user's, named in one line
        if a.startswith("--config="):
            config_file(a.split("=", 1)[1])
        elif a == "--config" and i + 1 < len(args):
            config_file(args[i + 1])
    parser = TrlParser((Think2SegArgs, GRPOConfig))
    t2s, cfg = parser.parse_args_and_config(args=argv)
    apply_preset(t2s.preset, cfg, args)
    return t2s, cfg


def check_args(t2s: Think2SegArgs) -> None:
    """Before anything loads: a :class:`~think2seg.core.errors.UserError` naming the option for a model, data or
    segmenter spec that cannot work (missing model directory or SAM2 checkpoint, unknown format or backend)."""

    resolve_model(t2s.model)
    from think2seg.training.loss_tokens import check_loss_tokens

    for option, check in (("--data", check_spec), ("--segmenter", parse_segmenter_spec),
                          ("--eval_segmenter", lambda v: v is None or parse_segmenter_spec(v)),
                          ("--loss_tokens", check_loss_tokens)):
        try:
            check(getattr(t2s, option[2:]))
        except ValueError as e:
            raise UserError(f"{option}: {e}") from e
    for spec in {t2s.segmenter, eval_segmenter_of(t2s)}:
        seg = parse_segmenter_spec(spec)
        if seg.backend == "sam2" and not seg.random:
            resolve_sam2_checkpoint(seg.size, seg.checkpoint)


def train(t2s: Think2SegArgs, cfg: Any) -> Any:
    """Build the trainer, train (resuming if asked), save the final model + processor. Returns the trainer."""
    from transformers.trainer_utils import get_last_checkpoint

    check_args(t2s)
    t2s, cfg = resolve_args(t2s, cfg)  # the callbacks and the saved config see the resolved values

    from think2seg.training.health import HealthRules
    from think2seg.training.health_callback import HealthCallback
    from think2seg.training.meta import PrompterMetaCallback, write_prompter_meta
    from think2seg.training.stop import STOP_FILE, StopSignalCallback, TimeBudgetCallback

    stop = StopSignalCallback(stop_file=Path(cfg.output_dir) / STOP_FILE)
    budget = TimeBudgetCallback(t2s.max_minutes) if t2s.max_minutes else None
    health = HealthCallback(HealthRules(window=t2s.health_window, iou_flat_steps=t2s.health_iou_flat_steps),
                            stop_on_collapse=t2s.stop_on_collapse)
    callbacks: list = [stop, health, PrompterMetaCallback(t2s)] + ([budget] if budget else [])
    evaluator = None
    if t2s.eval_split:
        from think2seg.training.heldout_eval import EvalCallback

        evaluator = EvalCallback(t2s)
        callbacks.append(evaluator)
    with cpu_threads(t2s.threads):
        trainer = make_trainer(t2s, cfg, callbacks=callbacks)
        if evaluator is not None:
            evaluator.trainer = trainer  # its wrapped model and accelerator gather ZeRO-3 weights
        health.attach(trainer)
        save_resolved_config(t2s, cfg)
        resume = cfg.resume_from_checkpoint
        if resume == "last":
            resume = get_last_checkpoint(cfg.output_dir)
            if resume is None:
                log.warning("--resume_from_checkpoint last: no checkpoint in %s, starting fresh", cfg.output_dir)
        trainer.train(resume_from_checkpoint=resume or None)
    lora = t2s.lora_r > 0
    # LoRA: the adapter goes to <output_dir>/adapter and the merged model to <output_dir> (hf:<dir> loads
    # it; an adapter_config.json beside config.json would make transformers load the base model instead)
    trainer.save_model(str(Path(cfg.output_dir) / "adapter") if lora else cfg.output_dir)
    if trainer.accelerator.is_main_process:
        if lora:
            merge_lora(Path(cfg.output_dir) / "adapter", cfg.output_dir)
        trainer.processing_class.save_pretrained(cfg.output_dir)
        write_prompter_meta(t2s, cfg.output_dir)
        trainer.state.save_to_json(str(Path(cfg.output_dir) / "trainer_state.json"))
        done = {"global_step": trainer.state.global_step, "max_steps": trainer.state.max_steps,
                "stopped_by": stop.stopped_by or health.stopped_by or (budget.stopped_by if budget else None),
                "health": sorted(health.monitor.fired)}
        Path(cfg.output_dir, "think2seg_done.json").write_text(json.dumps(done))
    return trainer


@contextmanager
def cpu_threads(n: int | None):
    """torch's intra-op CPU threads set to ``n`` inside the block (nothing when None), restored after:
    training in a notebook kernel leaves the kernel's setting as it was."""
    import torch

    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"--threads {n}: must be >= 1 (or unset for torch's default)")
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    dist.resolve_deepspeed_config()  # before accelerate reads it (a launch outside the repository root)
    t2s, cfg = parse_args(argv)
    train(t2s, cfg)
    return 0


if __name__ == "__main__":  # accelerate launch -m think2seg.training.grpo: user errors in one line, as in the CLI
    try:
        sys.exit(main())
    except UserError as e:
        print(f"think2seg.training.grpo: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
