"""SFT of the tiny prompter with trl's ``SFTTrainer`` on a stream of freshly rendered scenes.

    >>> run_sft(model, processor, cfg, workdir)     # cfg.sft_steps x cfg.sft_batch examples, never repeated  # doctest: +SKIP

The dataset is a ``datasets.IterableDataset`` whose generator renders each scene when the trainer asks
for it (conversational prompt/completion + an ``image`` column, completion-only loss), so memory does
not grow with ``cfg.sft_scenes``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from think2seg.core.styles import build_messages
from think2seg.warmstart.config import WarmstartConfig
from think2seg.warmstart.scenes import scene_examples


def _rows(cfg: WarmstartConfig):
    for p in scene_examples(cfg):
        yield {"prompt": build_messages(p.sample.question, cfg.style, cfg.template),
               "completion": [{"role": "assistant", "content": [{"type": "text", "text": p.target}]}],
               "image": Image.fromarray(p.image)}


def sft_dataset(cfg: WarmstartConfig):
    """The SFT stream as a ``datasets.IterableDataset`` (rendered lazily, in the stream's order)."""
    from datasets import IterableDataset

    return IterableDataset.from_generator(_rows, gen_kwargs={"cfg": cfg})


def freeze_warmed_layers(model, cfg: WarmstartConfig) -> None:
    """The vision tower is always frozen; the question-side warmed layers when ``cfg.lm_warmup_freeze``; the
    layers below the answer-side supervised one and its query / key projections when
    ``cfg.think_warmup_freeze`` (SFT otherwise moves that head's attention off the named category: target
    mass 0.65 after the warm-up, 0.12 after 600 SFT steps)."""
    for prm in model.model.visual.parameters():
        prm.requires_grad_(False)
    if cfg.lm_warmup_steps > 0 and cfg.lm_warmup_freeze:
        for prm in model.model.language_model.layers[: cfg.lm_warmup_layer].parameters():
            prm.requires_grad_(False)
    if cfg.think_warmup_steps > 0 and cfg.think_warmup_freeze:
        layers = model.model.language_model.layers
        attn = layers[cfg.think_warmup_layer].self_attn
        for prm in [*layers[: cfg.think_warmup_layer].parameters(), *attn.q_proj.parameters(),
                    *attn.k_proj.parameters()]:
            prm.requires_grad_(False)


def run_sft(model, processor, cfg: WarmstartConfig, workdir: Path) -> dict:
    from trl import SFTConfig, SFTTrainer

    freeze_warmed_layers(model, cfg)
    args = SFTConfig(
        output_dir=str(workdir), per_device_train_batch_size=cfg.sft_batch, max_steps=cfg.sft_steps,
        learning_rate=cfg.sft_lr, lr_scheduler_type="cosine", warmup_steps=max(1, int(cfg.sft_warmup * cfg.sft_steps)),
        weight_decay=0.0, logging_steps=max(1, cfg.sft_steps // 30), save_strategy="no", report_to=[],
        use_cpu=True, bf16=False, max_length=None, completion_only_loss=True, gradient_checkpointing=False,
        dataloader_num_workers=0, seed=cfg.seed, disable_tqdm=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(cfg), processing_class=processor)
    res = trainer.train()
    hist = [h for h in trainer.state.log_history if "loss" in h]
    return {"train_loss": res.training_loss, "last_loss": hist[-1]["loss"] if hist else None,
            "runtime_s": res.metrics.get("train_runtime")}
