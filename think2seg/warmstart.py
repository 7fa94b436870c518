"""Warm start of the embedded tiny prompter: one command from nothing to a shipped checkpoint.

    python -m think2seg.warmstart --out think2seg/assets/tiny_prompter      # (or `think2seg warmstart`)
    python -m think2seg.warmstart --out /tmp/ws --config configs/warmstart.yaml --sft-steps 200

Stages (all offline, CPU, seeded):

1. data: SynthEarth in EarthReason layout (``think2seg.data.synth.generate``) unless ``--data`` is given;
   its val split is the evaluation set. SFT never pairs an implicit question with its category (that
   mapping is left for GRPO): questions are the dataset's explicit ones (``sft_source="data"``: 2,200 for
   1,500 images, seen 7 times in 1,000 steps) or come from ``sft_scenes`` fresh procedural scenes with a
   seed stream of their own, never repeated (``"scenes"``), so that memorising images cannot lower the
   loss; with ``sft_blind_fraction`` a share of those are CATEGORY-BLIND (an implicit question about an
   independent random category: :func:`scene_examples`).
2. targets: every sample -> ``format_answer(instances, think)`` at the model input size, think = "The
   request refers to <category>." (empty target: "There are no <category> in this image.", answer
   ``[]``). ``sft_target="instances"``: one instance per connected component (box = its inclusive
   extent, two positive points deep inside it); ``"union"``: ONE instance for the whole mask, which is
   what a model this small learns to ground (:func:`target_instances`). Writing the category in
   ``<think>`` makes the boxes conditioned on it, so GRPO on implicit questions only has to learn
   question -> category.
3. tokenizer: byte-level BPE trained on the questions + targets, plus one token per coordinate value
   (``"0".."image_size-1"``) whose embeddings start smooth in the value (sinusoidal features).
4. model: a small standard ``Qwen2_5_VLForConditionalGeneration`` (see :mod:`think2seg.prompters.tinybuild`).
5. vision warm-up (plain torch loop, documented exception to "trl for training"): the vision tower has
   only RELATIVE (rotary) positions, so absolute location must be learned from the image edges; plain SFT
   from random init ignores the image (PLATFORM.md). A dense auxiliary task on the merged image
   tokens of procedurally rendered SynthEarth scenes (every category's mask known): absolute row /
   column of the token (cross-entropy) and per-category occupancy of a 4x4 sub-grid of the token (BCE,
   occupied cells weighted ``vision_pos_weight``) is meant to teach the tower where and what. Position
   is learnt in ~150 steps. WHAT is not learnt unweighted (the session-1 recipe, 250 steps): its head
   stays at the base rate (held-out occupancy IoU 0.00 for 14 of 15 categories, behind a loss of 0.035
   that looked fine), and no later stage can ground with a tower that cannot tell categories apart.
   ``vision_pos_weight: 10`` and 1,500 steps (~7 min) give a held-out occupancy IoU of 0.48 (0.20
   bridges ... 0.74 water bodies, forests). The held-out per-category IoU is in the report. Then the merger output is ZCA-whitened
   (``vision_output="whiten"``, default; PLATFORM.md's trick), or with ``"head"`` the linear head is
   FOLDED into the merger's last linear layer so that each image token IS that explicit vector
   (row/col + 15x16 occupancy logits, zero-padded), standardized per dimension. Either way the fold
   keeps the saved model standard. The tower is frozen.
6. LLM warm-up (``lm_warmup_steps``, plain torch, text-first template ``compact-qfirst``): the image
   tokens come AFTER the question, and a linear probe on an early layer's image-token states learns the
   sub-cell occupancy of the ASKED category (:func:`lm_warmup`): which tokens hold the target is then
   explicit in the residual stream, and SFT only has to read their positions. Measured: the probe reaches
   a sub-cell IoU of ~0.7 in 1,000 steps (~4 min). With per-component answers, 1,200 SFT steps after it
   still gave an image-blind prompter (explicit box IoU 0.059, shuffled-image control 0.053); with one
   union answer per mask the prompter grounds (``configs/warmstart.yaml`` has the measured steps).
7. SFT with trl's ``SFTTrainer`` (conversational prompt/completion + image column, completion-only loss).
8. evaluation on val (explicit, implicit, shuffled-image control, implicit with the right category
   forced into ``<think>``): greedy -> parse -> GrabCut -> gIoU, box IoU; written to
   ``<out>/warmstart_report.json``. The forced-think row tells whether the boxes follow the model's own
   ``<think>`` (GRPO can then raise implicit gIoU by learning question -> category) or only the words of
   the question (the ``compact-qfirst`` + LLM warm-up recipe; measured rows in ``configs/warmstart.yaml``).

``<out>`` ends up a plain ``save_pretrained`` dir (fp16 weights) + ``think2seg_prompter.json``; load it
with ``TinyPrompter(out)`` / prompter spec ``tiny:<out>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.geometry import box_iou
from think2seg.prompts import build_messages, format_answer
from think2seg.types import Instance, Sample

log = logging.getLogger("think2seg.warmstart")


@dataclass
class WarmstartConfig:
    out: str = "think2seg/assets/tiny_prompter"
    data: str | None = None  # an EarthReason-layout root; None -> generate SynthEarth under <out>/../
    n_train: int = 1500
    n_val: int = 100
    n_test: int = 0
    data_size: int = 256
    seed: int = 0
    image_size: int = 112
    template: str = "compact"
    style: str = "bbox+2pos"
    max_instances: int = 8
    # tokenizer / model
    vocab_size: int = 700
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    rope_theta: float = 10000.0
    vision_depth: int = 4
    vision_hidden_size: int = 128
    vision_intermediate_size: int = 256
    vision_num_heads: int = 4
    # vision warm-up
    vision_steps: int = 300
    vision_scenes: int = 1000
    vision_batch: int = 32
    vision_lr: float = 2e-3
    vision_pos_weight: float = 1.0  # BCE weight of occupied sub-cells (0.1-4 % per category; 10 makes the tower see)
    vision_output: str = "whiten"  # whiten: ZCA (shipped); head: tokens = warm-up head outputs; raw
    whiten_scale: float = 1.0
    freeze_vision: bool = True
    # SFT
    sft_source: str = "data"  # data: the dataset's explicit questions (shipped); scenes: fresh procedural scenes
    sft_scenes: int = 6000
    sft_per_scene: int = 2  # explicit questions per scene (the target category + other present ones)
    sft_blind_fraction: float = 0.0  # share of scene questions made category-blind (see scene_examples)
    sft_target: str = "instances"  # instances: one per connected component (shipped); union: one for the whole mask
    lm_warmup_steps: int = 0  # question-conditioned relevance pre-training of the LLM (text-first templates)
    lm_warmup_layer: int = 2  # hidden layer whose image tokens are probed
    lm_warmup_lr: float = 1e-3
    lm_warmup_freeze: bool = True  # keep the warmed-up layers fixed during SFT (embeddings stay trainable: tied)
    sft_steps: int = 1500
    sft_batch: int = 16
    sft_lr: float = 1e-3
    sft_warmup: float = 0.03
    empty_fraction: float = 0.03
    # eval
    eval_n: int = 200
    eval_sampled_n: int = 100
    threads: int = 2
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# targets


def mask_instances(mask: np.ndarray, max_instances: int = 8, min_area: int = 4) -> list[Instance]:
    """Instances of a (model-size) mask: one per connected component, box + 2 deep positive points.

    Order: top to bottom, then left to right (by box corner). Points: the deepest pixel (distance
    transform maximum) and, among pixels at least half as deep, the one farthest from the first.
    """
    import cv2

    m = mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    comps.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    comps = comps[:max_instances]
    out = []
    for i in comps:
        x, y, w, h = (int(v) for v in stats[i, :4])
        comp = (labels == i).astype(np.uint8)
        dt = cv2.distanceTransform(np.pad(comp, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y1, x1 = np.unravel_index(int(np.argmax(dt)), dt.shape)
        ys, xs = np.nonzero(dt >= 0.5 * dt.max())
        d2 = (xs - x1) ** 2 + (ys - y1) ** 2
        j = int(np.argmax(d2))
        out.append(Instance(box=(x, y, x + w - 1, y + h - 1), positive=((int(x1), int(y1)), (int(xs[j]), int(ys[j])))))
    out.sort(key=lambda inst: (inst.box[1], inst.box[0]))
    return out


def category_of(sample: Sample) -> str:
    """The category name written in ``<think>`` (SynthEarth's plural display name, e.g. "storage tanks")."""
    cat = sample.extra.get("category")
    if not cat:
        raise ValueError(f"sample {sample.id} has no extra['category'] (SynthEarth data needed for the warm start)")
    from think2seg.data.scenes import CATEGORIES

    return CATEGORIES[cat].plural if cat in CATEGORIES else str(cat).replace("_", " ")


def think_text(category: str, empty: bool) -> str:
    return f"There are no {category} in this image." if empty else f"The request refers to {category}."


TARGETS = ("instances", "union")


def target_instances(mask_s: np.ndarray, max_instances: int, target: str = "instances") -> list[Instance]:
    """The SFT answer for a model-size mask: ``"instances"`` = one instance per connected component
    (:func:`mask_instances`); ``"union"`` = ONE instance for the whole mask (its tight box + two spread
    positive points, the ``oracle:whole`` prompts). Union answers are what a tiny model learns to ground
    (held-out box IoU 0.33 vs 0.10 with shuffled images after 450 steps, where per-component answers stay
    image-blind); GrabCut makes them 70.4 gIoU on implicit val, against 76.3 for per-component prompts."""
    if target == "instances":
        return mask_instances(mask_s, max_instances)
    if target == "union":
        from think2seg.mask_prompts import mask_to_instances

        return mask_to_instances(mask_s, "bbox+2pos", "whole")
    raise ValueError(f"sft_target={target!r}: one of {list(TARGETS)}")


def target_text(sample: Sample, mask_s: np.ndarray, max_instances: int, target: str = "instances") -> str:
    inst = target_instances(mask_s, max_instances, target)
    return format_answer(inst, think_text(category_of(sample), not inst))


# ---------------------------------------------------------------------------------------------------
# data


def ensure_data(cfg: WarmstartConfig) -> str:
    """``cfg.data`` or SynthEarth generated once under ``data/synthearth/`` (``$THINK2SEG_SYNTH_DIR``)."""
    if cfg.data:
        return cfg.data
    from think2seg.data import synth

    root = synth.ensure_default(format="earthreason", n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test,
                                seed=cfg.seed, size=cfg.data_size)
    return str(root)


def load_split(data: str, split: str, kind: str | None) -> list[Sample]:
    from think2seg.data import load_dataset

    return list(load_dataset(data, split, questions="all", question_kind=kind))


@dataclass
class Prepared:
    sample: Sample
    image: np.ndarray  # model-size RGB
    mask: np.ndarray  # model-size bool
    target: str


def prepare(samples: Sequence[Sample], size: int, max_instances: int, desc: str = "prepare",
            target: str = "instances") -> list[Prepared]:
    from tqdm.auto import tqdm

    from think2seg.geometry import resize_image, resize_mask

    cache: dict[str, np.ndarray] = {}
    out = []
    for s in tqdm(samples, desc=desc, mininterval=5):
        key = str(s.image_path)
        if key not in cache:
            cache = {key: resize_image(s.load_image(), size)}
        m = resize_mask(s.load_mask(), size)
        out.append(Prepared(s, cache[key], m, target_text(s, m, max_instances, target)))
    return out


# ---------------------------------------------------------------------------------------------------
# model building


def init_number_embeddings(model, tokenizer, n: int, seed: int = 0) -> None:
    """Embeddings of the coordinate tokens "0".."n-1": a random projection of sinusoidal features of the
    value, so nearby values start close (and, tied, the output head prefers neighbours of a right value)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    emb = model.get_input_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids([str(i) for i in range(n)])
    v = torch.arange(n, dtype=torch.float32)[:, None] / n
    freqs = torch.tensor([0.5, 1, 2, 4, 8, 16], dtype=torch.float32)[None, :] * math.pi
    feats = torch.cat([torch.sin(v * freqs), torch.cos(v * freqs)], dim=1)  # (n, 12)
    proj = torch.randn(feats.shape[1], emb.shape[1], generator=g) / math.sqrt(feats.shape[1])
    val = feats @ proj
    val = val / val.std() * emb.std().item() * 2
    with torch.no_grad():
        emb[torch.tensor(ids)] = val + 0.3 * emb[torch.tensor(ids)]


def build(cfg: WarmstartConfig, texts: list[str]):
    from think2seg.prompters.tinybuild import build_tiny_qwen2_5_vl, train_bpe_tokenizer

    tok = train_bpe_tokenizer(texts, cfg.vocab_size, number_tokens=cfg.image_size)
    model, processor = build_tiny_qwen2_5_vl(
        tok,
        image_size=cfg.image_size,
        seed=cfg.seed,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        rope_theta=cfg.rope_theta,
        vision_depth=cfg.vision_depth,
        vision_hidden_size=cfg.vision_hidden_size,
        vision_intermediate_size=cfg.vision_intermediate_size,
        vision_num_heads=cfg.vision_num_heads,
    )
    init_number_embeddings(model, tok, cfg.image_size, cfg.seed)
    return model, processor


# ---------------------------------------------------------------------------------------------------
# vision warm-up


def _pixel_batch(processor, images: Sequence[np.ndarray]):
    from PIL import Image

    out = processor.image_processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


def vision_features(model, pixel_values, grid_thw):
    """Merged image-token features (N_tokens, hidden), row-major over the merged grid per image."""
    return model.model.visual(pixel_values, grid_thw=grid_thw).pooler_output


def dense_targets(image_masks: dict[str, np.ndarray], categories: list[str], size: int):
    """Per merged token (28x28 px cell): category occupancy of a 4x4 sub-grid -> (G*G, C*16) floats."""
    g = size // 28
    t = np.zeros((g * g, len(categories), 16), np.float32)
    for c, name in enumerate(categories):
        if (m := image_masks.get(name)) is not None:
            t[:, c] = token_occupancy(m)
    return t.reshape(g * g, len(categories) * 16)


def token_occupancy(mask: np.ndarray) -> np.ndarray:
    """(G*G, 16) occupancy of a model-size mask on the 4x4 sub-grid of every merged 28-px token, row-major."""
    g = mask.shape[0] // 28
    sub = mask.reshape(g, 4, 7, g, 4, 7).mean(axis=(2, 5))  # (g, 4, g, 4)
    return sub.transpose(0, 2, 1, 3).reshape(g * g, 16).astype(np.float32)


def scene_examples(cfg: WarmstartConfig, seed_offset: int = 104729) -> list[Prepared]:
    """SFT examples from ``cfg.sft_scenes`` fresh procedural SynthEarth scenes (a seed stream of its own,
    so no dataset image is seen): per scene ``cfg.sft_per_scene`` explicit questions (a random target
    category drawn uniformly, then other categories present), each category's semantic mask known; an
    absent category (empty target) with probability ``cfg.empty_fraction``. Fresh scenes make memorising
    images useless: 2,200 dataset questions seen for 7 epochs gave box IoU 0.09, barely above a
    shuffled-image control (0.07).

    ``cfg.sft_blind_fraction`` of the questions are made CATEGORY-BLIND: the question is replaced by an
    implicit SynthEarth question about a category drawn uniformly at random, independently of the
    target (``extra["kind"] = "blind"``). The text then carries no information about the answer, so the
    model learns "a question that names no category: ground one of the categories present". That gives
    implicit questions a well-formed answer and a spread of present categories to sample from, and
    leaves the implicit-question -> category mapping entirely to GRPO (nothing pairs a question with its
    own category). Without it the explicit-only model answers implicit questions with broken JSON (18 %
    parseable) or one fixed category (77 % "buildings")."""
    from tqdm.auto import tqdm

    from think2seg.data.questions import EXPLICIT, IMPLICIT
    from think2seg.data.scenes import CATEGORIES, CATEGORY_KEYS, render_scene
    from think2seg.geometry import resize_image, resize_mask

    rng = np.random.default_rng([cfg.seed, seed_offset])
    out: list[Prepared] = []
    for i in tqdm(range(cfg.sft_scenes), desc="SFT scenes", mininterval=10):
        target = CATEGORY_KEYS[int(rng.integers(len(CATEGORY_KEYS)))]
        sc = render_scene(rng, cfg.data_size, target=target)
        image = resize_image(sc.image, cfg.image_size)
        present = [c for c in sc.categories if c != target]
        cats = [target] + [present[j] for j in rng.permutation(len(present))[: cfg.sft_per_scene - 1]]
        if rng.random() < cfg.empty_fraction:
            absent = [c for c in CATEGORY_KEYS if c not in sc.categories]
            cats[-1] = absent[int(rng.integers(len(absent)))]
        for c in cats:
            cat = CATEGORIES[c]
            question = EXPLICIT[int(rng.integers(len(EXPLICIT)))].format(singular=cat.singular, plural=cat.plural)
            kind = "explicit"
            if cfg.sft_blind_fraction > 0 and rng.random() < cfg.sft_blind_fraction:
                other = CATEGORY_KEYS[int(rng.integers(len(CATEGORY_KEYS)))]  # independent of the target c
                question, kind = IMPLICIT[other][int(rng.integers(len(IMPLICIT[other])))], "blind"
            mask = resize_mask(sc.mask(c), cfg.image_size)
            sample = Sample(id=f"scene{i}-{c}", image_id=f"scene{i}", question=question, image_path=Path(""),
                            dataset="synthearth-scenes", split="warmstart", gt_empty=not mask.any(),
                            extra={"category": c, "kind": kind})
            out.append(Prepared(sample, image, mask, target_text(sample, mask, cfg.max_instances, cfg.sft_target)))
    return out


def render_warmup_scenes(n: int, data_size: int, size: int, seed: int) -> list[dict[str, Any]]:
    """``n`` procedural SynthEarth scenes (every category's mask known), resized to the model size."""
    from tqdm.auto import tqdm

    from think2seg.data.scenes import render_scene
    from think2seg.geometry import resize_image, resize_mask

    rng = np.random.default_rng([seed, 7919])
    out = []
    for _ in tqdm(range(n), desc="warm-up scenes", mininterval=10):
        sc = render_scene(rng, data_size)
        out.append({"image": resize_image(sc.image, size),
                    "masks": {str(c): resize_mask(sc.mask(str(c)), size) for c in sc.categories}})
    return out


def vision_warmup(model, processor, items: list[dict[str, Any]], categories: list[str], cfg: WarmstartConfig):
    """Plain-torch dense pre-training of the vision tower (see the module docstring, stage 5) on
    ``items`` = ``[{"image": model-size RGB, "masks": {category: model-size bool}}]``."""
    import torch
    from tqdm.auto import tqdm

    size = cfg.image_size
    g = size // 28
    targets = [torch.from_numpy(dense_targets(d["masks"], categories, size)) for d in items]
    visual = model.model.visual
    hid = model.config.text_config.hidden_size
    head = torch.nn.Linear(hid, 2 * g + len(categories) * 16)
    params = list(visual.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.vision_lr, weight_decay=0.0)
    warm = max(1, cfg.vision_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, cfg.vision_steps))))
    )
    rows = torch.arange(g).repeat_interleave(g)
    cols = torch.arange(g).repeat(g)
    pos_weight = None if cfg.vision_pos_weight == 1.0 else torch.tensor(cfg.vision_pos_weight)
    rng = random.Random(cfg.seed)
    visual.train()
    bar = tqdm(range(cfg.vision_steps), desc="vision warm-up", mininterval=10)
    for step in bar:
        idx = [rng.randrange(len(items)) for _ in range(cfg.vision_batch)]
        imgs = [items[i]["image"] for i in idx]
        pv, thw = _pixel_batch(processor, imgs)
        f = vision_features(model, pv, thw)
        out = head(f)
        tgt = torch.cat([targets[i] for i in idx])
        r, c = rows.repeat(len(idx)), cols.repeat(len(idx))
        loss_pos = torch.nn.functional.cross_entropy(out[:, :g], r) + torch.nn.functional.cross_entropy(out[:, g : 2 * g], c)
        loss_occ = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 2 * g :], tgt, pos_weight=pos_weight)
        loss = loss_pos + 10 * loss_occ
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == cfg.vision_steps - 1:
            with torch.no_grad():
                acc = ((out[:, :g].argmax(1) == r) & (out[:, g : 2 * g].argmax(1) == c)).float().mean().item()
                occ = _cell_iou(out[:, 2 * g :] > 0, tgt > 0.5)
            bar.set_postfix(pos=f"{loss_pos.item():.3f}", occ=f"{loss_occ.item():.4f}", acc=f"{acc:.2f}")
            log.info("vision step %d: pos %.3f occ %.4f pos-acc %.2f occupancy IoU %.2f", step, loss_pos.item(),
                     loss_occ.item(), acc, occ)
    visual.eval()
    stats = {"pos_loss": float(loss_pos.item()), "occ_loss": float(loss_occ.item()), "pos_acc": float(acc),
             "occupancy_iou_train_batch": occ}
    return stats, head


