"""How well an answer's prompts fit the target, before any segmenter runs: the box tightness and the
points-on-target share that GRPO is meant to raise (paper §3: "misaligned bounding boxes or poorly placed
points").

    >>> import numpy as np
    >>> from think2seg.core.types import Instance
    >>> gt = np.zeros((20, 20), bool); gt[5:10, 5:10] = True
    >>> prompt_geometry([Instance(box=(5, 5, 9, 9), positive=((6, 6), (15, 15)))], gt)
    {'box_iou': 1.0, 'points_on_target': 0.5}
    >>> prompt_geometry([Instance(box=(0, 0, 19, 9))], gt)["box_iou"]
    0.125

Everything is in one pixel space: the instances' coordinates index ``gt`` ((H, W) bool) directly, x = column,
y = row, boxes ``(x1, y1, x2, y2)`` with inclusive corners (the model space of the evaluation records).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from think2seg.core.geometry import clip_box
from think2seg.core.types import Instance


def component_boxes(gt: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The tight inclusive box of every 8-connected component of the (H, W) bool mask ``gt``."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(gt.astype(np.uint8), connectivity=8)
    out = []
    for k in range(1, n):
        x, y, w, h = (int(v) for v in stats[k, :4])
        out.append((x, y, x + w - 1, y + h - 1))
    return out


def box_cover(boxes: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels inside any of ``boxes`` (clipped to ``shape`` = (H, W))."""
    h, w = shape
    out = np.zeros((h, w), bool)
    for b in boxes:
        if (c := clip_box(b, w, h)) is not None:
            out[c[1] : c[3] + 1, c[0] : c[2] + 1] = True
    return out


def box_iou_with_target(instances: Sequence[Instance], gt: np.ndarray) -> float | None:
    """IoU of the pixels covered by the answer's boxes and those covered by the target components' tight
    boxes: 1.0 for one tight box per component; a loose box, or one box over several separated
    components, scores lower. None when the answer has no box or the target is empty."""
    boxes = [i.box for i in instances if i.box is not None]
    if not boxes or not gt.any():
        return None
    pred, target = box_cover(boxes, gt.shape), box_cover(component_boxes(gt), gt.shape)
    return float((pred & target).sum() / (pred | target).sum())


def points_on_target(instances: Sequence[Instance], gt: np.ndarray) -> float | None:
    """Share of the answer's positive points that fall on the target (points off the image count as
    misses). None when the answer has no positive point or the target is empty."""
    pts = [p for i in instances for p in i.positive]
    if not pts or not gt.any():
        return None
    h, w = gt.shape
    hits = [0 <= x < w and 0 <= y < h and bool(gt[int(y), int(x)]) for x, y in pts]
    return float(np.mean(hits))


def prompt_geometry(instances: Sequence[Instance], gt: np.ndarray) -> dict[str, float | None]:
    """``{"box_iou", "points_on_target"}`` of one answer (see the two functions above)."""
    return {"box_iou": box_iou_with_target(instances, gt), "points_on_target": points_on_target(instances, gt)}
