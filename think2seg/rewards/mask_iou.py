"""The mask term of the released reward: IoU of the segmenter's mask with the ground truth.

>>> iou = MaskIoUReward(segmenter="grabcut", policy="released-train")          # doctest: +SKIP
>>> iou(completions, image=images, gt_mask=masks)                                # doctest: +SKIP
[0.83, 0.0, ...]

The union mask over the answer's instances is compared with ``gt_mask`` in the image's space (the image
as the model saw it), giving a value in [0, 1]; on an empty ground truth the reward is 1 for the answer
``[]`` and 0 otherwise; on a non-empty ground truth ``[]`` or an unusable answer gives 0. What counts as
``[]`` or usable is the parse policy's (``docs/parse_policies.md``).

Segmentation is done per image, once per group: completions that share an image (trl puts the G
generations of a prompt side by side) are segmented with one ``set_image`` and one batched ``predict``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from think2seg.core.styles import DEFAULT_STYLE, PromptStyle
from think2seg.rewards.columns import BatchParser, ParsingReward, image_array, image_sizes, load_gt_mask
from think2seg.segmenters import DEFAULT_SEGMENTER, resolve_segmenter


class MaskIoUReward(ParsingReward):
    """IoU in [0, 1] of the segmenter's union mask with ``gt_mask``; the empty-target rule as released."""

    __name__ = "mask_iou"

    def __init__(
        self,
        segmenter: Any = DEFAULT_SEGMENTER,
        style: str | PromptStyle = DEFAULT_STYLE,
        parser: BatchParser | None = None,
        policy: str | None = None,
    ) -> None:
        super().__init__(style, parser, policy)
        self._segmenter = segmenter
        self.last_ious: list[float] = []

    @property
    def segmenter(self) -> Any:
        """Built lazily, once per process, on that process's device."""
        self._segmenter = resolve_segmenter(self._segmenter)
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
        sizes = image_sizes(image, n)
        parsed = self._parse(completions, sizes)
        rewards: list[float | None] = [0.0] * n
        # group the completions that share an image (content-equal), keep order inside groups
        groups: dict[Any, list[int]] = {}
        arrays: dict[Any, np.ndarray] = {}
        for k in range(n):
            arr = image_array(image[k])
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
