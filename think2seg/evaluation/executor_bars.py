"""How good is a segmenter as the reward's executor? Oracle prompts, a constant big box, loose boxes.

    >>> bars = executor_bars("sam2:mini-t", "runs/bars/mini-t", split="val", limit=200)   # doctest: +SKIP
    >>> bars["oracle"]["bbox+2pos"]["gIoU"], bars["fixed_box"]["gIoU"]                  # doctest: +SKIP
    >>> [(p["margin"], p["gIoU"]) for p in bars["margin_curve"]]                          # doctest: +SKIP

Every number is an :func:`~think2seg.evaluation.engine.evaluate` run (protocol ``authors``, one question
per image, model space = the dataset's image size) kept under ``out/<row>/`` (records, metrics, config;
a rerun resumes). Rows:

- ``oracle``: oracle prompts per 8-connected component of the ground truth, styles ``bbox+2pos`` (box +
  2 points), ``bbox`` (box alone) and ``2pos`` (points alone): Table 6's ordering for this executor;
- ``fixed_box``: the constant near-whole-image answer of the ``fixed`` prompter (box 7-93 % of the image,
  two points): what a prompter that ignores the image earns;
- ``reflected``: the oracle's ``bbox+2pos`` prompts reflected through the image centre (a box at the
  top left moves to the bottom right): a control, since an executor that reads its prompts falls far below
  its ``oracle`` row while a prompt-blind one (the salient objects whatever the prompt) scores the same;
- ``margin_curve``: oracle boxes alone (one per component) grown by ``margin`` x the box's width / height
  on each side (clipped to the image), margins 0-50 %: the slope a prompter climbs under GRPO.

``think2seg sam2-train`` stores these figures in ``training_report.json``; the measured values:
``docs/sam2.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from think2seg.core.geometry import clip_box, reflect_prompts
from think2seg.core.styles import format_answer
from think2seg.core.types import Instance, Sample
from think2seg.data import load_dataset
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.prompters.oracle import OraclePrompter
from think2seg.segmenters import resolve_segmenter, segmenter_name

ORACLE_STYLES = ("bbox+2pos", "bbox", "2pos")
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
KEEP = ("gIoU", "cIoU", "P@0.5", "n")


class LooseBoxOracle:
    """Oracle boxes (style ``bbox``, one per component) grown by ``margin`` of their size on each side."""

    def __init__(self, margin: float, image_size: int | Sequence[int]):
        self.oracle = OraclePrompter(mode="components", style="bbox", image_size=image_size)
        self.image_size = self.oracle.image_size
        self.margin = float(margin)
        self.name = f"oracle:loose{round(100 * margin)}"

    def prompts(self, sample: Sample) -> list[Instance]:
        """The grown boxes in model space, inclusive pixels, clipped to the image."""
        w, h = self.image_size
        out = []
        for inst in self.oracle.prompts(sample):
            x1, y1, x2, y2 = inst.box
            dx, dy = self.margin * (x2 - x1 + 1), self.margin * (y2 - y1 + 1)
            box = clip_box((x1 - dx, y1 - dy, x2 + dx, y2 + dy), w, h)
            if box is not None:
                out.append(Instance(box=box))
        return out

    def generate(self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0,
                 seed: int = 0) -> list[list[str]]:
        return [[format_answer(self.prompts(s), think=f"Oracle boxes grown by {self.margin:.0%}.")] * n
                for s in samples]


class ReflectedOracle:
    """The oracle's prompts (``bbox+2pos``, one instance per component) reflected through the image centre
    (:func:`~think2seg.core.geometry.reflect_prompts`, model space)."""

    def __init__(self, image_size: int | Sequence[int]):
        self.oracle = OraclePrompter(mode="components", style="bbox+2pos", image_size=image_size)
        self.image_size = self.oracle.image_size
        self.name = "oracle:reflected"

    def prompts(self, sample: Sample) -> list[Instance]:
        return reflect_prompts(self.oracle.prompts(sample), self.image_size)

    def generate(self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0,
                 seed: int = 0) -> list[list[str]]:
        return [[format_answer(self.prompts(s), think="Oracle prompts reflected through the centre.")] * n
                for s in samples]


def _image_size(data: str, split: str) -> int:
    sample = next(iter(load_dataset(data, split, questions="random", limit=1, verify=False)))
    h, w = sample.load_image().shape[:2]
    return max(h, w)


def _row(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: metrics[k] for k in KEEP if k in metrics}
    out["seconds_per_sample"] = metrics.get("seconds_per_sample", {}).get("seg_s")
    return out


def executor_bars(segmenter: Any, out: str | Path, *, data: str = "synthearth", split: str = "val",
                  limit: int | None = 200, margins: Sequence[float] = MARGINS, progress: bool = True,
                  rows: Sequence[str] = ("oracle", "reflected", "fixed_box", "margin_curve")) -> dict[str, Any]:
    """The executor figures of ``segmenter`` (a spec or a segmenter object) on ``data``/``split`` (first ``limit`` images); see the module
    doc. ``rows`` picks a subset of ``oracle``, ``reflected``, ``fixed_box``, ``margin_curve``. A SAM2 segmenter's
    embedding cache is raised to hold every image, so all rows share one encoder pass per image."""
    out = Path(out)
    size = _image_size(data, split)
    seg = resolve_segmenter(segmenter)
    if hasattr(seg, "cache_size"):  # every row reuses one encoder pass per image
        seg.cache_size = max(seg.cache_size, (limit or 1000) + 8)
    name = segmenter_name(segmenter)
    common = dict(data=data, split=split, segmenter=name, protocol="authors", limit=limit, image_size=size)
    res: dict[str, Any] = {"segmenter": name, "data": data, "split": split, "image_size": size}
    if "oracle" in rows:
        res["oracle"] = {
            style: _row(evaluate(EvalConfig(out=str(out / f"oracle-{style}"), prompter=f"oracle?image_size={size}",
                                            style=style, **common), segmenter=seg, progress=progress))
            for style in ORACLE_STYLES
        }
    if "reflected" in rows:
        p = ReflectedOracle(size)
        res["reflected"] = _row(evaluate(EvalConfig(out=str(out / "reflected"), prompter=p.name, style="bbox+2pos",
                                                    **common), prompter=p, segmenter=seg, progress=progress))
    if "fixed_box" in rows:
        res["fixed_box"] = _row(evaluate(EvalConfig(out=str(out / "fixed"), prompter=f"fixed?image_size={size}",
                                                    **common), segmenter=seg, progress=progress))
    if "margin_curve" in rows:
        res["margin_curve"] = []
        for m in margins:
            p = LooseBoxOracle(m, size)
            cfg = EvalConfig(out=str(out / f"margin-{round(100 * m):02d}"), prompter=p.name, style="bbox", **common)
            res["margin_curve"].append({"margin": m, **_row(evaluate(cfg, prompter=p, segmenter=seg, progress=progress))})
    return res