def _cell_iou(pred, target) -> float:
    """IoU of predicted vs true occupied sub-cells (bool tensors)."""
    return float((pred & target).sum()) / max(1, int((pred | target).sum()))


def occupancy_iou(model, processor, head, items: list[dict[str, Any]], categories: list[str], size: int) -> dict:
    """Held-out check of the warm-up head: per-category IoU of occupied sub-cells (sigmoid > 0.5 vs > 0.5).
    A tower that only learnt positions scores ~0 here (the occupancy loss alone hides it: the base rate is
    already ~0.04)."""
    import torch

    g = size // 28
    with torch.no_grad():
        pv, thw = _pixel_batch(processor, [d["image"] for d in items])
        pred = (head(vision_features(model, pv, thw))[:, 2 * g :] > 0).reshape(-1, len(categories), 16)
    true = torch.from_numpy(np.concatenate([dense_targets(d["masks"], categories, size) for d in items]) > 0.5)
    true = true.reshape(-1, len(categories), 16)
    per = {c: round(_cell_iou(pred[:, k], true[:, k]), 3) for k, c in enumerate(categories)}
    return {"mean": round(float(np.mean(list(per.values()))), 3), "per_category": per}


def fold_head_into_merger(model, head) -> None:
    """Make the image tokens BE the warm-up head's outputs (row / column logits, per-category sub-cell
    occupancy logits), zero-padded to the text width: an explicit, nuisance-free basis for the LLM.
    Folded into ``visual.merger.mlp[2]`` so the checkpoint stays a standard Qwen2.5-VL."""
    import torch

    lin = model.model.visual.merger.mlp[2]
    hid = lin.weight.shape[0]
    k = head.weight.shape[0]
    if k > hid:
        raise ValueError(f"warm-up head has {k} outputs > text hidden size {hid}: use vision_output=whiten")
    with torch.no_grad():
        w = torch.zeros_like(lin.weight)
        b = torch.zeros_like(lin.bias)
        w[:k] = head.weight @ lin.weight
        b[:k] = head.weight @ lin.bias + head.bias
        lin.weight.copy_(w)
        lin.bias.copy_(b)


