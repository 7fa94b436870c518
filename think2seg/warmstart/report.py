"""Grounding report of a warm-start prompter: greedy completions -> parse -> GrabCut -> gIoU and box IoU,
under the controls that tell grounding from guessing.

    >>> evaluate(prompter, val)                           # explicit questions  # doctest: +SKIP
    >>> evaluate(prompter, val, shuffle_images=True)      # each question on another sample's image  # doctest: +SKIP
    >>> evaluate(prompter, implicit, forced_think="right")  # <think> prefilled with the asked category  # doctest: +SKIP
    >>> evaluate(prompter, implicit, forced_think="wrong")  # ... with another category of the same image  # doctest: +SKIP

The forced rows tell whether the boxes follow the model's own ``<think>`` (then GRPO can raise implicit
gIoU by learning question -> category) or only the words of the question. ``"wrong"`` needs samples whose
``present`` boxes (SynthEarth: :func:`think2seg.warmstart.scenes.prepare` reads them from the dataset).
Masks, boxes and coordinates are in the model input's pixel space.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from think2seg.core.geometry import box_iou
from think2seg.core.metrics import record, sample_iou, summarize
from think2seg.core.parsing import parse_completion
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.core.types import Sample
from think2seg.segmenters import build_segmenter
from think2seg.warmstart.scenes import Prepared
from think2seg.warmstart.targets import category_name, category_of, target_instances, think_prefill


class ImageSample:
    """A Sample stand-in whose (model-size) image is given — for the shuffled-image control."""

    def __init__(self, sample: Sample, image: np.ndarray):
        self._s, self._im = sample, image
        self.question = sample.question
        self.id = sample.id

    def load_image(self) -> np.ndarray:
        return self._im


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)`` with no fixed point (a shuffled cycle; identity for n < 2)."""
    perm = list(range(n))
    random.Random(seed).shuffle(perm)
    if n < 2:
        return perm
    return [perm[(perm.index(i) + 1) % n] for i in range(n)]


def wrong_categories(items: Sequence[Prepared], seed: int) -> list[tuple[str, tuple[int, int, int, int]] | None]:
    """Per sample, a seeded other category present in its image with that category's union box (model
    space), or ``None`` when the image holds no other category."""
    rng = random.Random(seed)
    out = []
    for p in items:
        others = sorted(c for c in p.present if c != p.sample.extra.get("category"))
        if not others:
            out.append(None)
            continue
        c = rng.choice(others)
        out.append((c, p.present[c]))
    return out


