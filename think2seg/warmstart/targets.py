"""SFT targets of the warm start: ``<think>`` names the category, ``<answer>`` holds ONE instance over
the whole mask, drawn by one of two geometries (:data:`GEOMETRIES`):

* ``tight``: the mask's tight box + two spread positive points on it (the oracle's ``whole`` prompts);
* ``zeroshot``: what a generic grounding model outputs, blind to the segmenter (the rules are stated in
  ``docs/warmstart.md``): the box grown by a jittered margin, two points on its centre line.

    >>> import numpy as np
    >>> m = np.zeros((56, 56), bool); m[10:20, 10:40] = True
    >>> target_instances(m)                                  # tight: x1, y1, x2, y2 inclusive
    [Instance(box=(10, 10, 39, 19), positive=((14, 14), (35, 15)), negative=())]
    >>> target_instances(m, "zeroshot", np.random.default_rng(0))
    [Instance(box=(5, 9, 41, 20), positive=((17, 14), (29, 14)), negative=())]
    >>> target_text("buildings", m)[:47]
    '<think>The request refers to buildings.</think>'

An absent category gives "There are no <category> in this image." and ``[]``. Coordinates are in the
model input's pixel space (``0..image_size-1``).
"""

from __future__ import annotations

import numpy as np

from think2seg.core.geometry import clip_box
from think2seg.core.mask_to_prompts import mask_to_instances
from think2seg.core.styles import DEFAULT_STYLE, format_answer
from think2seg.core.types import Instance, Sample
from think2seg.data.scenes import CATEGORIES


def category_name(key: str) -> str:
    """SynthEarth's plural display name of a category key (``storage_tank`` -> ``storage tanks``)."""

    return CATEGORIES[key].plural if key in CATEGORIES else str(key).replace("_", " ")


def category_of(sample: Sample) -> str:
    """The category name written in ``<think>`` for ``sample`` (from ``extra['category']``)."""
    cat = sample.extra.get("category")
    if not cat:
        raise ValueError(f"sample {sample.id} has no extra['category'] (SynthEarth data needed for the warm start)")
    return category_name(cat)


def think_text(category: str, empty: bool) -> str:
    return f"There are no {category} in this image." if empty else f"The request refers to {category}."


def think_prefill(category: str) -> str:
    """The start of a completion up to and including the category name (``<think>The request refers to
    storage tanks``): what follows the name is left to the model, since the BPE merges ``.</think>``
    characters into tokens of their own."""
    text = think_text(category, False)
    return "<think>" + text[: text.index(category) + len(category)]


GEOMETRIES = ("tight", "zeroshot")
ZEROSHOT_MARGIN = 0.15  # each side of the box pushed out by this share of the box's extent ...
ZEROSHOT_JITTER = 0.10  # ... plus a uniform draw in +- this share, side by side


def zeroshot_instance(mask: np.ndarray, rng: np.random.Generator) -> Instance:
    """A generic grounding model's answer for a non-empty (H, W) bool mask, in its pixel space: the box
    of every pixel, each side moved out by ``ZEROSHOT_MARGIN`` + U(-``ZEROSHOT_JITTER``, +``ZEROSHOT_JITTER``)
    of the box's width (left/right) or height (top/bottom), clipped to the image; two positive points at
    1/3 and 2/3 of that box's long axis on its centre line, whether or not they fall on the mask."""
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    w, h = x2 - x1 + 1, y2 - y1 + 1
    d = ZEROSHOT_MARGIN + rng.uniform(-ZEROSHOT_JITTER, ZEROSHOT_JITTER, 4)
    box = clip_box((x1 - d[0] * w, y1 - d[1] * h, x2 + d[2] * w, y2 + d[3] * h), mask.shape[1], mask.shape[0])
    bx1, by1, bx2, by2 = box  # never None: the grown box contains the mask's box
    cx, cy = (bx1 + bx2) / 2, (by1 + by2) / 2
    if bx2 - bx1 >= by2 - by1:
        pts = [(bx1 + (bx2 - bx1) * f, cy) for f in (1 / 3, 2 / 3)]
    else:
        pts = [(cx, by1 + (by2 - by1) * f) for f in (1 / 3, 2 / 3)]
    return Instance(box=box, positive=tuple((int(round(x)), int(round(y))) for x, y in pts))


def target_instances(mask: np.ndarray, geometry: str = "tight", rng: np.random.Generator | None = None) -> list[Instance]:
    """The SFT answer for an (H, W) model-size bool mask: one instance over the whole mask (``[]`` when
    empty), in the mask's pixel space; ``rng`` draws the ``zeroshot`` jitter."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, not {geometry!r}")
    if geometry == "tight" or not mask.any():
        return mask_to_instances(mask, DEFAULT_STYLE, "whole")
    return [zeroshot_instance(mask, rng if rng is not None else np.random.default_rng(0))]


def target_text(category: str, mask: np.ndarray, geometry: str = "tight", rng: np.random.Generator | None = None) -> str:
    """The full SFT completion for the category name ``category`` and its model-size mask."""
    inst = target_instances(mask, geometry, rng)
    return format_answer(inst, think_text(category, not inst))
