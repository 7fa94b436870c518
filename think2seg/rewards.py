"""Reward functions with trl's GRPOTrainer contract: ``f(completions, **dataset_columns) -> list[float | None]``.

>>> rewards = think2seg_rewards(segmenter="grabcut")      # doctest: +SKIP
>>> GRPOTrainer(..., reward_funcs=rewards, args=GRPOConfig(reward_weights=REWARD_WEIGHTS, ...))

The paper's reward (Eq. 3) is ``λ1·R_format + λ2·R_IoU`` with λ1 = 1, λ2 = 2; as released, the format part is
two 0/1 terms (max total 4), which trl logs separately:

- :func:`think_format_reward` — the completion fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``;
- :class:`JsonFormatReward` — the answer is a list of instance objects valid for the prompt style;
- :class:`MaskIoUReward` — IoU of the segmenter's mask (union over instances) with the ground truth, in
  [0, 1]; on an empty ground truth 1 for the answer ``[]`` and 0 otherwise; on a non-empty ground truth
  ``[]`` or an unusable answer gives 0.

Dataset columns the rewards read (trl passes every column as a keyword, repeated per generation):
``image`` (PIL image or (H, W, 3) array — the image AS THE MODEL SAW IT, so coordinates match) and
``gt_mask`` (an (H, W) array, a path to a mask file, or a COCO RLE dict; resized with nearest neighbour
to the image size if needed). ``gt_empty`` is derived from the mask.

The released quirk — ``[]`` earns the JSON-format reward even when a target exists — is the option
``empty_json_ok_on_target``. Default: False, so that rejecting a present target earns nothing but the tag
format; the paper configs set it True to reproduce the released recipe.

Segmentation is done per image, once per group: completions that share an image (trl puts the G
generations of a prompt side by side) are segmented with one ``set_image`` and one batched ``predict``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from think2seg.parsing import ParseResult, parse_completion
from think2seg.prompts import DEFAULT_STYLE, PromptStyle

REWARD_WEIGHTS = [1.0, 1.0, 2.0]  # think format, JSON format (λ1 = 1 each, as released), mask IoU (λ2 = 2)


def completion_text(completion: Any) -> str:
    """trl gives plain strings, or conversational lists of messages (text at ``c[0]["content"]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, list):  # multimodal message parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


def think_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when the completion is exactly ``<think>..</think> <answer>..</answer>``, else 0.0."""
    from think2seg.parsing import tags_full_match

    return [1.0 if tags_full_match(completion_text(c)) else 0.0 for c in completions]


def _pil_or_array_to_array(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "convert"):  # PIL
        return np.asarray(image.convert("RGB"))
    if isinstance(image, (list, tuple)) and image:  # trl "images" column: list of images
        return _pil_or_array_to_array(image[0])
    raise TypeError(f"cannot read an image from a {type(image).__name__}")


@lru_cache(maxsize=256)
def _mask_from_path(path: str, w: int, h: int) -> np.ndarray:
    from think2seg.data.io import read_mask
    from think2seg.geometry import resize_mask

    return resize_mask(read_mask(path), (w, h))


def load_gt_mask(value: Any, size: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask column value -> (H, W) bool at ``size=(W, H)``."""
    from think2seg.geometry import resize_mask

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
    """``parse_completion`` over a batch, remembering the last batch: trl calls each reward function on the
    same completions, so rewards that share one parser (:func:`think2seg_rewards`) parse them once."""

    def __init__(self, style: str | PromptStyle = DEFAULT_STYLE) -> None:
        self.style = style
        self.calls = 0  # batches actually parsed (not served from the memo)
        self._last: tuple[tuple[Any, ...], list[ParseResult]] | None = None

    def __call__(self, completions: Sequence[Any], sizes: Sequence[tuple[int, int]]) -> list[ParseResult]:
        texts = [completion_text(c) for c in completions]
        key = (tuple(texts), tuple(tuple(s) for s in sizes))
        if self._last is None or self._last[0] != key:
            self.calls += 1
            self._last = (key, [parse_completion(t, self.style, s) for t, s in zip(texts, sizes, strict=False)])
        return self._last[1]


class _ParsingReward:
    """Shared parsing for rewards that need the answer's instances."""

    def __init__(self, style: str | PromptStyle = DEFAULT_STYLE, parser: BatchParser | None = None) -> None:
        if parser is not None and parser.style != style:
            raise ValueError(f"parser style {parser.style!r} differs from the reward's style {style!r}")
        self.style = style
        self._parse = parser or BatchParser(style)