def evaluate(prompter, prepared: list[Prepared], *, shuffle_images: bool = False, seed: int = 0,
             segment: bool = True, forced_think: bool | str = False) -> dict:
    """Greedy completions on ``prepared`` -> format rate, box IoU (the target's union box -> best predicted
    box), gIoU of GrabCut masks, think-category accuracy. ``shuffle_images`` pairs every question with
    another sample's image (a derangement) while scoring against the original target. ``forced_think``:
    ``True``/``"right"`` starts each completion with the asked category (:func:`think_prefill`);
    ``"wrong"`` with another category present in the image, and adds ``on_forced_share`` (share of
    samples whose best box overlaps the forced category's union box more than the asked one's) and
    ``forced_box_iou``."""

    items = list(prepared)
    mode = "right" if forced_think is True else (forced_think or None)
    if mode not in (None, "right", "wrong"):
        raise ValueError(f"forced_think={forced_think!r}: one of False, True, 'right', 'wrong'")
    wrong = wrong_categories(items, seed) if mode == "wrong" else None
    if wrong is not None:
        keep = [k for k, w in enumerate(wrong) if w is not None]
        items, wrong = [items[k] for k in keep], [wrong[k] for k in keep]
        if not items:
            raise ValueError("forced_think='wrong' needs samples with other categories' boxes (Prepared.present, SynthEarth data)")
    imgs = [p.image for p in items]
    if shuffle_images:
        imgs = [items[j].image for j in derangement(len(items), seed)]
    prefill = None
    if mode == "right":
        prefill = [think_prefill(category_of(p.sample)) for p in items]
    elif mode == "wrong":
        prefill = [think_prefill(category_name(w[0])) for w in wrong]
    texts = [c[0] for c in prompter.generate([ImageSample(p.sample, im) for p, im in zip(items, imgs, strict=True)],
                                             n=1, prefill=prefill)]
    seg = build_segmenter("grabcut") if segment else None
    size = items[0].image.shape[0]
    fmt, bious, cat_ok, recs, on_forced, forced_iou = [], [], [], [], [], []
    for k, (p, im, t) in enumerate(zip(items, imgs, texts, strict=True)):
        r = parse_completion(t, style=DEFAULT_STYLE, image_size=size)
        fmt.append(r.format_ok)
        cat_ok.append(r.think is not None and category_of(p.sample) in r.think)
        boxes = [q.box for q in (r.instances if r.usable else []) if q.box is not None]
        gt = target_instances(p.mask)
        for g in gt:
            bious.append(max((box_iou(g.box, b) for b in boxes), default=0.0))
        if wrong is not None:
            own = gt[0].box if gt else None
            to_forced = max((box_iou(wrong[k][1], b) for b in boxes), default=0.0)
            to_own = max((box_iou(own, b) for b in boxes), default=0.0) if own else 0.0
            forced_iou.append(to_forced)
            on_forced.append(to_forced > to_own)
        if seg is not None:
            pm = seg.segment(im, [list(r.instances)])[0] if r.usable and r.instances else np.zeros_like(p.mask)
            recs.append(record(pm, p.mask, format_ok=r.format_ok))
    out = {
        "n": len(items),
        "format_ok": float(np.mean(fmt)),
        "giou": summarize(recs)["gIoU"] if recs else None,
        "box_iou": float(np.mean(bious)) if bious else None,
        "box_iou>0.5": float(np.mean(np.array(bious) > 0.5)) if bious else None,
        "think_category_acc": float(np.mean(cat_ok)),
        "examples": texts[:3],
    }
    if wrong is not None:
        out.update(on_forced_share=float(np.mean(on_forced)), forced_box_iou=float(np.mean(forced_iou)))
    return out


def evaluate_sampled(prompter, prepared: list[Prepared], n: int = 8, temperature: float = 1.0, seed: int = 0) -> dict:
    """GRPO headroom: ``n`` samples per question at ``temperature`` -> mean gIoU of a sample, best-of-n
    gIoU (an upper bound on what RL can select for) and how often some sample names the asked category
    in ``<think>`` (pass@n)."""

    seg = build_segmenter("grabcut")
    items = list(prepared)
    outs = prompter.generate([ImageSample(p.sample, p.image) for p in items], n=n, temperature=temperature,
                             seed=seed)
    size = items[0].image.shape[0]
    mean_g, best_g, cat_any, cat_frac = [], [], [], []
    for p, texts in zip(items, outs, strict=True):
        cat = category_of(p.sample)
        g, c = [], []
        for t in texts:
            r = parse_completion(t, style=DEFAULT_STYLE, image_size=size)
            ok = r.usable and bool(r.instances)
            pm = seg.segment(p.image, [list(r.instances)])[0] if ok else np.zeros_like(p.mask)
            g.append(sample_iou(record(pm, p.mask, answer_empty=not ok)) if r.usable else 0.0)
            c.append(r.think is not None and cat in r.think)
        mean_g.append(np.mean(g))
        best_g.append(np.max(g))
        cat_any.append(any(c))
        cat_frac.append(np.mean(c))
    return {"n": len(items), "samples": n, "temperature": temperature, "mean_giou": float(np.mean(mean_g)),
            f"best_of_{n}_giou": float(np.mean(best_g)), f"category_pass@{n}": float(np.mean(cat_any)),
            "category_sample_acc": float(np.mean(cat_frac))}
