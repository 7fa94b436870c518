"""Peer reward schemes (the "decoupled" rows of Table 1) with trl's reward contract.

>>> scheme = PEERS["visionreasoner"]("bbox+2pos")                 # doctest: +SKIP
>>> GRPOTrainer(..., reward_funcs=scheme.reward_funcs(),  # doctest: +SKIP
...             args=GRPOConfig(reward_weights=scheme.reward_weights, ...))

Think2Seg-RS trains on a MASK-ONLY reward (:mod:`think2seg.rewards.mask_iou`). Its peers reward the predicted
prompts against PSEUDO box/point ground truth derived from the mask, which is what this module builds.
Every function follows ``f(completions, image=..., gt_mask=..., **columns) -> list[float]`` (the columns and
coordinate spaces of :mod:`think2seg.rewards.columns`: ``image`` as the model saw it, ``gt_mask`` an array, a path
or a COCO RLE, resized to the image); each term is its own function with its own ``__name__`` so trl logs
it separately, and the scheme's weights come with it. All terms score the instances the project parser
(:func:`think2seg.core.parsing.parse_completion`, style ``bbox+2pos`` by default) returns, in model pixels.

Schemes: ``segzero`` (one tight box around the whole mask plus two interior points), ``visionreasoner``
(DBSCAN sub-instances, Hungarian matching, ``non_repeat``) and ``remotereasoner`` (one box a component,
a count term). What each term tests, the rules they share (empty targets, the per-mask pseudo ground
truth cache, one parse per completion and batch) and the deliberate deviations from the released peer
code are in ``docs/reward_schemes.md``.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from think2seg.core.geometry import box_iou
from think2seg.core.parsing import ParseResult, parse_completion
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle, get_style
from think2seg.core.types import Box, Instance, Point
from think2seg.rewards.columns import completion_text, image_sizes, load_gt_mask
from think2seg.rewards.format import JsonFormatReward, think_format_reward
from think2seg.rewards.pseudo_gt import component_boxes, dbscan_instances, segzero_pseudo_gt

BOX_IOU_THR = 0.5  # all three peers
BOX_L1_THR = 10.0  # Seg-Zero, VisionReasoner: mean |Δ| over the 4 coordinates, pixels
SEGZERO_POINT_THR = 100.0  # released seg_point_l1_reward (see deviation 4)
VISIONREASONER_POINT_THR = 30.0  # released vision_reasoner_accuracy_reward

# ---------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------


def box_l1(a: Box, b: Box) -> float:
    """Mean absolute difference of the four coordinates (pixels), as the released ``l1_distance``."""
    return sum(abs(float(u) - float(v)) for u, v in zip(a, b, strict=True)) / 4.0


def _iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(M, N) inclusive-pixel IoU of (M, 4) and (N, 4) boxes (same convention as ``box_iou``)."""
    ix = np.minimum(pred[:, None, 2], gt[None, :, 2]) - np.maximum(pred[:, None, 0], gt[None, :, 0]) + 1
    iy = np.minimum(pred[:, None, 3], gt[None, :, 3]) - np.maximum(pred[:, None, 1], gt[None, :, 1]) + 1
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area(pred)[:, None] + area(gt)[None, :] - inter)


def _in_box(p: Point, b: Box) -> bool:
    return b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]


def matched_point_distance(pred: Sequence[Point], gt: Sequence[Point]) -> float:
    """Mean distance over the optimal pairing of ``min(len(pred), len(gt))`` points (inf if either empty).

    For two and two points this is Seg-Zero's ``min(d(p1,g1) + d(p2,g2), d(p1,g2) + d(p2,g1)) / 2``.
    """
    from scipy.optimize import linear_sum_assignment

    if not pred or not gt:
        return math.inf
    p, g = np.asarray(pred, float), np.asarray(gt, float)
    d = np.hypot(p[:, None, 0] - g[None, :, 0], p[:, None, 1] - g[None, :, 1])
    r, c = linear_sum_assignment(d)
    return float(d[r, c].mean())


