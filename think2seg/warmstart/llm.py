"""The tiny prompter's tokenizer and model, and the two plain-torch warm-ups of its language model.

    >>> model, processor = build(cfg, tokenizer_texts(cfg))  # doctest: +SKIP
    >>> lm_warmup(model, processor, scene_examples(cfg, stream=LM_WARMUP_STREAM), cfg)      # question side  # doctest: +SKIP
    >>> think_warmup(model, processor, scene_examples(cfg, stream=LM_WARMUP_STREAM), cfg)   # answer side  # doctest: +SKIP

* :func:`lm_warmup` (text-first templates): a linear probe on an early layer's image-token states learns
  the sub-cell occupancy of the ASKED category, so the image tokens "know" what the question asks.
* :func:`think_warmup` (any template with the image before the completion): one attention head of layer
  ``cfg.think_warmup_layer``, queried from the completion tokens from the category named in ``<think>``
  onwards, is trained to put its weight on the image tokens of THAT category (cross-entropy against the
  category's token occupancy). The lookup "category in <think> -> its image tokens" then exists before
  SFT, whatever the question says.

Both leave a standard ``Qwen2_5_VLForConditionalGeneration`` (the probe is discarded).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from think2seg.core.styles import TEXT_FIRST, build_messages
from think2seg.prompters.tinybuild import build_tiny_qwen2_5_vl, train_bpe_tokenizer
from think2seg.warmstart.config import WarmstartConfig
from think2seg.warmstart.scenes import Prepared
from think2seg.warmstart.targets import category_of, think_prefill
from think2seg.warmstart.vision import cell_iou, token_occupancy

log = logging.getLogger(__name__)


def init_number_embeddings(model, tokenizer, n: int, seed: int = 0) -> None:
    """Embeddings of the coordinate tokens "0".."n-1": a random projection of sinusoidal features of the
    value, so nearby values start close (and, tied, the output head prefers neighbours of a right value)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    emb = model.get_input_embeddings().weight
    ids = torch.tensor(tokenizer.convert_tokens_to_ids([str(i) for i in range(n)]))
    v = torch.arange(n, dtype=torch.float32)[:, None] / n
    freqs = torch.tensor([0.5, 1, 2, 4, 8, 16], dtype=torch.float32)[None, :] * math.pi
    feats = torch.cat([torch.sin(v * freqs), torch.cos(v * freqs)], dim=1)  # (n, 12)
    val = feats @ (torch.randn(feats.shape[1], emb.shape[1], generator=g) / math.sqrt(feats.shape[1]))
    val = val / val.std() * emb.std().item() * 2
    with torch.no_grad():
        emb[ids] = val + 0.3 * emb[ids]


def build(cfg: WarmstartConfig, texts: list[str]):
    """A random-init ``(model, processor)`` whose BPE is trained on ``texts`` (+ one token per coordinate)."""

    tok = train_bpe_tokenizer(texts, cfg.vocab_size, number_tokens=cfg.image_size)
    model, processor = build_tiny_qwen2_5_vl(
        tok, image_size=cfg.image_size, seed=cfg.seed, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_key_value_heads,
        rope_theta=cfg.rope_theta, vision_depth=cfg.vision_depth, vision_hidden_size=cfg.vision_hidden_size,
        vision_intermediate_size=cfg.vision_intermediate_size, vision_num_heads=cfg.vision_num_heads,
    )
    init_number_embeddings(model, tok, cfg.image_size, cfg.seed)
    return model, processor


def _batches(examples: Iterable[Prepared], size: int, keep=lambda p: True) -> Iterator[list[Prepared]]:
    it = (p for p in examples if keep(p))
    while batch := list(itertools.islice(it, size)):
        yield batch


def _prompt(processor, p: Prepared, cfg: WarmstartConfig) -> str:
    return processor.apply_chat_template(build_messages(p.sample.question, cfg.style, cfg.template),
                                         add_generation_prompt=True, tokenize=False)


def lm_warmup(model, processor, examples: Iterable[Prepared], cfg: WarmstartConfig) -> dict:
    """Question-side warm-up (text-first templates only): a linear probe on layer ``cfg.lm_warmup_layer``'s
    image-token states learns, with the layers below, the (G*G, 16) sub-cell occupancy of the asked
    category (BCE). ``examples`` must yield at least ``cfg.lm_warmup_steps * cfg.sft_batch`` items."""
    import torch

    if cfg.template not in TEXT_FIRST:
        raise ValueError(f"lm_warmup_steps > 0 needs a text-first template ({sorted(TEXT_FIRST)}), "
                         f"not template={cfg.template!r}")
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    probe = torch.nn.Linear(model.config.text_config.hidden_size, 16)
    layers = model.model.language_model.layers[: cfg.lm_warmup_layer]
    params = [*model.get_input_embeddings().parameters(), *layers.parameters(), *probe.parameters()]
    for prm in model.model.visual.parameters():
        prm.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=cfg.lm_warmup_lr, weight_decay=0.0)
    model.train()
    stats: dict[str, float] = {}
    batches = _batches(examples, cfg.sft_batch)
    for step in tqdm(range(cfg.lm_warmup_steps), desc="LLM warm-up", mininterval=10):
        batch = next(batches)
        enc = processor(text=[_prompt(processor, p, cfg) for p in batch],
                        images=[Image.fromarray(p.image) for p in batch], padding=True, return_tensors="pt")
        out = model.model(**enc, output_hidden_states=True)
        h = out.hidden_states[cfg.lm_warmup_layer][enc["input_ids"] == image_id]  # (B*G*G, hid), row-major
        y = torch.from_numpy(np.concatenate([token_occupancy(p.mask) for p in batch]))
        logits = probe(h)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0 or step == cfg.lm_warmup_steps - 1:
            stats = {"loss": loss.item(), "cell_iou": cell_iou(logits.detach() > 0, y > 0.5)}
            log.info("LLM warm-up step %d: %s", step, stats)
    model.eval()
    return stats


