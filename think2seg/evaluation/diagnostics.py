"""What a run's records say beyond its metrics: one table row per run, and how much its answers depend
on the question (a policy that answers every question with one big box scores, but reads nothing).

    >>> rec = {"instances": [{"bbox_2d": [0, 0, 49, 99]}], "model_size": [100, 100], "think": "a lake"}
    >>> diagnose_answers([rec, rec])["top answer share"], diagnose_answers([rec])["box area"]
    (1.0, 0.5)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from think2seg.core.geometry import clip_box
from think2seg.data.scenes import CATEGORIES


def metrics_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One results-table row of a run's ``metrics.json``: scores x 100, as in the paper."""
    sec = metrics.get("seconds_per_sample", {})
    return {
        "gIoU": 100 * metrics["gIoU"],
        "cIoU": 100 * metrics["cIoU"],
        "P@0.5": 100 * metrics.get("P@0.5", float("nan")),
        "n": metrics["n"],
        "empty_true": metrics["empty_true"],
        "empty_total": metrics["empty_total"],
        "format_ok_rate": metrics["format_ok_rate"],
        "s/sample": sum(sec.values()) if sec else float("nan"),
        "protocol": metrics["protocol"]["name"],
    }


def diagnose_answers(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Question-dependence of a set of evaluation records (``think2seg eval``'s ``records.jsonl``):

    - ``n``: records;
    - ``distinct answers``: share of distinct answer JSONs (instances) among produced answers;
    - ``top answer share``: how often the single most frequent answer was given (1.0 = one constant box);
    - ``think names category``: share of samples whose ``<think>`` names the target's category, where the
      records carry one (``extra.category``, e.g. SynthEarth; NaN otherwise);
    - ``box area``: mean share of the image (the model's input space) covered by an answer's boxes, over
      answers with a box (NaN if none): a policy that learnt "a bigger box always scores" drifts to 1;
    - ``box IoU``, ``points on target``: the means of the records' ``box_iou`` and ``points_on_target``
      (:mod:`think2seg.core.prompt_geometry`; NaN where no record has one): how tight the boxes are and
      how many positive points land on the target, whatever the segmenter made of them.
    """

    answers = [json.dumps(r.get("instances"), sort_keys=True) for r in records if r.get("produced", True)]
    counts = Counter(answers)
    named = [_think_names(r) for r in records if r.get("extra", {}).get("category")]
    areas = [a for r in records if (a := box_area(r)) is not None]
    return {
        "n": len(records),
        "distinct answers": len(counts) / max(1, len(answers)),
        "top answer share": counts.most_common(1)[0][1] / len(answers) if answers else float("nan"),
        "think names category": float(np.mean(named)) if named else float("nan"),
        "box area": float(np.mean(areas)) if areas else float("nan"),
        "box IoU": _mean_of(records, "box_iou"),
        "points on target": _mean_of(records, "points_on_target"),
    }


def _mean_of(records: Sequence[Mapping[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in records if r.get(key) is not None]
    return float(np.mean(vals)) if vals else float("nan")


def box_area(record: Mapping[str, Any]) -> float | None:
    """Share of the ``model_size`` image inside the union of the record's boxes (inclusive pixel corners,
    clipped); None without a box or a model size."""
    boxes = [i["bbox_2d"] for i in record.get("instances") or [] if i.get("bbox_2d")]
    size = record.get("model_size")
    if not boxes or not size:
        return None

    w, h = int(size[0]), int(size[1])
    covered = np.zeros((h, w), bool)
    for box in boxes:
        if (c := clip_box(box, w, h)) is not None:
            covered[c[1] : c[3] + 1, c[0] : c[2] + 1] = True
    return float(covered.mean())


def _think_names(record: Mapping[str, Any]) -> bool:
    """Whether ``<think>`` names the sample's category (its display name, plural or singular)."""
    think = (record.get("think") or "").lower()
    cat = str(record["extra"]["category"])
    names = {CATEGORIES[cat].plural.lower(), CATEGORIES[cat].singular.lower()} if cat in CATEGORIES else set()
    names.add(cat.replace("_", " ").lower())
    return any(n in think for n in names)