def non_repeat_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """VisionReasoner's non-repeat reward: 0 once two sentences (text split on ".") repeat earlier ones, else 1.

    As released: over the whole completion, one repeated sentence tolerated, blanks ignored.
    """
    out: list[float | None] = []
    for c in completions:
        seen: set[str] = set()
        repeats = 0
        for sentence in (s.strip() for s in completion_text(c).split(".")):
            if not sentence:
                continue
            if sentence in seen:
                repeats += 1
                if repeats >= 2:
                    break
            seen.add(sentence)
        out.append(0.0 if repeats >= 2 else 1.0)
    return out


non_repeat_reward.__name__ = "non_repeat"


# ---------------------------------------------------------------------------------------------------
# Shared machinery: pseudo-GT cache, batch scoring, one trl callable per term
# ---------------------------------------------------------------------------------------------------


def _mask_key(value: Any, size: tuple[int, int]) -> tuple[Any, ...]:
    """Cache key of a ``gt_mask`` value at a target ``size=(W, H)``: path, RLE counts or content hash."""
    if isinstance(value, str) or hasattr(value, "__fspath__"):
        return ("path", str(value), size)
    if isinstance(value, dict) and "counts" in value:
        counts = value["counts"]
        counts = counts.decode() if isinstance(counts, bytes) else str(counts)
        return ("rle", counts, tuple(value.get("size", ())), size)
    arr = np.asarray(value)
    bits = np.packbits(np.ascontiguousarray(arr.astype(bool, copy=False)))
    return ("array", arr.shape, hashlib.blake2b(bits.tobytes(), digest_size=16).digest(), size)


