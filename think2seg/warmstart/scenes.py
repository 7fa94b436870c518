"""Warm-start data: streams of fresh procedural SynthEarth scenes (rendered on the fly, so memory does not
grow with their number) and the dataset's val split at model size.

    >>> from think2seg.warmstart.scenes import scene_examples
    >>> ex = next(scene_examples(cfg))          # a Prepared: sample, model-size image and mask, SFT target  # doctest: +SKIP
    >>> ex.image.shape, ex.target[:29]  # doctest: +SKIP
    ((112, 112, 3), '<think>The request refers to ')

Scene ``i`` of a stream is rendered from the seed ``[cfg.seed, stream, i]``: any slice of a stream can be
re-rendered anywhere (the SFT dataset, the LLM warm-up and the whitening each draw their own stream).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.geometry import resize_image, resize_mask
from think2seg.core.styles import instruction_text
from think2seg.core.types import Sample
from think2seg.data import load_dataset, synth
from think2seg.data.questions import EXPLICIT, IMPLICIT
from think2seg.data.scenes import CATEGORIES, CATEGORY_KEYS, render_scene
from think2seg.warmstart.config import WarmstartConfig
from think2seg.warmstart.targets import category_name, category_of, target_text

SFT_STREAM = 104729  # seed streams (any fixed, distinct numbers)
LM_WARMUP_STREAM = 15485863
WHITEN_STREAM = 32452843
VISION_STREAM = 7919
GEOMETRY_STREAM = 1299709


@dataclass
class Prepared:
    sample: Sample
    image: np.ndarray  # (S, S, 3) uint8 RGB at the model input size
    mask: np.ndarray  # (S, S) bool, same space
    target: str  # the SFT completion
    present: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # category -> union box, same space


def union_boxes(present: dict[str, Sequence[Sequence[float]]], scale: float) -> dict[str, tuple[int, int, int, int]]:
    """``{category: inclusive pixel boxes}`` -> ``{category: the boxes' extent x scale}`` (empty lists dropped)."""
    out = {}
    for c, boxes in present.items():
        if len(boxes):
            b = np.asarray(boxes, float) * scale
            out[str(c)] = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
    return out


def ensure_data(cfg: WarmstartConfig) -> str:
    """``cfg.data`` or SynthEarth generated once (``think2seg.data.synth.ensure_default``)."""
    if cfg.data:
        return cfg.data

    return str(synth.ensure_default(format="earthreason", n_train=cfg.n_train, n_val=cfg.n_val, n_test=0,
                                    seed=cfg.seed, size=cfg.data_size))


def load_split(data: str, split: str, kind: str | None) -> list[Sample]:
    return list(load_dataset(data, split, questions="all", question_kind=kind))


def prepare(samples: Sequence[Sample], size: int) -> list[Prepared]:
    """Dataset samples at the model size ``size`` with their SFT targets and, from ``extra["present"]``
    (SynthEarth), every category's union box (for evaluation)."""

    out = []
    for s in samples:
        m, im = s.load_mask(), s.load_image()
        present = union_boxes(s.extra.get("present") or {}, size / im.shape[1])
        m = resize_mask(m, size)
        out.append(Prepared(s, resize_image(im, size), m, target_text(category_of(s), m), present))
    return out


def scene_examples(cfg: WarmstartConfig, *, stream: int = SFT_STREAM, start: int = 0,
                   count: int | None = None) -> Iterator[Prepared]:
    """SFT examples of scenes ``start .. start+count`` (default ``cfg.sft_scenes``) of ``stream``.

    Per scene ``cfg.sft_per_scene`` questions: a target category drawn uniformly, then other present
    ones; with probability ``cfg.empty_fraction`` the last asks for an absent category (empty target).
    ``cfg.sft_blind_fraction`` of the questions are made CATEGORY-BLIND: an implicit question about an
    independently drawn category (``extra["kind"] = "blind"``), so only the ``<think>`` of the target
    names what the answer grounds. Of the others, ``cfg.sft_implicit_fraction`` are implicit questions
    about the target category itself (``"implicit"``: the language knowledge of a pretrained LVLM), the
    rest explicit. The answers follow ``cfg.geometry`` (its jitter drawn from a stream of its own, so
    the scenes and questions do not depend on it)."""

    n = cfg.sft_scenes if count is None else count
    for i in range(start, start + n):
        rng = np.random.default_rng([cfg.seed, stream, i])
        geo_rng = np.random.default_rng([cfg.seed, stream, i, GEOMETRY_STREAM])
        target = CATEGORY_KEYS[int(rng.integers(len(CATEGORY_KEYS)))]
        sc = render_scene(rng, cfg.data_size, target=target)
        image = resize_image(sc.image, cfg.image_size)
        present = union_boxes({c: sc.boxes(c) for c in sc.categories}, cfg.image_size / cfg.data_size)
        others = [c for c in sc.categories if c != target]
        cats = [target] + [others[j] for j in rng.permutation(len(others))[: cfg.sft_per_scene - 1]]
        if rng.random() < cfg.empty_fraction:
            absent = [c for c in CATEGORY_KEYS if c not in sc.categories]
            cats[-1] = absent[int(rng.integers(len(absent)))]
        for c in cats:
            cat = CATEGORIES[c]
            question = EXPLICIT[int(rng.integers(len(EXPLICIT)))].format(singular=cat.singular, plural=cat.plural)
            kind = "explicit"
            if cfg.sft_blind_fraction > 0 and rng.random() < cfg.sft_blind_fraction:
                other = CATEGORY_KEYS[int(rng.integers(len(CATEGORY_KEYS)))]  # independent of the target c
                question, kind = IMPLICIT[other][int(rng.integers(len(IMPLICIT[other])))], "blind"
            elif cfg.sft_implicit_fraction > 0 and rng.random() < cfg.sft_implicit_fraction:
                question, kind = IMPLICIT[c][int(rng.integers(len(IMPLICIT[c])))], "implicit"
            mask = resize_mask(sc.mask(c), cfg.image_size)
            sample = Sample(id=f"scene{stream}-{i}-{c}", image_id=f"scene{stream}-{i}", question=question,
                            image_path=Path(""), dataset="synthearth-scenes", split="warmstart",
                            gt_empty=not mask.any(), extra={"category": c, "kind": kind})
            yield Prepared(sample, image, mask, target_text(category_name(c), mask, cfg.geometry, geo_rng), present)


def tokenizer_texts(cfg: WarmstartConfig, n_scenes: int = 300) -> list[str]:
    """Text the BPE is trained on: every explicit template for every category, every implicit question,
    the instruction text and the targets of the first ``n_scenes`` SFT scenes."""

    texts = [t.format(singular=c.singular, plural=c.plural) for t in EXPLICIT for c in CATEGORIES.values()]
    texts += [q for qs in IMPLICIT.values() for q in qs]
    texts += [instruction_text(q, cfg.style, cfg.template) for q in texts[:: max(1, len(texts) // 200)]]
    texts += [p.target for p in scene_examples(cfg, count=n_scenes)]
    return texts


def render_warmup_scenes(n: int, data_size: int, size: int, seed: int) -> list[dict[str, Any]]:
    """``n`` procedural scenes as ``{"image": (S, S, 3) uint8, "masks": {category: (S, S) bool}}`` at the
    model size ``size`` (every present category's mask known)."""

    out = []
    for i in range(n):
        sc = render_scene(np.random.default_rng([seed, VISION_STREAM, i]), data_size)
        out.append({"image": resize_image(sc.image, size),
                    "masks": {str(c): resize_mask(sc.mask(str(c)), size) for c in sc.categories}})
    return out