def think_query_spans(processor, batch: list[Prepared], cfg: WarmstartConfig):
    """Tokenised prompt + target completion of each example (left-padded) and, per row, the token span
    from the last token of the category named in ``<think>`` to the end of the completion."""

    tok = processor.tokenizer
    prompts = [_prompt(processor, p, cfg) for p in batch]
    enc = processor(text=[pr + p.target for pr, p in zip(prompts, batch, strict=True)],
                    images=[Image.fromarray(p.image) for p in batch], padding=True, return_tensors="pt")
    spans = []
    for row, (pr, p) in enumerate(zip(prompts, batch, strict=True)):
        n_full = int(enc["attention_mask"][row].sum())
        full = tok(pr + p.target, add_special_tokens=False)["input_ids"]
        head = tok(pr + think_prefill(category_of(p.sample)), add_special_tokens=False)["input_ids"]
        if full[: len(head)] != head:
            raise ValueError(f"the <think> prefill of {p.sample.id} is not a token prefix of its target")
        pad = enc["input_ids"].shape[1] - n_full
        # the image expands to G*G tokens in enc but is one <|image_pad|> in the plain tokenisation
        grow = n_full - len(full)
        spans.append((pad + grow + len(head) - 1, pad + n_full))
    return enc, spans


def think_warmup(model, processor, examples: Iterable[Prepared], cfg: WarmstartConfig) -> dict:
    """Answer-side warm-up: heads ``0..cfg.think_warmup_heads-1`` of layer ``cfg.think_warmup_layer``,
    at every completion token from the category named in ``<think>`` onwards, learn to attend to the image
    tokens holding that category: loss = -sum_j t_j log a_j, t = the category's token occupancy
    normalised to sum 1, a = the head's attention over all keys. Trains the embeddings and the layers up
    to the supervised one; non-empty targets only. With ``cfg.think_warmup_box_weight > 0`` a linear probe
    on the supervised layer's output at the same tokens also regresses the target's union box (corners /
    image size, MSE x that weight), so what the head retrieves carries the coordinates. Returns the last
    step's loss and the attention mass on the target tokens."""
    import torch

    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    k, nh = cfg.think_warmup_layer, cfg.think_warmup_heads
    layers = model.model.language_model.layers[: k + 1]
    box_probe = torch.nn.Linear(model.config.text_config.hidden_size, 4)
    params = [*model.get_input_embeddings().parameters(), *layers.parameters(), *box_probe.parameters()]
    for prm in model.model.visual.parameters():
        prm.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=cfg.think_warmup_lr, weight_decay=0.0)
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    model.train()
    stats: dict[str, float] = {}
    batches = _batches(examples, cfg.sft_batch, keep=lambda p: bool(p.mask.any()))
    try:
        for step in tqdm(range(cfg.think_warmup_steps), desc="think warm-up", mininterval=10):
            batch = next(batches)
            enc, spans = think_query_spans(processor, batch, cfg)
            out = model.model(**enc, output_attentions=True, output_hidden_states=cfg.think_warmup_box_weight > 0)
            att = out.attentions[k][:, :nh]  # (B, nh, T, T)
            losses, mass = [], []
            for row, (p, (a, b)) in enumerate(zip(batch, spans, strict=True)):
                img = (enc["input_ids"][row] == image_id).nonzero().squeeze(1)  # G*G positions, row-major
                t = torch.from_numpy(token_occupancy(p.mask).mean(1))
                t = t / t.sum()
                w = att[row, :, a:b][..., img]  # (nh, Q, G*G)
                loss_row = -(t * w.clamp_min(1e-8).log()).sum(-1).mean()
                if cfg.think_warmup_box_weight > 0:
                    ys, xs = np.nonzero(p.mask)
                    box = torch.tensor([xs.min(), ys.min(), xs.max(), ys.max()], dtype=torch.float32) / cfg.image_size
                    pred = box_probe(out.hidden_states[k + 1][row, a:b])  # (Q, 4)
                    loss_row = loss_row + cfg.think_warmup_box_weight * ((pred - box) ** 2).mean()
                losses.append(loss_row)
                mass.append(float((w.detach() * (t > 0)).sum(-1).mean()))
            loss = torch.stack(losses).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step % 25 == 0 or step == cfg.think_warmup_steps - 1:
                stats = {"loss": loss.item(), "target_mass": float(np.mean(mass))}
                log.info("think warm-up step %d: %s", step, stats)
    finally:
        model.set_attn_implementation(previous)
        model.eval()
    return stats
