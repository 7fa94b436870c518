"""Drawing images with masks and prompts: matplotlib axes (notebooks, reports) or plain arrays (files).

>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots()                                                      # doctest: +SKIP
>>> show(ax, image, mask, [Instance(box=(10, 10, 60, 50), positive=((30, 30),))], title="the runways")  # doctest: +SKIP
>>> arr = overlay(image, mask, instances)     # (H, W, 3) uint8 with the same drawing, for cv2 / PIL  # doctest: +SKIP

Conventions: the mask is filled semi-transparently (default red), boxes are yellow rectangles, positive
points green dots, negative points red crosses. Prompt coordinates are pixels of the image drawn
(``x`` = column, ``y`` = row); scale them first (``Instance.scaled``) if they refer to another size.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import cv2
import numpy as np

from think2seg.core.types import Instance

MASK_RGB = (230, 40, 40)
BOX_RGB = (255, 215, 0)
POS_RGB = (40, 220, 60)
NEG_RGB = (235, 30, 30)


def _rgb01(c: Sequence[int]) -> tuple[float, ...]:
    return tuple(v / 255 for v in c)


def overlay(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    instances: Sequence[Instance] = (),
    *,
    color: Sequence[int] = MASK_RGB,
    alpha: float = 0.45,
    contour: bool = True,
    thickness: int = 1,
    box_color: Sequence[int] = BOX_RGB,
    neg_color: Sequence[int] = NEG_RGB,
) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` with ``mask`` (H, W) blended in and the prompts drawn on top."""

    out = np.ascontiguousarray(image[..., :3]).astype(np.float32)
    if mask is not None and mask.any():
        m = mask.astype(bool)
        out[m] = out[m] * (1 - alpha) + np.asarray(color, np.float32) * alpha
    out = out.round().clip(0, 255).astype(np.uint8)
    if mask is not None and contour and mask.any():
        cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, cs, -1, tuple(int(c) for c in color), thickness)
    r = max(2, round(min(out.shape[:2]) / 120))
    for inst in instances:
        if inst.box is not None:
            x1, y1, x2, y2 = (int(v) for v in inst.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), tuple(int(c) for c in box_color), thickness)
        for x, y in inst.positive:
            cv2.circle(out, (int(x), int(y)), r, POS_RGB, -1)
        for x, y in inst.negative:
            cv2.drawMarker(out, (int(x), int(y)), tuple(int(c) for c in neg_color), cv2.MARKER_TILTED_CROSS, 3 * r, max(1, r // 2))
    return out


def draw_prompts(ax, instances: Sequence[Instance], *, linewidth: float = 1.5, markersize: float = 6) -> None:
    """Boxes (yellow), positive points (green dots) and negative points (red crosses) on a matplotlib axis."""
    from matplotlib.patches import Rectangle

    for inst in instances:
        if inst.box is not None:
            x1, y1, x2, y2 = inst.box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=_rgb01(BOX_RGB),
                                   linewidth=linewidth))
        if inst.positive:
            xs, ys = zip(*inst.positive, strict=True)
            ax.plot(xs, ys, "o", color=_rgb01(POS_RGB), markersize=markersize, markeredgecolor="black",
                    markeredgewidth=0.6, linestyle="none")
        if inst.negative:
            xs, ys = zip(*inst.negative, strict=True)
            ax.plot(xs, ys, "X", color=_rgb01(NEG_RGB), markersize=markersize, markeredgecolor="black",
                    markeredgewidth=0.6, linestyle="none")


def show(
    ax,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    instances: Sequence[Instance] = (),
    *,
    title: str | None = None,
    color: Sequence[int] = MASK_RGB,
    alpha: float = 0.45,
    wrap: int = 42,
    fontsize: float = 8,
) -> None:
    """Image + mask overlay (filled, with its contour) + prompts on ``ax``; ``title`` wrapped at ``wrap``."""

    ax.imshow(overlay(image, mask, (), color=color, alpha=alpha))
    draw_prompts(ax, instances)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, wrap)), fontsize=fontsize)
