"""Scoring one completion: parse it under the protocol's policy, segment its prompts, compare with the mask.

    >>> from think2seg.evaluation.scoring import score_completions
    >>> recs = score_completions([text], [image], [mask], segmenter="grabcut", protocol="authors")  # doctest: +SKIP

:func:`score_text` is the core (shapes and coordinate spaces in its docstring); :func:`score_sample` scores a
dataset sample for the evaluation engine and ``think2seg score``; :func:`score_completions` scores
completions produced elsewhere against images and masks given in memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from think2seg.core.geometry import resize_image, resize_mask, scale_prompts
from think2seg.core.io import DataError
from think2seg.core.metrics import DEFAULT_PROTOCOL, get_protocol, mask_stats, sample_iou, summarize
from think2seg.core.parsing import parse_completion
from think2seg.core.prompt_geometry import prompt_geometry
from think2seg.core.records import encode_rle
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.segmenters import DEFAULT_SEGMENTER, resolve_segmenter


def score_space(image: np.ndarray, model_size: tuple[int, int], resolution: str) -> tuple[int, int]:
    """(W, H) at which masks are compared."""
    h, w = image.shape[:2]
    if resolution == "model":
        return model_size
    if resolution == "native":
        return (w, h)
    if resolution == "long1024":
        s = 1024 / max(h, w)
        return (max(1, round(w * s)), max(1, round(h * s)))
    raise ValueError(f"unknown resolution {resolution!r}")


def score_text(
    text: str,
    image: np.ndarray,
    gt: np.ndarray,
    *,
    model_size: tuple[int, int],
    protocol: Any,
    segmenter: Any,
    style: str,
    segment_native: bool = False,
) -> dict[str, Any]:
    """Parse one completion (model-space coordinates), segment ``image`` ((H, W, 3) uint8, any size) in the
    protocol's scoring space and compare with ``gt`` ((H, W) bool, same size as ``image``): the record
    fields of the answer and of the masks, ``pred`` (the predicted mask, in the scoring space) included,
    and the prompts' fit to ``gt`` in model space (:func:`think2seg.core.prompt_geometry.prompt_geometry`).
    ``segment_native``: segment at ``image``'s own size when the scoring space is larger (mask resized)."""
    protocol = get_protocol(protocol)
    parsed = parse_completion(text, style, model_size, policy=protocol.parse_policy)
    space = score_space(image, model_size, protocol.resolution)
    gt_s = resize_mask(gt, space)
    t0 = time.perf_counter()
    seg_space = space
    if segment_native and space[0] * space[1] > image.shape[0] * image.shape[1]:
        seg_space = (image.shape[1], image.shape[0])  # upsampling adds no detail; the mask is resized
    if parsed.instances:
        img_s = resize_image(image, seg_space)
        # prompts are kept as written when segmenting in model space (the released code hands them to SAM so)
        prompts = (parsed.instances if tuple(seg_space) == tuple(model_size)
                   else scale_prompts(parsed.instances, model_size, seg_space))
        pred = resize_mask(segmenter.segment(img_s, [prompts])[0], space)
    else:
        pred = np.zeros_like(gt_s)
    seg_s = time.perf_counter() - t0
    inter, union = mask_stats(pred, gt_s)
    rec: dict[str, Any] = {
        **parsed.to_record(),
        "format_ok": parsed.format_ok,
        "intersection": inter,
        "union": union,
        "gt_empty": not gt_s.any(),
        "pred_empty": not pred.any(),
        "produced": bool(parsed.instances),
        "model_size": list(model_size),  # the space of "instances"
        **prompt_geometry(parsed.instances, resize_mask(gt, model_size)),  # box_iou, points_on_target
        "score_size": list(space),  # the space of intersection / union / pred_rle
        "seg_s": round(seg_s, 4),
    }
    rec["iou"] = sample_iou(rec, protocol)
    rec["pred"] = pred
    return rec


def score_sample(
    sample: Any, text: str, cfg: Any, model_size: tuple[int, int], protocol: Any, segmenter: Any
) -> dict[str, Any]:
    """The evaluation record of one sample's completion (``cfg``: the run's ``EvalConfig``; it gives the
    style, ``keep_masks`` and ``segment_native``)."""
    image, gt = sample.load_image(), sample.load_mask()
    if gt.shape != image.shape[:2]:
        raise DataError(
            f"{sample.mask_path or sample.id}: mask {gt.shape} does not match image {image.shape[:2]}"
        )
    scored = score_text(
        text, image, gt, model_size=model_size, protocol=protocol, segmenter=segmenter, style=cfg.style,
        segment_native=cfg.segment_native,
    )
    pred = scored.pop("pred")
    rec: dict[str, Any] = {
        "id": sample.id,
        "image_id": sample.image_id,
        "question": sample.question,
        "image_path": str(sample.image_path),
        "mask_path": str(sample.mask_path) if sample.mask_path else None,
        "completion": text,
        **scored,
        "extra": {
            k: v for k, v in sample.extra.items() if isinstance(v, (str, int, float, bool, type(None)))
        },
    }
    if cfg.keep_masks:
        rec["pred_rle"] = encode_rle(pred)
    return rec


def score_completions(
    completions: Sequence[str],
    images: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    *,
    segmenter: Any = DEFAULT_SEGMENTER,
    style: str = DEFAULT_STYLE,
    protocol: Any = DEFAULT_PROTOCOL,
    thresholds: Sequence[float] = (0.5,),
) -> dict[str, Any]:
    """Metrics of completions produced elsewhere, as :func:`think2seg.core.metrics.summarize` returns them.

    >>> score_completions([text], [image], [mask], segmenter="grabcut", protocol="authors")   # doctest: +SKIP
    {'gIoU': 0.71, 'cIoU': 0.74, 'P@0.5': 0.8, ...}

    ``images``: (H, W, 3) uint8 in model space (the image the model saw, so the completions' coordinates
    refer to it); ``gt_masks``: (H, W) bool of the same size. Masks are compared at that size, whatever
    the protocol's ``resolution`` (scoring at native size needs the native images: ``think2seg score``).
    ``segmenter``: a spec name (``grabcut``, ``sam2:small``...) or an object with ``segment(image,
    prompt_sets)``. The parse policy is the protocol's."""
    n = len(completions)
    if not (len(images) == len(gt_masks) == n):
        raise ValueError(f"score_completions: {n} completions, {len(images)} images, {len(gt_masks)} masks")
    segmenter = resolve_segmenter(segmenter)
    protocol = get_protocol(protocol)
    model_protocol = replace(protocol, resolution="model")
    records = []
    for k, (text, image, gt) in enumerate(zip(completions, images, gt_masks, strict=True)):
        image, gt = np.asarray(image), np.asarray(gt, dtype=bool)
        if image.ndim != 3 or gt.shape != image.shape[:2]:
            raise ValueError(f"score_completions: item {k} has image {image.shape} and mask {gt.shape}")
        size = (image.shape[1], image.shape[0])
        rec = score_text(
            text, image, gt, model_size=size, protocol=model_protocol, segmenter=segmenter, style=style
        )
        rec.pop("pred")
        records.append(rec)
    return summarize(records, model_protocol, thresholds=thresholds)
