"""Reading trl's reward-function arguments: completion texts, ``image`` and ``gt_mask`` columns, one parse
per batch.

>>> completion_text([{"role": "assistant", "content": "<think>x</think><answer>[]</answer>"}])
'<think>x</think><answer>[]</answer>'

Dataset columns the rewards read (trl passes every column as a keyword, repeated per generation):
``image`` (PIL image or (H, W, 3) array — the image AS THE MODEL SAW IT, so coordinates match) and
``gt_mask`` (an (H, W) array, a path to a mask file, or a COCO RLE dict; resized with nearest neighbour
to the image size if needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from think2seg.core.geometry import resize_mask
from think2seg.core.io import read_mask
from think2seg.core.parsing import DEFAULT_POLICY, ParseResult, check_policy, parse_completion
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle


def completion_text(completion: Any) -> str:
    """trl gives plain strings, or conversational lists of messages (text at ``c[-1]["content"]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, list):  # multimodal message parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


def image_array(image: Any) -> np.ndarray:
    """An ``image`` column value (PIL, array, or trl's list of images) -> (H, W, 3) array."""
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "convert"):  # PIL
        return np.asarray(image.convert("RGB"))
    if isinstance(image, (list, tuple)) and image:  # trl "images" column: list of images
        return image_array(image[0])
    raise TypeError(f"cannot read an image from a {type(image).__name__}")


def image_sizes(image: Sequence[Any] | None, n: int, default: int = 840) -> list[tuple[int, int]]:
    """``(W, H)`` of each image of the column (``default`` square when there is no column)."""
    if image is None:
        return [(default, default)] * n
    out = []
    for im in image:
        if hasattr(im, "size") and not isinstance(im, np.ndarray):
            out.append(tuple(im.size))  # PIL: (W, H)
        else:
            a = image_array(im)
            out.append((a.shape[1], a.shape[0]))
    return out


@lru_cache(maxsize=256)
def _mask_from_path(path: str, w: int, h: int) -> np.ndarray:
    return resize_mask(read_mask(path), (w, h))


def load_gt_mask(value: Any, size: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask column value -> (H, W) bool at ``size=(W, H)``."""

    w, h = size
    if isinstance(value, (str,)) or hasattr(value, "__fspath__"):
        return _mask_from_path(str(value), w, h)
    if isinstance(value, dict) and "counts" in value:
        from pycocotools import mask as mask_utils

        rle = dict(value)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
        return resize_mask(mask_utils.decode(rle).astype(bool), (w, h))
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise TypeError(f"gt_mask must be 2-D, a path or an RLE dict, got shape {arr.shape}")
    return resize_mask(arr.astype(bool), (w, h))


class BatchParser:
    """``parse_completion`` over a batch under one parse ``policy``, remembering the last batch: trl calls
    each reward function on the same completions, so rewards that share one parser parse them once."""

    def __init__(self, style: str | PromptStyle = DEFAULT_STYLE, policy: str = DEFAULT_POLICY) -> None:
        self.style = style
        self.policy = check_policy(policy)
        self.calls = 0  # batches actually parsed (not served from the memo)
        self._last: tuple[tuple[Any, ...], list[ParseResult]] | None = None

    def __call__(self, completions: Sequence[Any], sizes: Sequence[tuple[int, int]]) -> list[ParseResult]:
        texts = [completion_text(c) for c in completions]
        key = (tuple(texts), tuple(tuple(s) for s in sizes))
        if self._last is None or self._last[0] != key:
            self.calls += 1
            self._last = (
                key,
                [
                    parse_completion(t, self.style, s, policy=self.policy)
                    for t, s in zip(texts, sizes, strict=False)
                ],
            )
        return self._last[1]


class ParsingReward:
    """Base of the rewards that need the answer's instances: one shared :class:`BatchParser`."""

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        parser: BatchParser | None = None,
        policy: str | None = None,
    ) -> None:
        if parser is not None and parser.style != style:
            raise ValueError(f"parser style {parser.style!r} differs from the reward's style {style!r}")
        if parser is not None and policy is not None and parser.policy != policy:
            raise ValueError(f"parser policy {parser.policy!r} differs from the reward's policy {policy!r}")
        self.style = style
        self._parse = parser or BatchParser(style, policy or DEFAULT_POLICY)
        self.policy = self._parse.policy