def _merged_features(model, processor, images: Sequence[np.ndarray]):
    """(N_tokens, D) float64 merged image-token features of ``images``, in batches of 64."""
    import torch

    feats = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            pv, thw = _pixel_batch(processor, images[i : i + 64])
            feats.append(vision_features(model, pv, thw).double())
    return torch.cat(feats)


def standardize_merger(model, processor, images: Sequence[np.ndarray], scale: float = 1.0) -> dict:
    """Per-dimension centring and unit variance of the image tokens (no rotation), folded into
    ``visual.merger.mlp[2]``; constant dims stay 0."""
    import torch

    x = _merged_features(model, processor, images)
    mu, sd = x.mean(0), x.std(0)
    inv = torch.where(sd > 1e-6, scale / sd.clamp_min(1e-6), torch.zeros_like(sd))
    lin = model.model.visual.merger.mlp[2]
    with torch.no_grad():
        lin.weight.copy_((inv[:, None] * lin.weight.double()).to(lin.weight.dtype))
        lin.bias.copy_((inv * (lin.bias.double() - mu)).to(lin.bias.dtype))
    return {"before_norm": float(x.norm(dim=1).mean()), "mean_norm": float(mu.norm()),
            "n_tokens": int(x.shape[0]), "live_dims": int((sd > 1e-6).sum())}


