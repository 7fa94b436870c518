"""Mask -> prompt geometry: tight boxes, deep interior points, negative points, connected components.

>>> import numpy as np
>>> m = np.zeros((40, 60), bool); m[5:15, 10:30] = True; m[25:35, 40:55] = True
>>> [i.box for i in mask_to_instances(m, "bbox", "components")]
[(10, 5, 29, 14), (40, 25, 54, 34)]
>>> mask_to_instances(m, "bbox+2pos", "whole")[0].box
(10, 5, 54, 34)

One place for the prompts a mask implies; the oracle prompter, the peer reward schemes' pseudo ground
truth and the warm-start targets use it. Everything is in the mask's own pixel space: ``x`` = column,
``y`` = row, integer pixels, boxes inclusive ``(x1, y1, x2, y2)``.

Modes of :func:`mask_to_instances`:
- ``components``: one instance per 8-connected component of the mask (specks under ``min_area`` pixels
  dropped unless that would drop every component; at most ``max_instances`` largest components kept);
- ``whole``: a single instance for the whole mask (box around all components; points spread over them).

Per instance: a tight box; ``n_pos`` positive points that are always mask pixels, chosen greedily to
maximise ``depth * spread`` (:func:`spread_points`: depth = distance to the nearest background pixel, the
image border counting as background; spread = distance to the points already chosen; the first point is
the deepest pixel); ``n_neg`` negative points (:func:`negative_points`) are background pixels near the
component. An empty mask gives ``[]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from think2seg.core.styles import DEFAULT_STYLE, PromptStyle, get_style
from think2seg.core.types import Instance

MODES = ("components", "whole")


def depth_map(mask: np.ndarray) -> np.ndarray:
    """L2 distance of each mask pixel to the nearest background pixel; the image border is background."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def spread_points(mask: np.ndarray, k: int) -> list[tuple[int, int]]:
    """``k`` (x, y) pixels of a non-empty (H, W) bool ``mask``: deep inside it and spread apart.

    Greedy: score(p) = depth(p) * distance(p, nearest chosen point); the first point is the deepest
    pixel. The product keeps points off the boundary yet spread along thin shapes (rings, strips) where
    depth is flat. Every point is a mask pixel; with fewer than ``k`` mask pixels, points repeat.
    """
    if k <= 0:
        return []
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("spread_points needs a non-empty mask")
    depth = depth_map(mask)[ys, xs].astype(np.float64)
    score = depth.copy()
    nearest = np.full(ys.size, np.inf)
    out: list[tuple[int, int]] = []
    for _ in range(k):
        i = int(np.argmax(score))
        out.append((int(xs[i]), int(ys[i])))
        d = np.hypot(xs - xs[i], ys - ys[i])
        nearest = np.minimum(nearest, d)
        score = depth * nearest
    return out


