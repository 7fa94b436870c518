"""How stable is a GrabCut score? Re-segment a run's answers under tiny perturbations and see which samples flip.

>>> df = perturb_run("runs/05/table6/2pos/test/oracle_components_")                    # doctest: +SKIP
>>> tolerance(df)                                                                     # doctest: +SKIP
{'gIoU': 13.2, 'cIoU': 40.1, 'flipping': 3, 'n': 20}

GrabCut is deterministic on one machine (its RNG is reseeded before every call) but not across machines:
its colour models come out of k-means and EM iterations in floating point, and a different CPU (another
SIMD path, another OpenCV build) can end an iteration on the other side of a decision, after which the
graph cut labels a whole region differently. The perturbations below stand in for "another machine"; each
re-segments the run's recorded answers (no generation) and scores them as the run did:

- ``no_simd``: ``cv2.setUseOptimized(False)`` (OpenCV's scalar code paths instead of its SIMD dispatch);
- ``threads_1``: ``cv2.setNumThreads(1)``;
- ``rng_seed_1``: another seed for the k-means initialisation of the colour models;
- ``image_lsb``: 1 % of the pixels' channels moved by one grey level (a JPEG decoder or a resize kernel's
  rounding elsewhere);
- ``points_1px``: every point moved by one pixel (a rounding of a scaled coordinate the other way).

:func:`perturb_run` gives one row per sample and perturbation (IoU, intersection, union);
:func:`tolerance` summarises a row of a table: the largest move of gIoU / cIoU (x 100) over the
perturbations and the samples whose IoU moved by more than ``flip`` under any of them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from think2seg.core.metrics import get_protocol, summarize
from think2seg.core.records import read_records
from think2seg.core.types import Instance
from think2seg.data import load_dataset
from think2seg.evaluation.scoring import score_text
from think2seg.segmenters.grabcut import GrabCutSegmenter

PERTURBATIONS = ("none", "no_simd", "threads_1", "rng_seed_1", "image_lsb", "points_1px")
FLIP = 0.1  # a sample "flips" when its IoU moves by more than this


@contextlib.contextmanager
def _cv2_setting(name: str) -> Iterator[None]:
    import cv2

    optimized, threads = cv2.useOptimized(), cv2.getNumThreads()
    try:
        if name == "no_simd":
            cv2.setUseOptimized(False)
        elif name == "threads_1":
            cv2.setNumThreads(1)
        yield
    finally:
        cv2.setUseOptimized(optimized)
        cv2.setNumThreads(threads)


class _PerturbedGrabCut(GrabCutSegmenter):
    """GrabCut whose input image or points are perturbed (``image_lsb``, ``points_1px``)."""

    def __init__(self, mode: str, seed: int = 0, rng_seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.mode, self.rng = mode, np.random.default_rng(rng_seed)

    def segment(self, image, prompt_sets, **kw):
        if self.mode == "image_lsb":
            image = image.copy()
            hit = self.rng.random(image.shape) < 0.01
            image[hit] = np.where(image[hit] < 255, image[hit] + 1, image[hit] - 1)
        if self.mode == "points_1px":
            def shift(p):
                return [(x + 1, y + 1) for x, y in p]
            prompt_sets = [[Instance(box=i.box, positive=shift(i.positive), negative=shift(i.negative))
                            for i in ps] for ps in prompt_sets]
        return super().segment(image, prompt_sets, **kw)


def _segmenter(name: str) -> GrabCutSegmenter:
    if name == "rng_seed_1":
        return GrabCutSegmenter(seed=1)
    if name in ("image_lsb", "points_1px"):
        return _PerturbedGrabCut(name)
    return GrabCutSegmenter()


def perturb_run(run_dir: str | Path, perturbations: Sequence[str] = PERTURBATIONS) -> pd.DataFrame:
    """Re-segment every recorded answer of a GrabCut run under each perturbation; one row per (sample,
    perturbation): ``id, perturbation, iou, intersection, union, gt_empty, pred_empty, format_ok, produced``
    (and ``answer_empty``) so that :func:`think2seg.core.metrics.summarize` can re-summarise any subset."""
    run = Path(run_dir)
    cfg = json.loads((run / "config.json").read_text())
    opts = cfg["options"]
    if "grabcut" not in str(cfg.get("segmenter_name", opts.get("segmenter"))):
        raise ValueError(f"{run}: perturbations apply to GrabCut runs, this one used {opts.get('segmenter')}")
    protocol = get_protocol(opts["protocol"])
    recs = {r["id"]: r for r in read_records(run)}
    ds = {s.id: s for s in load_dataset(opts["data"], opts["split"], questions=opts["questions"], seed=opts["seed"],
                                        question_kind=opts.get("question_kind"))}
    rows = []
    for name in perturbations:
        seg = _segmenter(name)
        with _cv2_setting(name):
            for sid, rec in recs.items():
                s = ds[sid]
                scored = score_text(rec["completion"], s.load_image(), s.load_mask(), model_size=tuple(rec["model_size"]),
                                    protocol=protocol, segmenter=seg, style=opts["style"],
                                    segment_native=bool(opts.get("segment_native")))
                scored.pop("pred")
                rows.append({"id": sid, "perturbation": name, **{k: scored[k] for k in (
                    "iou", "intersection", "union", "gt_empty", "pred_empty", "format_ok", "produced", "answer_empty")
                    if k in scored}})
    return pd.DataFrame(rows)


def tolerance(df: pd.DataFrame, protocol: Any = "authors", flip: float = FLIP) -> dict[str, Any]:
    """``{"gIoU", "cIoU"}``: the largest |move| (x 100) of the summary under any perturbation against
    ``none``; ``"flipping"``: ids whose IoU moved by more than ``flip``; ``"n"``: samples."""
    protocol = get_protocol(protocol)
    by = {name: d.to_dict("records") for name, d in df.groupby("perturbation", sort=False)}
    base = summarize(by["none"], protocol)
    moves = {"gIoU": 0.0, "cIoU": 0.0}
    for recs in by.values():
        m = summarize(recs, protocol)
        for k in moves:
            moves[k] = max(moves[k], 100 * abs(m[k] - base[k]))
    wide = df.pivot(index="id", columns="perturbation", values="iou")
    spread = (wide.max(axis=1) - wide.min(axis=1))
    return {**{k: round(v, 2) for k, v in moves.items()}, "flipping": sorted(spread[spread > flip].index),
            "n": int(len(wide))}