class PeerTerm:
    """One accuracy term of a peer scheme as a trl reward function (named ``<scheme>_<term>``)."""

    def __init__(self, scheme: PeerScheme, term: str) -> None:
        self.scheme = scheme
        self.term = term
        self.__name__ = f"{scheme.name}_{term}"

    def __call__(
        self,
        completions: Sequence[Any],
        image: Sequence[Any] | None = None,
        gt_mask: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        return [s[self.term] for s in self.scheme.scores(completions, image=image, gt_mask=gt_mask)]

    def __repr__(self) -> str:
        return f"PeerTerm({self.__name__})"


class PeerScheme:
    """Base of the peer schemes: pseudo ground truth once per mask, per-completion accuracy terms.

    Subclasses set ``name`` and ``terms`` and implement :meth:`derive` (mask -> pseudo ground truth, the
    mask being non-empty) and :meth:`score` (parsed answer with instances, pseudo GT -> term values).
    ``derive_calls`` counts derivations (cache misses).
    """

    name = "peer"
    terms: tuple[str, ...] = ()
    dedup_iou = 1.0  # > any IoU: the parser keeps duplicate boxes, which then count as extra instances

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        *,
        empty_json_ok_on_target: bool = False,
        cache_size: int = 256,
    ) -> None:
        self.style = get_style(style)
        self.empty_json_ok_on_target = empty_json_ok_on_target
        self.cache_size = cache_size
        self.derive_calls = 0
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._last: tuple[Any, list[dict[str, float]]] | None = None

    # -- to implement ------------------------------------------------------------------------------
    def derive(self, mask: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, parsed: ParseResult, pseudo: Any) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- machinery ---------------------------------------------------------------------------------
    def pseudo_gt(self, value: Any, size: tuple[int, int], key: tuple[Any, ...] | None = None) -> Any:
        """Pseudo ground truth of a ``gt_mask`` value at ``size=(W, H)``; None for an empty mask. Cached."""
        key = key if key is not None else _mask_key(value, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        mask = load_gt_mask(value, size)
        pseudo = self.derive(mask) if mask.any() else None
        self.derive_calls += 1
        self._cache[key] = pseudo
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return pseudo

    def scores(
        self, completions: Sequence[Any], image: Sequence[Any] | None = None, gt_mask: Any = None
    ) -> list[dict[str, float]]:
        """Every term for every completion (memoised for the last batch)."""
        if gt_mask is None:
            raise ValueError(f"the {self.name} rewards need the dataset column 'gt_mask' (and 'image')")
        n = len(completions)
        texts = [completion_text(c) for c in completions]
        sizes = image_sizes(image, n)
        keys = [_mask_key(gt_mask[k], sizes[k]) for k in range(n)]
        memo_key = (tuple(texts), tuple(sizes), tuple(keys))
        if self._last is not None and self._last[0] == memo_key:
            return self._last[1]
        out: list[dict[str, float]] = []
        for k in range(n):
            pseudo = self.pseudo_gt(gt_mask[k], sizes[k], keys[k])
            parsed = parse_completion(texts[k], self.style, sizes[k], dedup_iou=self.dedup_iou)
            if pseudo is None:  # empty target: only the rejection answer "[]" scores
                v = 1.0 if parsed.is_empty else 0.0
                out.append(dict.fromkeys(self.terms, v))
            elif not parsed.instances:  # "[]" or nothing usable on a present target
                out.append(dict.fromkeys(self.terms, 0.0))
            else:
                out.append({t: float(v) for t, v in self.score(parsed, pseudo).items()})
        self._last = (memo_key, out)
        return out

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        """trl ``reward_funcs``: the two format terms, then one function per accuracy term."""
        return [
            think_format_reward,
            JsonFormatReward(self.style, empty_json_ok_on_target=self.empty_json_ok_on_target),
            *(PeerTerm(self, t) for t in self.terms),
        ]

    @property
    def reward_weights(self) -> list[float]:
        """Matching trl ``reward_weights`` (1 each: the peers sum their terms unweighted)."""
        return [1.0] * (2 + len(self.terms))

    def _need(self, box: bool, points: bool) -> None:
        if (box and not self.style.box) or (points and self.style.n_pos < 1):
            need = "a box and positive points" if points else "a box"
            raise ValueError(
                f"the {self.name} reward needs a prompt style with {need}, not {self.style.name!r}"
            )


class SegZeroScheme(PeerScheme):
    """Seg-Zero: one pseudo box + two points for the whole mask; 0/1 box IoU, box L1 and point terms."""

    name = "segzero"
    terms = ("box_iou", "box_l1", "points")
    dedup_iou = 0.5  # only the best-matching instance is scored: duplicates are irrelevant

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        *,
        point_thr: float = SEGZERO_POINT_THR,
        box_iou_thr: float = BOX_IOU_THR,
        box_l1_thr: float = BOX_L1_THR,
        **kwargs: Any,
    ) -> None:
        super().__init__(style, **kwargs)
        self._need(box=True, points=True)
        self.point_thr, self.box_iou_thr, self.box_l1_thr = point_thr, box_iou_thr, box_l1_thr

    def derive(self, mask: np.ndarray) -> Instance | None:
        return segzero_pseudo_gt(mask)

    def score(self, parsed: ParseResult, pseudo: Instance) -> dict[str, float]:
        gt_box = pseudo.box
        assert gt_box is not None
        best = max(
            (i for i in parsed.instances if i.box is not None),
            key=lambda i: (box_iou(i.box, gt_box), -box_l1(i.box, gt_box)),
        )
        pts_ok = all(_in_box(p, best.box) for p in best.positive) and (
            matched_point_distance(best.positive, pseudo.positive) < self.point_thr
        )
        return {
            "box_iou": box_iou(best.box, gt_box) > self.box_iou_thr,
            "box_l1": box_l1(best.box, gt_box) < self.box_l1_thr,
            "points": pts_ok,
        }


