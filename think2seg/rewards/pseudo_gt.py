"""Pseudo ground truth for the peer reward schemes: the boxes and points a mask implies, per peer.

>>> import numpy as np
>>> m = np.zeros((60, 60), bool); m[5:20, 5:20] = True; m[40:55, 30:58] = True
>>> segzero_pseudo_gt(m).box, component_boxes(m)
((5, 5, 57, 54), [(30, 40, 57, 54), (5, 5, 19, 19)])

All in the mask's pixel space ((H, W) bool in, integer inclusive boxes and (x, y) points out), built on
:mod:`think2seg.core.mask_to_prompts`.
"""

from __future__ import annotations

import math

import numpy as np

from think2seg.core.mask_to_prompts import depth_map, mask_to_instances
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.core.types import Box, Instance

MAX_PSEUDO_INSTANCES = 32  # = the parser's cap on predicted instances


def segzero_pseudo_gt(mask: np.ndarray) -> Instance | None:
    """One tight box around the whole mask + two interior points (:func:`~think2seg.core.mask_to_prompts.spread_points` placement); None if empty."""
    inst = mask_to_instances(mask, DEFAULT_STYLE, mode="whole")
    return inst[0] if inst else None


def component_boxes(
    mask: np.ndarray, min_area: int = 32, max_instances: int = MAX_PSEUDO_INSTANCES
) -> list[Box]:
    """RemoteReasoner's mask -> boxes: one tight box per 8-connected component, largest first.

    Components under ``min_area`` pixels are dropped unless that would drop all of them (then the largest
    is kept), like :func:`~think2seg.core.mask_to_prompts.mask_to_instances`'s ``components`` mode which this reuses.
    """
    insts = mask_to_instances(mask, "bbox", "components", max_instances=max_instances, min_area=min_area)
    return [i.box for i in insts if i.box is not None]


def _block_any(mask: np.ndarray, s: int) -> np.ndarray:
    """(ceil(H/s), ceil(W/s)) bool: a cell is foreground when any pixel of its s x s block is."""
    if s == 1:
        return mask
    h, w = mask.shape
    hh, ww = -(-h // s), -(-w // s)
    pad = np.zeros((hh * s, ww * s), bool)
    pad[:h, :w] = mask
    return pad.reshape(hh, s, ww, s).any(axis=(1, 3))


def dbscan_instances(
    mask: np.ndarray,
    *,
    eps_frac: float = 0.02,
    min_samples: int = 4,
    grid: int = 120,
    max_instances: int = MAX_PSEUDO_INSTANCES,
) -> list[Instance]:
    """VisionReasoner's pseudo instances: DBSCAN over foreground pixel coordinates, one box + one point each.

    For speed the mask is first pooled onto a grid of at most ``grid`` cells per side (stride
    ``s = ceil(max(H, W) / grid)``; a cell is foreground if any of its pixels is, so thin structures
    survive); DBSCAN (scikit-learn, ball tree) runs on the cell coordinates with

    - ``eps`` = ``max(eps_frac * max(H, W), 1.5 * s)`` pixels (17 px at 840: blobs closer than that merge;
      never below 1.5 cells, so 8-adjacent cells are always neighbours), expressed in cells;
    - ``min_samples`` = 4 cells within ``eps`` (the cell itself included) for a core point: isolated
      specks of 1-3 cells are noise and dropped, unless EVERYTHING is noise, then the whole mask is one
      cluster (a non-empty mask always gives at least one pseudo instance).

    Every foreground pixel then takes its cell's cluster, so boxes are tight at full resolution; the
    point is the cluster's deepest pixel (:func:`~think2seg.core.mask_to_prompts.depth_map`, i.e. ``spread_points(cluster, 1)``).
    Clusters are returned largest first (pixel count), at most ``max_instances``. Distances are thus
    measured at cell resolution (within ``s`` px); a full 840² mask takes about 25-40 ms (one CPU core).
    """
    from sklearn.cluster import DBSCAN

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if not mask.any():
        return []
    h, w = mask.shape
    s = max(1, math.ceil(max(h, w) / grid))
    cells_mask = _block_any(mask, s)
    cells = np.argwhere(cells_mask)  # (n, 2) row, col
    eps_px = max(eps_frac * max(h, w), 1.5 * s)
    labels = DBSCAN(eps=eps_px / s, min_samples=min_samples, algorithm="ball_tree").fit_predict(cells)
    if (labels < 0).all():
        labels = np.zeros_like(labels)
    grid_labels = np.full(cells_mask.shape, -1, dtype=np.int64)
    grid_labels[cells[:, 0], cells[:, 1]] = labels
    found: list[tuple[int, int, Instance]] = []  # (-pixel count, label, instance)
    for k in np.unique(labels[labels >= 0]):
        rc = cells[labels == k]
        r1, c1 = rc.min(axis=0)
        r2, c2 = rc.max(axis=0) + 1
        y0, x0 = r1 * s, c1 * s
        block = mask[y0 : min(r2 * s, h), x0 : min(c2 * s, w)]
        lab = np.repeat(np.repeat(grid_labels[r1:r2, c1:c2], s, axis=0), s, axis=1)
        region = block & (lab[: block.shape[0], : block.shape[1]] == k)
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        ry1, ry2, rx1, rx2 = rows[0], rows[-1], cols[0], cols[-1]
        region = region[ry1 : ry2 + 1, rx1 : rx2 + 1]
        # the deepest pixel (first in row order), i.e. spread_points(region, 1)
        py, px = np.unravel_index(int(np.argmax(depth_map(region))), region.shape)
        x1, y1 = int(x0 + rx1), int(y0 + ry1)
        box = (x1, y1, int(x0 + rx2), int(y0 + ry2))
        found.append((-int(np.count_nonzero(region)), int(k), Instance(box, ((x1 + int(px), y1 + int(py)),))))
    found.sort(key=lambda t: (t[0], t[1]))
    return [inst for _, _, inst in found[:max_instances]]