def whiten_merger(model, processor, images: Sequence[np.ndarray], scale: float = 1.0, eps: float = 1e-3) -> dict:
    """ZCA-whiten the merged image-token features, folded into ``visual.merger.mlp[2]`` (standard weights)."""
    import torch

    x = _merged_features(model, processor, images)
    mu = x.mean(0)
    cov = torch.cov((x - mu).T)
    evals, evecs = torch.linalg.eigh(cov)
    evals = evals.clamp_min(eps * evals.max())
    a = evecs @ torch.diag(scale / evals.sqrt()) @ evecs.T  # ZCA
    lin = model.model.visual.merger.mlp[2]
    with torch.no_grad():
        w, b = lin.weight.double(), lin.bias.double()
        lin.weight.copy_((a @ w).to(lin.weight.dtype))
        lin.bias.copy_((a @ (b - mu)).to(lin.bias.dtype))
    return {"before_norm": float(x.norm(dim=1).mean()), "mean_norm": float(mu.norm()),
            "top_eig": float(evals.max()), "n_tokens": int(x.shape[0])}


def lm_warmup(model, processor, examples: list[Prepared], cfg: WarmstartConfig) -> dict:
    """Question-conditioned relevance pre-training of the LLM (plain torch, like the vision warm-up).

    With a text-first template (:data:`think2seg.prompts.TEXT_FIRST`) every image token sees the
    question. A linear probe on layer ``cfg.lm_warmup_layer``'s hidden state of each image token is
    trained, with the layers below, to predict the 4x4 sub-cell occupancy of the ASKED category in that
    token (BCE). This is the first half of grounding (which tokens hold the target?), which plain SFT from
    scratch does not discover: the prompter then ignores the image (loss with the true image 0.5626, with
    another sample's image 0.5639). The probe is discarded; the model stays a standard Qwen2.5-VL.
    """
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from think2seg.prompts import TEXT_FIRST

    if cfg.template not in TEXT_FIRST:
        raise ValueError(f"lm_warmup_steps > 0 needs a text-first template ({sorted(TEXT_FIRST)}), "
                         f"not template={cfg.template!r}")
    tok = processor.tokenizer
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    prompts = [processor.apply_chat_template(build_messages(p.sample.question, cfg.style, cfg.template),
                                             add_generation_prompt=True, tokenize=False) for p in examples]
    targets = [torch.from_numpy(token_occupancy(p.mask)) for p in examples]
    hid = model.config.text_config.hidden_size
    probe = torch.nn.Linear(hid, 16)
    layers = model.model.language_model.layers[: cfg.lm_warmup_layer]
    params = [*model.get_input_embeddings().parameters(), *layers.parameters(), *probe.parameters()]
    for prm in model.model.visual.parameters():
        prm.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=cfg.lm_warmup_lr, weight_decay=0.0)
    rng = random.Random(cfg.seed + 1)
    model.train()
    bar = tqdm(range(cfg.lm_warmup_steps), desc="LLM warm-up", mininterval=10)
    stats: dict[str, float] = {}
    for step in bar:
        idx = [rng.randrange(len(examples)) for _ in range(cfg.sft_batch)]
        enc = processor(text=[prompts[i] for i in idx], images=[Image.fromarray(examples[i].image) for i in idx],
                        padding=True, return_tensors="pt")
        out = model.model(**enc, output_hidden_states=True)
        h = out.hidden_states[cfg.lm_warmup_layer][enc["input_ids"] == image_id]  # (B*G*G, hid), row-major
        y = torch.cat([targets[i] for i in idx])
        logits = probe(h)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0 or step == cfg.lm_warmup_steps - 1:
            with torch.no_grad():
                stats = {"loss": float(loss), "cell_iou": _cell_iou(logits > 0, y > 0.5)}
            bar.set_postfix(loss=f"{stats['loss']:.4f}", iou=f"{stats['cell_iou']:.2f}")
            log.info("LLM warm-up step %d: loss %.4f sub-cell IoU %.2f", step, stats["loss"], stats["cell_iou"])
    model.eval()
    return stats


