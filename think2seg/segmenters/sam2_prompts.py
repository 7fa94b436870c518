"""SAM-style interactive prompts sampled from one ground-truth instance mask (training ``sam2:mini-*``).

    >>> import numpy as np
    >>> m = np.zeros((64, 64), bool); m[10:30, 20:40] = True
    >>> coords, labels = sample_prompt(np.random.default_rng(0), m, "box")
    >>> coords.shape, labels.tolist()
    ((2, 2), [2, 3])

Kinds (``PROMPT_KINDS``):
- ``box``: the instance's tight box, each side moved by Gaussian noise of ``box_noise`` x that side's length
  (at most ``box_noise_max`` px; SAM's recipe);
- ``points``: 1-3 positive points drawn uniformly from the mask and 0-2 negative points from the
  background near it;
- ``box+points``: a jittered box and 1-3 positive / 0-2 negative points;
- ``oracle``: what the evaluation's oracle prompter gives (tight box + 2 deep, spread positive points,
  :func:`~think2seg.core.mask_to_prompts.mask_to_instances`).

Returns ``coords`` (P, 2) float32 ``(x, y)`` pixels of the mask's space and ``labels`` (P,) int32 as
``SAM2ImagePredictor._predict`` feeds the prompt encoder: box corners first (labels 2, 3, inclusive pixel
corners as a prompter writes them), then points (1 positive, 0 negative).
"""

from __future__ import annotations

import numpy as np

from think2seg.core.mask_to_prompts import mask_to_instances, tight_box

PROMPT_KINDS = ("box", "points", "box+points", "oracle")


def jitter_box(rng: np.random.Generator, box: tuple[int, int, int, int], shape: tuple[int, int],
               noise: float, noise_max: float) -> np.ndarray:
    """(4,) float ``(x1, y1, x2, y2)``: ``box`` with each side moved by N(0, noise * side) clipped to
    ``noise_max`` px, kept inside the image and at least 1 px wide."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1 + 1, y2 - y1 + 1
    d = rng.normal(0, noise, 4) * np.array([w, h, w, h])
    d = np.clip(d, -noise_max, noise_max)
    b = np.array([x1 + d[0], y1 + d[1], x2 + d[2], y2 + d[3]])
    b[[0, 2]] = np.clip(b[[0, 2]], 0, shape[1] - 1)
    b[[1, 3]] = np.clip(b[[1, 3]], 0, shape[0] - 1)
    if b[2] < b[0]:
        b[0], b[2] = b[2], b[0]
    if b[3] < b[1]:
        b[1], b[3] = b[3], b[1]
    return np.round(b)


def _pick(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or len(xs) == 0:
        return np.zeros((0, 2))
    idx = rng.choice(len(xs), size=min(k, len(xs)), replace=False)
    return np.stack([xs[idx], ys[idx]], 1).astype(float)


def random_points(rng: np.random.Generator, mask: np.ndarray, box: tuple[int, int, int, int],
                  n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_pos`` mask pixels and up to ``n_neg`` background pixels within the box grown by half its size."""
    ys, xs = np.nonzero(mask)
    pos = _pick(rng, ys, xs, n_pos)
    x1, y1, x2, y2 = box
    gx, gy = (x2 - x1 + 1) // 2 + 2, (y2 - y1 + 1) // 2 + 2
    ya, yb = max(0, y1 - gy), min(mask.shape[0], y2 + gy + 1)
    xa, xb = max(0, x1 - gx), min(mask.shape[1], x2 + gx + 1)
    nys, nxs = np.nonzero(~mask[ya:yb, xa:xb])
    neg = _pick(rng, nys + ya, nxs + xa, n_neg)
    return pos, neg


def sample_prompt(rng: np.random.Generator, mask: np.ndarray, kind: str, box_noise: float = 0.1,
                  box_noise_max: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """One prompt of ``kind`` for the (H, W) bool instance ``mask`` (see the module doc)."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; one of {PROMPT_KINDS}")
    box = tight_box(mask)
    if kind == "oracle":
        inst = mask_to_instances(mask, "bbox+2pos", "components", min_area=0)[0]
        coords = np.array([inst.box[:2], inst.box[2:], *inst.positive], float)
        return coords.astype(np.float32), np.array([2, 3] + [1] * len(inst.positive), np.int32)
    parts, labels = [], []
    if kind in ("box", "box+points"):
        parts.append(jitter_box(rng, box, mask.shape, box_noise, box_noise_max).reshape(2, 2))
        labels += [2, 3]
    if kind in ("points", "box+points"):
        pos, neg = random_points(rng, mask, box, int(rng.integers(1, 4)), int(rng.integers(0, 3)))
        parts += [pos, neg]
        labels += [1] * len(pos) + [0] * len(neg)
    return np.concatenate(parts).astype(np.float32), np.asarray(labels, np.int32)