def _sizes(image: Sequence[Any] | None, n: int, default: int = 840) -> list[tuple[int, int]]:
    if image is None:
        return [(default, default)] * n
    out = []
    for im in image:
        if hasattr(im, "size") and not isinstance(im, np.ndarray):
            out.append(tuple(im.size))  # PIL: (W, H)
        else:
            a = _pil_or_array_to_array(im)
            out.append((a.shape[1], a.shape[0]))
    return out


class JsonFormatReward(_ParsingReward):
    """1.0 when the answer is a list of valid instance objects for the style (``[]`` included, see below)."""

    __name__ = "json_format"

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        empty_json_ok_on_target: bool = False,
        parser: BatchParser | None = None,
    ) -> None:
        super().__init__(style, parser)
        self.empty_json_ok_on_target = empty_json_ok_on_target

    def __call__(
        self,
        completions: Sequence[Any],
        image: Sequence[Any] | None = None,
        gt_mask: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        sizes = _sizes(image, len(completions))
        parsed = self._parse(completions, sizes)
        out: list[float | None] = []
        for k, r in enumerate(parsed):
            ok = r.json_ok
            if ok and r.is_empty and not self.empty_json_ok_on_target and gt_mask is not None:
                ok = not load_gt_mask(gt_mask[k], sizes[k]).any()
            out.append(1.0 if ok else 0.0)
        return out


class MaskIoUReward(_ParsingReward):
    """IoU in [0, 1] of the segmenter's union mask with ``gt_mask``; the empty-target rule as released."""

    __name__ = "mask_iou"

    def __init__(
        self, segmenter: Any = "grabcut", style: str | PromptStyle = DEFAULT_STYLE, parser: BatchParser | None = None
    ) -> None:
        super().__init__(style, parser)
        self._segmenter = segmenter
        self.last_ious: list[float] = []

    @property
    def segmenter(self) -> Any:
        """Built lazily, once per process, on that process's device."""
        if isinstance(self._segmenter, str):
            from think2seg.segmenters import build_segmenter

            self._segmenter = build_segmenter(self._segmenter)
        return self._segmenter

    def __call__(
        self,
        completions: Sequence[Any],
        image: Sequence[Any] | None = None,
        gt_mask: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if image is None or gt_mask is None:
            raise ValueError("MaskIoUReward needs the dataset columns 'image' and 'gt_mask'")
        n = len(completions)
        sizes = _sizes(image, n)
        parsed = self._parse(completions, sizes)
        rewards: list[float | None] = [0.0] * n
        # group the completions that share an image (content-equal), keep order inside groups
        groups: dict[Any, list[int]] = {}
        arrays: dict[Any, np.ndarray] = {}
        for k in range(n):
            arr = _pil_or_array_to_array(image[k])
            key = (arr.shape, hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).digest())
            groups.setdefault(key, []).append(k)
            arrays.setdefault(key, arr)
        for key, idx in groups.items():
            arr = arrays[key]
            gts = {k: load_gt_mask(gt_mask[k], sizes[k]) for k in idx}
            todo = [k for k in idx if gts[k].any() and parsed[k].instances]
            for k in idx:
                if not gts[k].any():  # empty target: reward rejection only
                    rewards[k] = 1.0 if parsed[k].is_empty else 0.0
            if not todo:
                continue
            masks = self.segmenter.segment(arr, [parsed[k].instances for k in todo])
            for k, m in zip(todo, masks, strict=False):
                inter = np.count_nonzero(m & gts[k])
                union = np.count_nonzero(m | gts[k])
                rewards[k] = inter / union if union else 0.0
        self.last_ious = [float(r) for r in rewards if r is not None]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and self.last_ious:  # the IoU distribution, next to trl's mean/std
            q = np.quantile(self.last_ious, [0.1, 0.5, 0.9])
            log_metric("iou/p10", float(q[0]))
            log_metric("iou/median", float(q[1]))
            log_metric("iou/p90", float(q[2]))
            log_metric("iou/frac_ge_0.5", float(np.mean(np.asarray(self.last_ious) >= 0.5)))
            log_metric("iou/parse_fail_frac", float(np.mean([not p.usable for p in parsed])))
        return rewards


def think2seg_rewards(
    segmenter: Any = "grabcut",
    style: str | PromptStyle = DEFAULT_STYLE,
    empty_json_ok_on_target: bool = False,
) -> list[Any]:
    """The paper's reward as trl reward functions, to be weighted by :data:`REWARD_WEIGHTS`; the JSON-format
    and IoU terms share one :class:`BatchParser`, so each completion is parsed once per batch."""
    parser = BatchParser(style)
    return [
        think_format_reward,
        JsonFormatReward(style, empty_json_ok_on_target=empty_json_ok_on_target, parser=parser),
        MaskIoUReward(segmenter, style, parser=parser),
    ]