# ---------------------------------------------------------------------------------------------------
# SFT


def sft_dataset(prepared: list[Prepared], cfg: WarmstartConfig):
    from datasets import Dataset
    from PIL import Image as PILImage

    rows = {"prompt": [], "completion": [], "image": []}
    for p in prepared:
        rows["prompt"].append(build_messages(p.sample.question, cfg.style, cfg.template))
        rows["completion"].append([{"role": "assistant", "content": [{"type": "text", "text": p.target}]}])
        rows["image"].append(PILImage.fromarray(p.image))
    return Dataset.from_dict(rows)


def run_sft(model, processor, prepared: list[Prepared], cfg: WarmstartConfig, workdir: Path) -> dict:
    from trl import SFTConfig, SFTTrainer

    if cfg.freeze_vision:
        for prm in model.model.visual.parameters():
            prm.requires_grad_(False)
    if cfg.lm_warmup_steps > 0 and cfg.lm_warmup_freeze:
        for prm in model.model.language_model.layers[: cfg.lm_warmup_layer].parameters():
            prm.requires_grad_(False)
    ds = sft_dataset(prepared, cfg)
    args = SFTConfig(
        output_dir=str(workdir),
        per_device_train_batch_size=cfg.sft_batch,
        max_steps=cfg.sft_steps,
        learning_rate=cfg.sft_lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(cfg.sft_warmup * cfg.sft_steps)),
        weight_decay=0.0,
        logging_steps=max(1, cfg.sft_steps // 30),
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        max_length=None,
        completion_only_loss=True,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        seed=cfg.seed,
        disable_tqdm=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor)
    res = trainer.train()
    hist = [h for h in trainer.state.log_history if "loss" in h]
    return {"train_loss": res.training_loss, "last_loss": hist[-1]["loss"] if hist else None,
            "runtime_s": res.metrics.get("train_runtime")}


