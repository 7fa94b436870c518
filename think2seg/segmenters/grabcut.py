"""Weightless segmentation: OpenCV GrabCut seeded by each instance's box and points (the embedded default).

    >>> seg = GrabCutSegmenter()                              # or build_segmenter("grabcut")
    >>> masks = seg.segment(image, [[Instance(box=(40, 30, 120, 100))], []])   # doctest: +SKIP

Seeds of one instance (pixel space of the image given to ``set_image``; boxes have inclusive corners):

- box: inside = probable foreground, outside = definite background; corners are sorted and clipped to
  the image (a box wholly outside the image is dropped);
- positive points: definite-foreground discs, negative points: definite-background discs (radius
  ``max(2, 1 % of the longer image side)``; positives are drawn last, so they win where discs overlap;
  points outside the image are dropped);
- points without a box: the points' bounding rectangle grown by ``max(4 radii, 10 % of the longer
  image side)`` on each side is probable foreground and the ring around it (see the crop below) only
  *probable* background, so the object may extend beyond the guess (two interior points say little
  about extent); negative points alone give nothing.

GrabCut then runs ``iterations`` rounds on a crop around the box (the box grown by half its longer side,
at least 8 px, clipped), so small boxes on large images stay cheap and the background model is local.
Boxes under 3 px on a side are returned as drawn (too few pixels for colour models). When GrabCut cannot
run (no background seed left, e.g. a box covering the whole image, or an OpenCV error) the seeded
foreground region (box minus negative discs, plus positive discs) is returned instead, a
:class:`GrabCutFallbackWarning` is issued and ``stats["fallbacks"]`` counts it: never a crash.
The instance masks of a prompt set are OR-ed; identical instances within one ``predict`` call are cut
once. OpenCV's RNG is reseeded before every call, so masks are
deterministic. Cost: ~30-60 ms per instance at 256 px on one CPU core.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np

from think2seg.core.geometry import clip_box
from think2seg.core.types import Instance, PromptSet
from think2seg.segmenters.base import ImageKey, SegmenterBase, instance_key, usable

MIN_SIDE = 3


class GrabCutFallbackWarning(UserWarning):
    """GrabCut could not run on an instance; its seeded region was used as the mask."""


class GrabCutSegmenter(SegmenterBase):
    """GrabCut behind the :class:`~think2seg.segmenters.base.Segmenter` protocol (no weights, CPU only)."""

    name = "grabcut"

    def __init__(self, iterations: int = 5, roi_margin: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.iterations = int(iterations)
        self.roi_margin = float(roi_margin)
        self.seed = int(seed)
        self._image: np.ndarray | None = None

    def _embed(self, key: ImageKey, image: np.ndarray) -> None:
        if key == self._key and self._image is not None:
            self._count("cache_hits")
            return
        self._image = image

    def clear_cache(self) -> None:
        super().clear_cache()
        self._image = None

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        out = self._empty_masks(len(prompt_sets))
        done: dict[tuple, np.ndarray] = {}  # identical prompts (deterministic GrabCut) are cut once
        for mask, prompts in zip(out, prompt_sets, strict=True):
            for inst in prompts:
                if not usable(inst):
                    continue
                key = instance_key(inst)
                if key not in done:
                    done[key] = np.zeros_like(mask)
                    self._paint(inst, done[key])
                else:
                    self._count("duplicates")
                mask |= done[key]
        return out

    # -- one instance --------------------------------------------------------------------------------------
    def _paint(self, inst: Instance, out: np.ndarray) -> None:
        """OR the mask of ``inst`` into ``out`` (H, W) bool."""
        assert self._image is not None
        h, w = out.shape
        radius = max(2, round(0.01 * max(h, w)))
        pos = [(int(round(x)), int(round(y))) for x, y in inst.positive if 0 <= x < w and 0 <= y < h]
        neg = [(int(round(x)), int(round(y))) for x, y in inst.negative if 0 <= x < w and 0 <= y < h]
        rect = clip_box(inst.box, w, h) if inst.box is not None else None
        ring = cv2.GC_BGD
        if rect is None and pos:
            ring = cv2.GC_PR_BGD  # the rectangle is a guess: the object may extend beyond it
            grow = max(4 * radius, round(0.1 * max(h, w)))
            xs, ys = [p[0] for p in pos], [p[1] for p in pos]
            rect = clip_box((min(xs) - grow, min(ys) - grow, max(xs) + grow, max(ys) + grow), w, h)
        if rect is None:
            return
        x1, y1, x2, y2 = rect
        m = max(8, round(self.roi_margin * max(x2 - x1 + 1, y2 - y1 + 1)))
        rx1, ry1, rx2, ry2 = max(0, x1 - m), max(0, y1 - m), min(w - 1, x2 + m), min(h - 1, y2 + m)
        seed = np.full((ry2 - ry1 + 1, rx2 - rx1 + 1), ring, dtype=np.uint8)
        seed[y1 - ry1 : y2 - ry1 + 1, x1 - rx1 : x2 - rx1 + 1] = cv2.GC_PR_FGD
        for (px, py), value in [(p, cv2.GC_BGD) for p in neg] + [(p, cv2.GC_FGD) for p in pos]:
            if rx1 <= px <= rx2 and ry1 <= py <= ry2:
                cv2.circle(seed, (px - rx1, py - ry1), radius, int(value), thickness=-1)
        outside = [p for p in pos if not (rx1 <= p[0] <= rx2 and ry1 <= p[1] <= ry2)]
        region = out[ry1 : ry2 + 1, rx1 : rx2 + 1]
        region |= self._grabcut(self._image[ry1 : ry2 + 1, rx1 : rx2 + 1], seed, rect)
        for px, py in outside:  # a positive point far outside its own box: still definite foreground
            disc = np.zeros((h, w), np.uint8)
            cv2.circle(disc, (px, py), radius, 1, thickness=-1)
            out |= disc.astype(bool)

    def _grabcut(self, crop: np.ndarray, seed: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        fg = (seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)
        x1, y1, x2, y2 = rect
        if min(x2 - x1, y2 - y1) + 1 < MIN_SIDE:
            self._count("tiny_boxes")
            return fg
        n_bg = int(np.count_nonzero((seed == cv2.GC_BGD) | (seed == cv2.GC_PR_BGD)))
        if n_bg == 0 or not fg.any():
            return self._fallback(fg, "no background seed left (box covers the whole image)" if fg.any()
                                  else "no foreground seed left (negative points cover the box)")
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        work = seed.copy()
        try:
            cv2.setRNGSeed(self.seed)
            cv2.grabCut(crop, work, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as e:
            return self._fallback(fg, f"OpenCV error: {str(e).strip().splitlines()[-1]}")
        self._count("grabcut_calls")
        return (work == cv2.GC_FGD) | (work == cv2.GC_PR_FGD)

    def _fallback(self, fg: np.ndarray, why: str) -> np.ndarray:
        self._count("fallbacks")
        warnings.warn(f"GrabCut fell back to the seeded region: {why}", GrabCutFallbackWarning, stacklevel=4)
        return fg