def farthest_points(xs: np.ndarray, ys: np.ndarray, first: int, k: int) -> list[tuple[int, int]]:
    """Farthest-point sampling of ``k`` candidates starting at index ``first`` (repeats if too few)."""
    chosen = [first]
    nearest = np.hypot(xs - xs[first], ys - ys[first])
    while len(chosen) < k:
        i = int(np.argmax(nearest))
        chosen.append(i)
        nearest = np.minimum(nearest, np.hypot(xs - xs[i], ys - ys[i]))
    return [(int(xs[i]), int(ys[i])) for i in chosen]


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive ``(x1, y1, x2, y2)`` of the True pixels of a non-empty (H, W) mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def negative_points(
    region: np.ndarray,
    full_mask: np.ndarray,
    k: int,
    anchor: tuple[int, int],
    margin: int,
) -> list[tuple[int, int]]:
    """``k`` background pixels (outside ``full_mask``) just outside ``region`` (both (H, W) bool).

    Candidates are background pixels within ``margin`` px of ``region``, first those inside the region's
    box, else those inside the box grown by ``margin``, else any; the first point is the candidate
    nearest ``anchor`` (x, y), the rest by farthest-point spread. When the mask covers the whole image
    there is no background: the image corners are returned (degenerate, documented).
    """
    if k <= 0:
        return []
    h, w = full_mask.shape
    background = ~full_mask
    if not background.any():
        corners = [(0, 0), (w - 1, h - 1), (w - 1, 0), (0, h - 1)]
        return [corners[i % 4] for i in range(k)]
    x1, y1, x2, y2 = tight_box(region)
    # Distance to the region, computed on a crop around it (grown so the ring fits).
    g = margin + 1
    cx1, cy1, cx2, cy2 = max(x1 - g, 0), max(y1 - g, 0), min(x2 + g, w - 1), min(y2 + g, h - 1)
    crop = region[cy1 : cy2 + 1, cx1 : cx2 + 1]
    dist = cv2.distanceTransform((~crop).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ring = (dist > 0) & (dist <= margin) & background[cy1 : cy2 + 1, cx1 : cx2 + 1]
    yy, xx = np.mgrid[cy1 : cy2 + 1, cx1 : cx2 + 1]
    in_box = (xx >= x1) & (xx <= x2) & (yy >= y1) & (yy <= y2)
    cand = ring & in_box
    if not cand.any():
        cand = ring
    if cand.any():
        ys, xs = np.nonzero(cand)
        xs, ys = xs + cx1, ys + cy1
    else:  # the region is surrounded by other mask pixels: take the background pixels nearest to it
        bys, bxs = np.nonzero(background)
        d_all = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d_bg = d_all[bys, bxs]
        keep = d_bg <= d_bg.min() + margin
        xs, ys = bxs[keep], bys[keep]
    first = int(np.argmin(np.hypot(xs - anchor[0], ys - anchor[1])))
    return farthest_points(xs, ys, first, k)


def region_instance(
    region: np.ndarray, full_mask: np.ndarray, style: PromptStyle, margin: int | None
) -> Instance:
    box = tight_box(region)
    pos = spread_points(region, max(style.n_pos, 1 if style.n_neg else 0))
    neg: list[tuple[int, int]] = []
    if style.n_neg:
        m = margin if margin is not None else max(3, round(0.05 * max(box[2] - box[0], box[3] - box[1])))
        neg = negative_points(region, full_mask, style.n_neg, pos[0], m)
    return Instance(
        box=box if style.box else None,
        positive=tuple(pos[: style.n_pos]),
        negative=tuple(neg),
    )


def mask_to_instances(
    mask: np.ndarray,
    style: str | PromptStyle = DEFAULT_STYLE,
    mode: str = "components",
    *,
    max_instances: int | None = 32,
    min_area: int = 32,
    neg_margin: int | None = None,
) -> list[Instance]:
    """Prompts for an (H, W) bool ``mask``, in the mask's own pixel space (see the module doc).

    Components are ordered largest first. ``neg_margin`` (pixels) bounds how far negative points may lie
    from their component; default 5 % of the box's longer side, at least 3 px.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    style = get_style(style)
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if not mask.any():
        return []
    if mode == "whole":
        return [region_instance(mask, mask, style, neg_margin)]
    return [region_instance(part, mask, style, neg_margin) for part in component_masks(mask, min_area, max_instances)]


def component_masks(mask: np.ndarray, min_area: int = 32, max_instances: int | None = None) -> list[np.ndarray]:
    """The instances of an (H, W) bool mask, each an (H, W) bool mask, largest first: its 8-connected
    components, specks under ``min_area`` pixels dropped unless that would drop every component, at most
    ``max_instances`` kept. An empty mask gives ``[]``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.asarray(mask, bool).astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = [int(i) + 1 for i in np.argsort(-areas, kind="stable")]
    kept = [i for i in order if stats[i, cv2.CC_STAT_AREA] >= min_area] or order[:1]
    if max_instances is not None:
        kept = kept[: max(int(max_instances), 1)]
    return [labels == i for i in kept]
