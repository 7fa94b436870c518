"""Segmentation metrics under explicit, named evaluation protocols.

>>> import numpy as np
>>> gt = np.zeros((4, 4), bool); gt[:2] = True
>>> pred = np.zeros((4, 4), bool); pred[:1] = True
>>> mask_stats(pred, gt)
(4, 8)
>>> recs = [record(pred, gt, format_ok=True), record(np.zeros((4, 4), bool), np.zeros((4, 4), bool),
...                                                    format_ok=True, answer_empty=True)]
>>> s = summarize(recs, protocol="authors"); round(s["gIoU"], 3), round(s["cIoU"], 3), s["empty_true"]
(0.75, 0.5, 1)

Published systems score differently, and the numbers move by points (docs/protocols.md). Every switch is a
field of :class:`Protocol` and is written into every result:

=================  =================================================================================
``empty_rule``     IoU of a sample whose GT is empty. ``answer``: 1 iff the model answered ``[]``, else 0
                   (Think2Seg-RS authors). ``mask``: 1 iff the predicted mask is empty too, i.e. IoU = 1
                   when the union is empty (SegEarth-R1). ``zero``: always 0 (Seg-Zero / VisionReasoner).
``ciou_empty_fp``  whether false-positive pixels on empty-GT samples enter cIoU's union (the authors':
                   no, so such false positives are invisible to cIoU).
``p_denominator``  P@X over ``all`` samples, or over ``produced`` ones only (the authors leave
                   unparseable and ``[]`` answers out).
``p_strict``       P@X counts ``iou > X`` (SegEarth-R1) instead of ``iou >= X``.
``resolution``     where masks are compared (applied by the evaluator, recorded here): ``model`` (the
                   840x840 squash), ``native``, or ``long1024`` (long side 1024, padded).
``parse_policy``   how answers are parsed (:mod:`think2seg.core.parsing`): ``released-test`` for ``authors``
                   (the released evaluation's parser), ``lenient`` (this project's) for the others.
``generation``     decoding of HF prompters: ``authors`` (the released evaluation's fresh greedy config,
                   repetition penalty 1.0, 2048 new tokens) or ``checkpoint`` (the model's own config,
                   greedy).
=================  =================================================================================

Under ``authors`` gIoU and cIoU are the released evaluation's aggregation: gIoU the mean over all samples;
cIoU sums I and U over non-empty targets, where a sample without a predicted mask (unparseable answer,
``[]``, nothing usable) adds its target area to U, and empty targets add nothing
(``docs/parse_policies.md``).

Records are plain dicts with at least ``intersection``, ``union``, ``gt_empty``, ``pred_empty``
(predicted mask has no pixel), ``format_ok``; optional ``answer_empty`` (the answer was ``[]``; defaults
to ``pred_empty``) and ``produced`` (the answer was parseable and non-empty; defaults to ``not pred_empty``).
All metrics are fractions in [0, 1] (tables multiply by 100).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from think2seg.core.parsing import DEFAULT_POLICY, check_policy


@dataclass(frozen=True)
class Protocol:
    name: str
    empty_rule: Literal["answer", "mask", "zero"] = "answer"
    ciou_empty_fp: bool = False
    p_denominator: Literal["all", "produced"] = "produced"
    p_strict: bool = False
    resolution: Literal["model", "native", "long1024"] = "model"
    parse_policy: str = DEFAULT_POLICY  # one of core.parsing.POLICIES (checked on creation)
    generation: Literal["checkpoint", "authors"] = "checkpoint"

    def __post_init__(self) -> None:
        check_policy(self.parse_policy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        # Think2Seg-RS as released: scored at 840x840, [] on empty GT = 1, empty GT adds nothing to cIoU,
        # P@0.5 over produced answers only; the released test-time parser and generation config.
        Protocol("authors", "answer", False, "produced", False, "model", "released-test", "authors"),
        # SegEarth-R1: long side 1024 + pad, IoU 1 when the union is empty, strict '>' over all samples.
        Protocol("segearth-r1", "mask", True, "all", True, "long1024"),
        # Seg-Zero / VisionReasoner: native resolution, empty-vs-empty IoU 0.
        Protocol("segzero", "zero", True, "all", False, "native"),
        # This project's recommendation: every sample counts everywhere, false positives visible.
        Protocol("strict", "answer", True, "all", False, "model"),
    )
}
DEFAULT_PROTOCOL = "authors"


def get_protocol(protocol: str | Protocol | Mapping[str, Any], **overrides: Any) -> Protocol:
    """A preset by name (``authors``, ``segearth-r1``, ``segzero``, ``strict``), with optional overrides."""
    if isinstance(protocol, Protocol):
        p = protocol
    elif isinstance(protocol, Mapping):
        p = Protocol(**protocol)
    else:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
        p = PROTOCOLS[protocol]
    if overrides:
        p = replace(
            p, name=p.name + "+" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items())), **overrides
        )
    return p


def mask_stats(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """(intersection, union) pixel counts of two same-shape boolean masks."""
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: pred {pred.shape} vs gt {gt.shape}")
    pred, gt = pred.astype(bool, copy=False), gt.astype(bool, copy=False)
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


def record(pred: np.ndarray, gt: np.ndarray, **fields: Any) -> dict[str, Any]:
    """A minimal metrics record from masks plus any extra fields (``format_ok``, ``answer_empty``...)."""
    i, u = mask_stats(pred, gt)
    rec = {"intersection": i, "union": u, "gt_empty": not gt.any(), "pred_empty": not pred.any()}
    rec.setdefault("format_ok", True)
    rec.update(fields)
    return rec


def sample_iou(rec: Mapping[str, Any], protocol: str | Protocol = DEFAULT_PROTOCOL) -> float:
    """Per-sample IoU under the protocol's empty-target rule."""
    p = get_protocol(protocol)
    if rec["gt_empty"]:
        if p.empty_rule == "answer":
            return 1.0 if rec.get("answer_empty", rec["pred_empty"]) else 0.0
        if p.empty_rule == "mask":
            return 1.0 if rec["union"] == 0 else 0.0
        return 0.0
    return rec["intersection"] / rec["union"] if rec["union"] else 0.0