# ---------------------------------------------------------------------------------------------------
# evaluation


def _grabcut(image: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    try:
        from think2seg.segmenters import build_segmenter

        seg = build_segmenter("grabcut")
        return seg.segment(image, [list(instances)])[0]
    except ImportError:
        pass
    import cv2

    h, w = image.shape[:2]
    out = np.zeros((h, w), bool)
    for inst in instances:
        if inst.box is None:
            continue
        x1, y1, x2, y2 = inst.box
        if x2 - x1 < 2 or y2 - y1 < 2:
            out[y1 : y2 + 1, x1 : x2 + 1] = True
            continue
        m = np.full((h, w), cv2.GC_BGD, np.uint8)
        m[y1 : y2 + 1, x1 : x2 + 1] = cv2.GC_PR_FGD
        for x, y in inst.positive:
            m[y, x] = cv2.GC_FGD
        try:
            cv2.grabCut(image[:, :, ::-1].copy(), m, None, np.zeros((1, 65)), np.zeros((1, 65)), 3,
                        cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            m[y1 : y2 + 1, x1 : x2 + 1] = cv2.GC_FGD
        out |= (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def think_prefill(sample: Sample) -> str:
    """The start of the warm-start completion up to and including the category name (``<think>The request
    refers to storage tanks``): what follows the name (``.</think>``) is left to the model, since the BPE
    merges those characters into tokens of their own."""
    category = category_of(sample)
    text = think_text(category, False)
    return "<think>" + text[: text.index(category) + len(category)]


def evaluate(prompter, prepared: list[Prepared], *, shuffle_images: bool = False, seed: int = 0,
             segment: bool = True, target: str = "instances", forced_think: bool = False) -> dict:
    """Greedy completions on ``prepared`` -> format rate, box IoU (GT instance -> best predicted box; GT
    instances as ``target`` makes them, so a union-trained model is scored against the union box),
    gIoU of GrabCut masks (model size), think-category accuracy. ``shuffle_images`` pairs every question
    with another sample's image (a derangement) while scoring against the original target.
    ``forced_think`` starts each completion with the right category (:func:`think_prefill`): on implicit
    questions this is what the model would score had it learnt question -> category, i.e. whether its
    boxes follow its own ``<think>`` (what GRPO can then teach) or only the question's words."""
    from think2seg.parsing import parse_completion

    items = list(prepared)
    imgs = [p.image for p in items]
    if shuffle_images and len(items) > 1:
        perm = list(range(len(items)))
        random.Random(seed).shuffle(perm)
        perm = perm[1:] + perm[:1]  # a cycle: no fixed point
        mapping = dict(zip(range(len(items)), perm, strict=True))
        imgs = [items[mapping[i]].image for i in range(len(items))]
    fake = [_ImageSample(p.sample, im) for p, im in zip(items, imgs, strict=True)]
    prefill = [think_prefill(p.sample) for p in items] if forced_think else None
    texts = [c[0] for c in prompter.generate(fake, n=1, prefill=prefill)]
    size = items[0].image.shape[0]
    fmt, gious, bious, cat_ok = [], [], [], []
    for p, im, t in zip(items, imgs, texts, strict=True):
        r = parse_completion(t, style="bbox+2pos", image_size=size)
        fmt.append(r.format_ok)
        gt = target_instances(p.mask, 16, target)
        cat = p.sample.extra.get("category")
        cat_ok.append(bool(cat) and r.think is not None and str(cat).replace("_", " ") in r.think)
        pred = r.instances if r.usable else None
        for g in gt:
            bious.append(max((box_iou(g.box, q.box) for q in (pred or []) if q.box is not None), default=0.0))
        if segment:
            pm = _grabcut(im, pred) if pred else np.zeros_like(p.mask)
            gious.append(_iou(pm, p.mask))
    return {
        "n": len(items),
        "format_ok": float(np.mean(fmt)),
        "giou": float(np.mean(gious)) if gious else None,
        "box_iou": float(np.mean(bious)) if bious else None,
        "box_iou>0.5": float(np.mean(np.array(bious) > 0.5)) if bious else None,
        "think_category_acc": float(np.mean(cat_ok)),
        "examples": texts[:3],
    }


def evaluate_sampled(prompter, prepared: list[Prepared], n: int = 8, temperature: float = 1.0, seed: int = 0) -> dict:
    """GRPO headroom: ``n`` samples per question at ``temperature`` -> mean gIoU of a sample, best-of-n
    gIoU (oracle pick, an upper bound on what RL can select for) and how often some sample names the
    right category in ``<think>`` (pass@n)."""
    from think2seg.parsing import parse_completion

    items = list(prepared)
    outs = prompter.generate([_ImageSample(p.sample, p.image) for p in items], n=n, temperature=temperature,
                             seed=seed)
    size = items[0].image.shape[0]
    mean_g, best_g, cat_any, cat_frac = [], [], [], []
    for p, texts in zip(items, outs, strict=True):
        cat = str(p.sample.extra.get("category", "")).replace("_", " ")
        g, c = [], []
        for t in texts:
            r = parse_completion(t, style="bbox+2pos", image_size=size)
            pm = _grabcut(p.image, r.instances) if r.instances else np.zeros_like(p.mask)
            g.append(_iou(pm, p.mask) if r.usable else 0.0)
            c.append(bool(cat) and r.think is not None and cat in r.think)
        mean_g.append(np.mean(g))
        best_g.append(np.max(g))
        cat_any.append(any(c))
        cat_frac.append(np.mean(c))
    return {"n": len(items), "samples": n, "temperature": temperature, "mean_giou": float(np.mean(mean_g)),
            f"best_of_{n}_giou": float(np.mean(best_g)), f"category_pass@{n}": float(np.mean(cat_any)),
            "category_sample_acc": float(np.mean(cat_frac))}


class _ImageSample:
    """A Sample stand-in whose image is given (model size) — for the shuffled-image control."""

    def __init__(self, sample: Sample, image: np.ndarray):
        self._s, self._im = sample, image
        self.question = sample.question
        self.id = sample.id

    def load_image(self) -> np.ndarray:
        return self._im


# ---------------------------------------------------------------------------------------------------
# driver


def save(model, processor, cfg: WarmstartConfig, out: Path, report: dict) -> None:
    import torch

    from think2seg.prompters.tiny import META_FILE
    from think2seg.prompters.tinybuild import save_tiny

    for prm in model.parameters():
        prm.requires_grad_(True)
    save_tiny(model, processor, out, dtype=torch.float16)
    meta = {"template": cfg.template, "style": cfg.style, "image_size": cfg.image_size,
            "max_new_tokens": 40 + 30 * cfg.max_instances, "built_by": "python -m think2seg.warmstart",
            "config": asdict(cfg)}
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    (out / "warmstart_report.json").write_text(json.dumps(report, indent=1))


def warmstart(cfg: WarmstartConfig) -> dict:
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

    data = ensure_data(cfg)
    train = load_split(data, "train", "explicit")
    val_exp = load_split(data, "val", "explicit")
    val_imp = load_split(data, "val", "implicit")
    lap("data")
    rng = random.Random(cfg.seed)
    if cfg.sft_source == "scenes":
        tr = scene_examples(cfg)
        k = sum(1 for p in tr if not p.mask.any())
    elif cfg.sft_source == "data":
        tr = prepare(train, cfg.image_size, cfg.max_instances, "train targets", cfg.sft_target)
        nonempty = [p for p in tr if p.mask.any()]
        empty = [p for p in tr if not p.mask.any()]
        k = min(len(empty), int(cfg.empty_fraction * len(nonempty) / max(1e-9, 1 - cfg.empty_fraction)))
        tr = nonempty + rng.sample(empty, k)
    else:
        raise ValueError(f"sft_source={cfg.sft_source!r}: one of scenes, data")
    rng.shuffle(tr)
    ve = prepare(rng.sample(val_exp, min(cfg.eval_n, len(val_exp))), cfg.image_size, cfg.max_instances, "val",
                 cfg.sft_target)
    vi = prepare(rng.sample(val_imp, min(cfg.eval_n, len(val_imp))), cfg.image_size, cfg.max_instances, "val",
                 cfg.sft_target)
    categories = sorted({category_of(s) for s in train})
    report["data"] = {"root": data, "train_explicit": len(train), "sft_source": cfg.sft_source,
                      "sft_examples": len(tr), "sft_images": len({p.sample.image_id for p in tr}), "sft_empty": k,
                      "categories": categories}
    lap("targets")
    texts = [s.question for s in train] + [s.question for s in val_imp[:0]] + [p.target for p in tr]
    from think2seg.prompts import instruction_text

    texts += [instruction_text(s.question, cfg.style, cfg.template) for s in train[:200]]
    model, processor = build(cfg, texts)
    report["params"] = sum(p.numel() for p in model.parameters())
    lap("build")
    if cfg.vision_steps > 0:
        from think2seg.data.scenes import CATEGORY_KEYS

        items = render_warmup_scenes(cfg.vision_scenes, cfg.data_size, cfg.image_size, cfg.seed)
        report["vision_warmup"], head = vision_warmup(model, processor, items, CATEGORY_KEYS, cfg)
        held_out = render_warmup_scenes(100, cfg.data_size, cfg.image_size, cfg.seed + 1)
        report["vision_warmup"]["occupancy_iou_held_out"] = occ = occupancy_iou(
            model, processor, head, held_out, CATEGORY_KEYS, cfg.image_size)
        log.info("vision warm-up held-out occupancy IoU: %s", occ)
        lap("vision_warmup")
        if cfg.vision_output == "head":
            fold_head_into_merger(model, head)
    images = [p.image for p in tr[:800]]
    if cfg.vision_output == "head":
        report["standardize"] = standardize_merger(model, processor, images, cfg.whiten_scale)
    elif cfg.vision_output == "whiten":
        report["whiten"] = whiten_merger(model, processor, images, cfg.whiten_scale)
    elif cfg.vision_output != "raw":
        raise ValueError(f"vision_output={cfg.vision_output!r}: one of head, whiten, raw")
    if cfg.lm_warmup_steps > 0:
        report["lm_warmup"] = lm_warmup(model, processor, tr, cfg)
        lap("lm_warmup")
    report["sft"] = run_sft(model, processor, tr, cfg, out / "_sft_work")
    lap("sft")
    save(model, processor, cfg, out, report)
    from think2seg.prompters.tiny import TinyPrompter

    prompter = TinyPrompter(out)
    report["eval"] = {
        "explicit": evaluate(prompter, ve, target=cfg.sft_target),
        "implicit": evaluate(prompter, vi, target=cfg.sft_target),
        "explicit_shuffled_images": evaluate(prompter, ve, shuffle_images=True, seed=cfg.seed, target=cfg.sft_target),
        "implicit_forced_think": evaluate(prompter, vi, target=cfg.sft_target, forced_think=True),
        "implicit_sampled": evaluate_sampled(prompter, vi[: cfg.eval_sampled_n], seed=cfg.seed),
    }
    lap("eval")
    report["wall_time_s"] = round(time.time() - t0, 1)
    (out / "warmstart_report.json").write_text(json.dumps(report, indent=1))
    import shutil

    shutil.rmtree(out / "_sft_work", ignore_errors=True)
    return report


def load_config(path: str | None, overrides: dict[str, Any]) -> WarmstartConfig:
    cfg = WarmstartConfig()
    if path:
        import yaml

        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - {f.name for f in fields(WarmstartConfig)}
        if unknown:
            raise ValueError(f"{path}: unknown warm-start option(s) {sorted(unknown)}")
        for k, v in raw.items():
            setattr(cfg, k, v)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="checkpoint dir to write (default think2seg/assets/tiny_prompter)")
    p.add_argument("--config", help="YAML of WarmstartConfig fields (e.g. configs/warmstart.yaml)")
    p.add_argument("--data", help="EarthReason-layout root with SynthEarth categories (default: generate)")
    p.add_argument("--n-train", type=int, dest="n_train")
    p.add_argument("--vision-steps", type=int, dest="vision_steps")
    p.add_argument("--sft-steps", type=int, dest="sft_steps")
    p.add_argument("--sft-source", choices=["scenes", "data"], dest="sft_source",
                   help="data: the dataset's explicit questions (default); scenes: fresh procedural scenes")
    p.add_argument("--sft-scenes", type=int, dest="sft_scenes")
    p.add_argument("--sft-target", choices=list(TARGETS), dest="sft_target",
                   help="instances: one answer instance per connected component; union: one for the whole mask")
    p.add_argument("--vision-output", choices=["whiten", "head", "raw"], dest="vision_output")
    p.add_argument("--threads", type=int)
    p.add_argument("--lm-warmup-steps", type=int, dest="lm_warmup_steps")
    p.add_argument("--no-lm-warmup-freeze", action="store_false", dest="lm_warmup_freeze", default=None,
                   help="train the warmed-up LLM layers during SFT too")
    p.add_argument("--template", help="prompt template of the tiny prompter (think2seg.prompts.TEMPLATES)")
    p.add_argument("--image-size", type=int, dest="image_size")
    p.add_argument("--eval-n", type=int, dest="eval_n")
    p.add_argument("--seed", type=int)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = argparse.ArgumentParser(prog="python -m think2seg.warmstart", description=__doc__.split("\n")[0])
    add_arguments(p)
    a = vars(p.parse_args(argv))
    cfg = load_config(a.pop("config"), a)
    rep = warmstart(cfg)
    print(json.dumps({"eval": rep["eval"], "wall_time_s": rep["wall_time_s"]}, indent=1))
    print(f"warm start done in {rep['wall_time_s']:.0f} s -> {cfg.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
