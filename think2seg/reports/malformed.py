"""A seeded mix of malformed completions, and how much the parse policy changes their rewards and metrics.

>>> from think2seg.reports.malformed import malformed_mix, policy_effects
>>> cases = malformed_mix(1000, seed=0)            # [(completion, gt_mask, mutation), ...] at 128 px
>>> effects = policy_effects(cases)                 # doctest: +SKIP
>>> effects["changed"]["released-train"]            # share whose total reward differs from lenient  # doctest: +SKIP
0.46

Each case starts from a valid answer to a random target (one to three rectangles on a 128 x 128 mask,
one case in ten an empty target answered ``[]``): tight boxes jittered by a few pixels, two positive
points inside each. One mutation of :data:`MUTATIONS` is then applied (``none`` keeps it valid), the kinds
real LVLMs emit and the parse policies treat differently. :func:`policy_effects` scores every case under
each parse policy with the three reward terms (weights ``[1, 1, 2]``) and a box-filling segmenter (mask =
union of the boxes, the box region SAM mostly returns for a box prompt), and reports per policy the share
of cases whose total reward differs from ``lenient``'s, per mutation, and the gIoU of the mix under the
``authors`` protocol with each policy. ``think2seg bench parse`` prints it; ``docs/parse_policies.md``
has the numbers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from think2seg.core.metrics import DEFAULT_PROTOCOL, get_protocol
from think2seg.core.parsing import POLICIES
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.evaluation.scoring import score_completions
from think2seg.rewards import REWARD_WEIGHTS, think2seg_rewards
from think2seg.segmenters.boxfill import BoxFillSegmenter

SIZE = 128


def _valid(rng: random.Random) -> tuple[list[dict], np.ndarray]:
    if rng.random() < 0.1:
        return [], np.zeros((SIZE, SIZE), bool)
    mask = np.zeros((SIZE, SIZE), bool)
    objs = []
    for _ in range(rng.randint(1, 3)):
        w, h = rng.randint(8, 40), rng.randint(8, 40)
        x, y = rng.randint(0, SIZE - w), rng.randint(0, SIZE - h)
        mask[y : y + h, x : x + w] = True
        j = [rng.randint(-3, 3) for _ in range(4)]
        box = [
            max(0, x + j[0]),
            max(0, y + j[1]),
            min(SIZE - 1, x + w - 1 + j[2]),
            min(SIZE - 1, y + h - 1 + j[3]),
        ]
        pts = [[rng.randint(x + 1, x + w - 2), rng.randint(y + 1, y + h - 2)] for _ in range(2)]
        objs.append({"bbox_2d": box, "positive_points": pts})
    return objs, mask


def _wrap(answer: str, fence: bool = True, tags: bool = True) -> str:
    body = f"```json{answer}```" if fence else answer
    return (
        f"<think>The request refers to the marked objects.</think>\n<answer>{body}</answer>" if tags else body
    )


def _dump(objs: Any) -> str:
    return json.dumps(objs)


def _strings(objs: list[dict]) -> list[dict]:
    return [
        {k: [[str(c) for c in p] if isinstance(p, list) else str(p) for p in v] for k, v in o.items()}
        for o in objs
    ]


def _dup(objs: list[dict], rng: random.Random) -> list[dict]:
    o = objs[0]
    b = o["bbox_2d"]
    grown = [b[0], b[1], min(SIZE - 1, b[2] + rng.randint(1, 4)), min(SIZE - 1, b[3] + rng.randint(1, 4))]
    return [*objs, {"bbox_2d": grown, "positive_points": o["positive_points"]}]


# name -> (objs, rng) -> completion text; every one is something LVLMs have been seen to write
MUTATIONS: dict[str, Callable[[list[dict], random.Random], str]] = {
    "none": lambda o, r: _wrap(_dump(o)),
    "no_fence": lambda o, r: _wrap(_dump(o), fence=False),
    "uppercase_fence": lambda o, r: _wrap(_dump(o)).replace("```json", "```JSON"),
    "single_object": lambda o, r: _wrap(_dump(o[0] if o else {})),
    "negative_points": lambda o, r: _wrap(_dump([{**x, "negative_points": [[0, 0], [1, 1]]} for x in o])),
    "numbers_as_strings": lambda o, r: _wrap(_dump(_strings(o))),
    "stray_brackets": lambda o, r: _wrap(_dump(o) + "]]"),
    "trailing_comma": lambda o, r: _wrap(_dump(o)[:-1] + ",]" if o else "[]"),
    "partly_broken": lambda o, r: _wrap(_dump([*o, {"bbox_2d": [1, 2, 3]}])),
    "nms_duplicate": lambda o, r: _wrap(_dump(_dup(o, r) if o else o)),
    "no_positive_points": lambda o, r: _wrap(_dump([{"bbox_2d": x["bbox_2d"]} for x in o])),
    "one_point": lambda o, r: _wrap(_dump([{**x, "positive_points": x["positive_points"][:1]} for x in o])),
    "empty_on_target": lambda o, r: _wrap("[]"),
    "no_tags": lambda o, r: _wrap(_dump(o), tags=False),
    "cut_off": lambda o, r: (lambda t: t[: max(20, len(t) - r.randint(5, 40))])(_wrap(_dump(o))),
}


def malformed_mix(n: int = 1000, seed: int = 0) -> list[tuple[str, np.ndarray, str]]:
    """``n`` seeded ``(completion, gt_mask (128, 128) bool, mutation name)``, mutations drawn uniformly."""
    rng = random.Random(seed)
    names = list(MUTATIONS)
    out = []
    for _ in range(n):
        objs, mask = _valid(rng)
        name = rng.choice(names)
        out.append((MUTATIONS[name](objs, rng), mask, name))
    return out


def policy_effects(
    cases: Sequence[tuple[str, np.ndarray, str]], segmenter: Any = None, style: str = DEFAULT_STYLE
) -> dict[str, Any]:
    """Rewards and authors-protocol gIoU of ``cases`` under every parse policy (see the module doc)."""

    segmenter = segmenter or BoxFillSegmenter()
    texts, masks = [c[0] for c in cases], [c[1] for c in cases]
    kinds = [c[2] for c in cases]
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    totals: dict[str, np.ndarray] = {}
    for policy in POLICIES:
        funcs = think2seg_rewards(segmenter, style, policy=policy)
        terms = [f(texts, image=[image] * len(texts), gt_mask=masks) for f in funcs]
        totals[policy] = sum(w * np.asarray(t, float) for w, t in zip(REWARD_WEIGHTS, terms, strict=True))
    base = totals["lenient"]
    changed = {p: float(np.mean(~np.isclose(totals[p], base))) for p in POLICIES if p != "lenient"}
    by_kind = {
        k: {
            p: float(
                np.mean([not np.isclose(totals[p][i], base[i]) for i in range(len(cases)) if kinds[i] == k])
            )
            for p in changed
        }
        for k in MUTATIONS
        if k in kinds
    }
    giou = {}
    for policy in POLICIES:
        protocol = get_protocol(DEFAULT_PROTOCOL, parse_policy=policy)
        giou[policy] = score_completions(
            texts, [image] * len(texts), masks, segmenter=segmenter, style=style, protocol=protocol
        )["gIoU"]
    return {
        "n": len(cases),
        "changed": changed,
        "changed_by_mutation": by_kind,
        "mean_total": {p: float(totals[p].mean()) for p in POLICIES},
        "authors_gIoU": giou,
    }
