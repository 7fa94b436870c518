"""SFT targets of the warm start: ``<think>`` names the category, ``<answer>`` holds ONE instance (the
whole mask's tight box + two spread positive points, the oracle's ``whole`` prompts).

    >>> target_text(sample, mask_112)          # model-size mask  # doctest: +SKIP
    '<think>The request refers to storage tanks.</think>\\n<answer>```json[{"bbox_2d": [...], ...}]```</answer>'

An absent category gives "There are no <category> in this image." and ``[]``. Coordinates are in the
model input's pixel space (``0..image_size-1``).
"""

from __future__ import annotations

import numpy as np

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


def target_instances(mask: np.ndarray) -> list[Instance]:
    """The SFT answer for an (H, W) model-size bool mask: one instance over the whole mask (``[]`` when
    empty), in the mask's pixel space."""

    return mask_to_instances(mask, DEFAULT_STYLE, "whole")


def target_text(category: str, mask: np.ndarray) -> str:
    """The full SFT completion for the category name ``category`` and its model-size mask."""
    inst = target_instances(mask)
    return format_answer(inst, think_text(category, not inst))
