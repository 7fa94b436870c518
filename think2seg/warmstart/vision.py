"""Vision warm-up of the tiny prompter's tower and the ZCA whitening of its output.

    >>> stats, head = vision_warmup(model, processor, render_warmup_scenes(1000, 256, 112, 0), CATEGORY_KEYS, cfg)  # doctest: +SKIP
    >>> whiten_merger(model, processor, images)     # folded into visual.merger.mlp[2]: standard weights  # doctest: +SKIP

The tower has only relative (rotary) positions, so absolute location must be learnt from the image edges,
and plain SFT from random init ignores the image. A dense auxiliary task on the merged image tokens of
procedurally rendered scenes teaches it where and what: the absolute row / column of each token
(cross-entropy) and, per category, the occupancy of a 4x4 sub-grid of the token's 28x28 px cell (BCE,
occupied sub-cells weighted ``cfg.vision_pos_weight``). The head is discarded; the tower is frozen after.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from think2seg.warmstart.config import WarmstartConfig

log = logging.getLogger(__name__)


def pixel_batch(processor, images: Sequence[np.ndarray]):
    """``(pixel_values, image_grid_thw)`` of model-size RGB ``images`` through the processor."""

    out = processor.image_processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


def vision_features(model, pixel_values, grid_thw):
    """Merged image-token features (N_tokens, hidden), row-major over the merged grid per image."""
    return model.model.visual(pixel_values, grid_thw=grid_thw).pooler_output


def token_occupancy(mask: np.ndarray) -> np.ndarray:
    """(G*G, 16) occupancy of an (S, S) model-size mask on the 4x4 sub-grid of every merged 28-px token
    (G = S / 28), tokens row-major."""
    g = mask.shape[0] // 28
    sub = mask.reshape(g, 4, 7, g, 4, 7).mean(axis=(2, 5))  # (g, 4, g, 4)
    return sub.transpose(0, 2, 1, 3).reshape(g * g, 16).astype(np.float32)


def dense_targets(image_masks: dict[str, np.ndarray], categories: list[str], size: int) -> np.ndarray:
    """Per merged token: every category's sub-cell occupancy -> (G*G, C*16) floats (0 for absent ones)."""
    g = size // 28
    t = np.zeros((g * g, len(categories), 16), np.float32)
    for c, name in enumerate(categories):
        if (m := image_masks.get(name)) is not None:
            t[:, c] = token_occupancy(m)
    return t.reshape(g * g, len(categories) * 16)


def cell_iou(pred, target) -> float:
    """IoU of predicted vs true occupied sub-cells (bool tensors)."""
    return float((pred & target).sum()) / max(1, int((pred | target).sum()))


def vision_warmup(model, processor, items: list[dict[str, Any]], categories: list[str], cfg: WarmstartConfig):
    """Plain-torch dense pre-training of the vision tower on ``items`` (``render_warmup_scenes``) ->
    ``(stats, head)``."""
    import torch

    g = cfg.image_size // 28
    targets = [torch.from_numpy(dense_targets(d["masks"], categories, cfg.image_size)) for d in items]
    visual = model.model.visual
    head = torch.nn.Linear(model.config.text_config.hidden_size, 2 * g + len(categories) * 16)
    params = list(visual.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.vision_lr, weight_decay=0.0)
    warm = max(1, cfg.vision_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, cfg.vision_steps))))
    )
    rows, cols = torch.arange(g).repeat_interleave(g), torch.arange(g).repeat(g)
    pos_weight = None if cfg.vision_pos_weight == 1.0 else torch.tensor(cfg.vision_pos_weight)
    rng = random.Random(cfg.seed)
    ce, bce = torch.nn.functional.cross_entropy, torch.nn.functional.binary_cross_entropy_with_logits
    visual.train()
    stats: dict[str, float] = {}
    for step in tqdm(range(cfg.vision_steps), desc="vision warm-up", mininterval=10):
        idx = [rng.randrange(len(items)) for _ in range(cfg.vision_batch)]
        out = head(vision_features(model, *pixel_batch(processor, [items[i]["image"] for i in idx])))
        tgt = torch.cat([targets[i] for i in idx])
        r, c = rows.repeat(len(idx)), cols.repeat(len(idx))
        loss_pos = ce(out[:, :g], r) + ce(out[:, g : 2 * g], c)
        loss_occ = bce(out[:, 2 * g :], tgt, pos_weight=pos_weight)
        loss = loss_pos + 10 * loss_occ
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == cfg.vision_steps - 1:
            with torch.no_grad():
                acc = ((out[:, :g].argmax(1) == r) & (out[:, g : 2 * g].argmax(1) == c)).float().mean().item()
                stats = {"pos_loss": float(loss_pos), "occ_loss": float(loss_occ), "pos_acc": acc,
                         "occupancy_iou_train_batch": cell_iou(out[:, 2 * g :] > 0, tgt > 0.5)}
            log.info("vision step %d: %s", step, {k: round(v, 3) for k, v in stats.items()})
    visual.eval()
    return stats, head


def occupancy_iou(model, processor, head, items: list[dict[str, Any]], categories: list[str], size: int) -> dict:
    """Held-out check of the warm-up head: per-category IoU of occupied sub-cells (predicted logit > 0 vs
    occupancy > 0.5). A tower that learnt positions only scores ~0 here."""
    import torch

    g = size // 28
    with torch.no_grad():
        pred = (head(vision_features(model, *pixel_batch(processor, [d["image"] for d in items])))[:, 2 * g :] > 0)
    pred = pred.reshape(-1, len(categories), 16)
    true = torch.from_numpy(np.concatenate([dense_targets(d["masks"], categories, size) for d in items]) > 0.5)
    true = true.reshape(-1, len(categories), 16)
    per = {c: round(cell_iou(pred[:, k], true[:, k]), 3) for k, c in enumerate(categories)}
    return {"mean": round(float(np.mean(list(per.values()))), 3), "per_category": per}


def whiten_merger(model, processor, images: Sequence[np.ndarray], scale: float = 1.0, eps: float = 1e-3) -> dict:
    """ZCA-whiten the merged image-token features of ``images``, folded into ``visual.merger.mlp[2]`` (the
    checkpoint stays a standard Qwen2.5-VL). Eigenvalues are floored at ``eps`` x the largest."""
    import torch

    with torch.no_grad():
        x = torch.cat([vision_features(model, *pixel_batch(processor, images[i : i + 64])).double()
                       for i in range(0, len(images), 64)])
    mu = x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((x - mu).T))
    evals = evals.clamp_min(eps * evals.max())
    a = evecs @ torch.diag(scale / evals.sqrt()) @ evecs.T
    lin = model.model.visual.merger.mlp[2]
    with torch.no_grad():
        w, b = lin.weight.double(), lin.bias.double()
        lin.weight.copy_((a @ w).to(lin.weight.dtype))
        lin.bias.copy_((a @ (b - mu)).to(lin.bias.dtype))
    return {"before_norm": float(x.norm(dim=1).mean()), "mean_norm": float(mu.norm()),
            "top_eig": float(evals.max()), "n_tokens": int(x.shape[0])}
