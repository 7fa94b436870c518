"""The weightless "segmenter" whose mask is the prompt's box: IoU of a box-shaped mask, no image used.

    >>> import numpy as np
    >>> from think2seg.core.types import Instance
    >>> seg = BoxFillSegmenter()                                   # or build_segmenter("boxfill")
    >>> m = seg.segment(np.zeros((8, 8, 3), np.uint8), [[Instance(box=(1, 2, 3, 5))]])[0]
    >>> int(m.sum()), bool(m[2, 1] and m[5, 3] and not m[6, 3])      # 3 x 4 px, inclusive corners
    (12, True)

Per instance (pixel space of the image given to ``set_image``): the box, corners sorted and clipped to the
image, inclusive; an instance without a box fills the bounding rectangle of its positive points; negative
points are ignored; the masks of a prompt set are OR-ed. Two uses: a cheap segmenter for benchmarks of the
parsing/reward path, and a training segmenter on which a bigger box never pays more than its overlap
(GrabCut turns a near-whole-image box into the scene's salient objects; a box-shaped mask does not). Results
scored with it are box-IoU-like, not mask quality: evaluate with the segmenter of the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from think2seg.core.geometry import clip_box
from think2seg.core.types import Instance, PromptSet
from think2seg.segmenters.base import ImageKey, SegmenterBase, usable

__all__ = ["BoxFillSegmenter", "box_region"]


def box_region(inst: Instance, w: int, h: int) -> tuple[int, int, int, int] | None:
    """The inclusive (x1, y1, x2, y2) pixel rectangle ``inst`` fills in a (h, w) image, or None."""
    if inst.box is not None:
        return clip_box(inst.box, w, h)
    if inst.positive:
        xs, ys = [p[0] for p in inst.positive], [p[1] for p in inst.positive]
        return clip_box((min(xs), min(ys), max(xs), max(ys)), w, h)
    return None


class BoxFillSegmenter(SegmenterBase):
    """Box-shaped masks behind the :class:`~think2seg.segmenters.base.Segmenter` protocol (no weights)."""

    name = "boxfill"

    def _embed(self, key: ImageKey, image: np.ndarray) -> None:
        return None  # the image content is not used

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        out = self._empty_masks(len(prompt_sets))
        h, w = self._require_image()
        for mask, prompts in zip(out, prompt_sets, strict=True):
            for inst in prompts:
                r = box_region(inst, w, h) if usable(inst) else None
                if r is not None:
                    x1, y1, x2, y2 = r
                    mask[y1 : y2 + 1, x1 : x2 + 1] = True
        return out