class VisionReasonerScheme(PeerScheme):
    """VisionReasoner: DBSCAN sub-instances, Hungarian matching, per-term matched fractions + non-repeat."""

    name = "visionreasoner"
    terms = ("box_iou", "box_l1", "points")

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        *,
        point_thr: float = VISIONREASONER_POINT_THR,
        box_iou_thr: float = BOX_IOU_THR,
        box_l1_thr: float = BOX_L1_THR,
        eps_frac: float = 0.02,
        min_samples: int = 4,
        grid: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(style, **kwargs)
        self._need(box=True, points=True)
        self.point_thr, self.box_iou_thr, self.box_l1_thr = point_thr, box_iou_thr, box_l1_thr
        self.eps_frac, self.min_samples, self.grid = eps_frac, min_samples, grid

    def derive(self, mask: np.ndarray) -> list[Instance]:
        return dbscan_instances(mask, eps_frac=self.eps_frac, min_samples=self.min_samples, grid=self.grid)

    def score(self, parsed: ParseResult, pseudo: list[Instance]) -> dict[str, float]:
        from scipy.optimize import linear_sum_assignment

        preds = [i for i in parsed.instances if i.box is not None]
        pb = np.asarray([i.box for i in preds], float)
        gb = np.asarray([g.box for g in pseudo], float)
        gp = np.asarray([g.positive[0] for g in pseudo], float)  # (N, 2)
        iou = _iou_matrix(pb, gb)
        l1 = np.abs(pb[:, None, :] - gb[None, :, :]).mean(axis=2)
        pt = np.zeros_like(iou, dtype=bool)
        for m, inst in enumerate(preds):
            inside = [p for p in inst.positive if _in_box(p, inst.box)]
            if inside:
                q = np.asarray(inside, float)
                d = np.hypot(q[:, None, 0] - gp[None, :, 0], q[:, None, 1] - gp[None, :, 1])
                pt[m] = (d < self.point_thr).any(axis=0)
        r_iou, r_l1 = iou > self.box_iou_thr, l1 < self.box_l1_thr
        # released cost (integers 0..3); the IoU tie-break is < 1 in total, so it never changes the optimum
        cost = 3.0 - (r_iou.astype(float) + r_l1 + pt) + 1e-3 / max(len(preds), len(pseudo)) * (1 - iou)
        rows, cols = linear_sum_assignment(cost)
        norm = max(len(preds), len(pseudo))
        return {
            "box_iou": r_iou[rows, cols].sum() / norm,
            "box_l1": r_l1[rows, cols].sum() / norm,
            "points": pt[rows, cols].sum() / norm,
        }

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        return [*super().reward_funcs(), non_repeat_reward]

    @property
    def reward_weights(self) -> list[float]:
        return [1.0] * (3 + len(self.terms))


class RemoteReasonerScheme(PeerScheme):
    """RemoteReasoner: component boxes, Hungarian box IoU + instance-count match."""

    name = "remotereasoner"
    terms = ("box_iou", "count")

    def __init__(
        self, style: str | PromptStyle = DEFAULT_STYLE, *, min_area: int = 32, **kwargs: Any
    ) -> None:
        super().__init__(style, **kwargs)
        self._need(box=True, points=False)
        self.min_area = min_area

    def derive(self, mask: np.ndarray) -> list[Box]:
        return component_boxes(mask, self.min_area)

    def score(self, parsed: ParseResult, pseudo: list[Box]) -> dict[str, float]:
        from scipy.optimize import linear_sum_assignment

        pb = np.asarray([i.box for i in parsed.instances if i.box is not None], float)
        iou = _iou_matrix(pb, np.asarray(pseudo, float))
        rows, cols = linear_sum_assignment(-iou)
        m, n = len(pb), len(pseudo)
        return {"box_iou": iou[rows, cols].sum() / max(m, n), "count": min(m, n) / max(m, n)}


PEERS: dict[str, type[PeerScheme]] = {
    "segzero": SegZeroScheme,
    "visionreasoner": VisionReasonerScheme,
    "remotereasoner": RemoteReasonerScheme,
}