def summarize(
    records: Iterable[Mapping[str, Any]],
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    thresholds: Sequence[float] = (0.5,),
) -> dict[str, Any]:
    """gIoU, cIoU, P@X, the rejection counts and the format rate of a set of records."""
    p = get_protocol(protocol)
    recs = list(records)
    if not recs:
        raise ValueError("summarize() got no records")
    for k, r in enumerate(recs):
        missing = {"intersection", "union", "gt_empty", "pred_empty", "format_ok"} - set(r)
        if missing:
            raise ValueError(f"record {k} lacks {sorted(missing)}")
    ious = np.array([sample_iou(r, p) for r in recs])
    gt_empty = np.array([bool(r["gt_empty"]) for r in recs])
    answer_empty = np.array([bool(r.get("answer_empty", r["pred_empty"])) for r in recs])
    produced = np.array([bool(r.get("produced", not r["pred_empty"])) for r in recs])
    inter = sum(r["intersection"] for r in recs if not r["gt_empty"])
    union = sum(r["union"] for r in recs if p.ciou_empty_fp or not r["gt_empty"])

    out: dict[str, Any] = {
        "gIoU": float(ious.mean()),
        "cIoU": float(inter / union) if union else 0.0,
    }
    denom = produced if p.p_denominator == "produced" else np.ones_like(produced)
    for t in thresholds:
        hit = ious > t if p.p_strict else ious >= t
        out[f"P@{t:g}"] = float((hit & denom).sum() / denom.sum()) if denom.sum() else 0.0
    out.update(
        n=len(recs),
        n_produced=int(produced.sum()),
        empty_total=int(gt_empty.sum()),
        empty_true=int((gt_empty & answer_empty).sum()),
        empty_false=int((gt_empty & ~answer_empty).sum()),
        false_rejections=int((~gt_empty & answer_empty).sum()),
        format_ok_rate=float(np.mean([bool(r["format_ok"]) for r in recs])),
        protocol=p.to_dict(),
    )
    return out
