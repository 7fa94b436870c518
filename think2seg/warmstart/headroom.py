"""How far can mask-only GRPO move a warm start? Ceilings measured before any training run.

    think2seg headroom --prompter tiny:think2seg/assets/tiny_zeroshot --segmenter sam2:mini-t --out runs/headroom

    >>> rep = headroom("tiny:think2seg/assets/tiny_zeroshot", "runs/headroom", limit=40)     # doctest: +SKIP
    >>> rep["rows"]["warm"]["gIoU"], rep["rows"]["oracle_whole"]["gIoU"], rep["support"]   # doctest: +SKIP

GRPO reinforces answers the policy samples and scores them with the segmenter, so three things bound what
it can reach from a warm start, all on the same questions (protocol ``authors``, greedy, model space =
the prompter's):

- **rows** (each an :func:`~think2seg.evaluation.engine.evaluate` run under ``out/<row>/``; a rerun
  resumes):

  - ``warm``: the warm start itself;
  - ``unmargined``: the warm start's own boxes with the zero-shot rules' mean margin taken back out
    (each box shrunk about its centre by ``1 + 2 * ZEROSHOT_MARGIN``), its points kept: what fixing the
    shared bias alone earns, with the warm start's perception;
  - ``rules``: the zero-shot rules (:func:`~think2seg.warmstart.targets.zeroshot_instance`) applied to the
    ground truth, ``[]`` for an absent target: perfect perception, the warm start's geometry;
  - ``rules_per_instance``: the same rules applied to each connected component on its own: what a
    zero-shot model that lists instances (instead of one box over all) would score with perfect perception;
  - ``oracle_whole``: one tight box over the whole target + two spread points (``oracle:whole``): the best
    ONE-instance answer;
  - ``oracle``: one instance per connected component (``oracle``): the executor's ceiling.

- **by components**: each row's gIoU on empty targets, one-component targets and targets of 2+
  components (the oracle's own component rule), since a one-instance answer over several instances is
  capped far below per-instance prompts;
- **support**: the answers the warm start samples at temperature 1 (``support_n`` per question, as GRPO
  samples them), counted by number of instances (``[]`` = 0) and parse errors. An answer shape that is
  never sampled is never reinforced.

The measured values and what they mean for issue #23: ``docs/warmstart.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.geometry import DEFAULT_MODEL_SIZE, as_size, clip_box, resize_mask
from think2seg.core.mask_to_prompts import component_masks
from think2seg.core.parsing import parse_completion
from think2seg.core.records import read_records
from think2seg.core.styles import format_answer
from think2seg.core.types import Instance, Sample
from think2seg.data import load_dataset
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.prompters import build_prompter
from think2seg.segmenters import resolve_segmenter, segmenter_name
from think2seg.warmstart.targets import ZEROSHOT_MARGIN, zeroshot_instance

ROWS = ("warm", "unmargined", "rules", "rules_per_instance", "oracle_whole", "oracle")
SUBSETS = ("empty", "1 component", "2+ components")


def component_count(mask: np.ndarray) -> int:
    """Connected components of an (H, W) bool mask by the oracle's rule (8-connected, specks < 32 px
    dropped unless that drops all): ``0`` for an empty mask."""
    return len(component_masks(mask))


def subset_of(count: int) -> str:
    return SUBSETS[min(count, 2)]


def unmargin_box(box: Sequence[float], size: Sequence[int], margin: float = ZEROSHOT_MARGIN) -> tuple[int, ...] | None:
    """``box`` (x1, y1, x2, y2 in a (W, H) = ``size`` model space) shrunk about its centre by
    ``1 + 2 * margin`` in width and height, rounded and clipped; None if nothing of it is left."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) / (2 * (1 + 2 * margin)), (y2 - y1) / (2 * (1 + 2 * margin))
    out = clip_box((cx - hw, cy - hh, cx + hw, cy + hh), size[0], size[1])
    return None if out is None else tuple(int(round(v)) for v in out)


class RulesOracle:
    """The zero-shot rules applied to the ground truth (model space ``image_size``); ``[]`` when absent.
    ``per_instance``: to each component (the oracle's rule) instead of the whole mask. The rules' jitter is
    drawn from ``seed`` and the sample id, so a rerun gives the same answers."""

    def __init__(self, image_size: int | Sequence[int], seed: int = 0, per_instance: bool = False):
        self.image_size = as_size(image_size)
        self.seed = seed
        self.per_instance = per_instance
        self.name = "oracle:zeroshot-rules" + ("-per-instance" if per_instance else "")

    def prompts(self, sample: Sample) -> list[Instance]:
        mask = resize_mask(sample.load_mask(), self.image_size)
        if not mask.any():
            return []
        rng = np.random.default_rng([self.seed, *sample.id.encode()])
        if not self.per_instance:
            return [zeroshot_instance(mask, rng)]
        return [zeroshot_instance(part, rng) for part in component_masks(mask)]

    def generate(self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0,
                 seed: int = 0) -> list[list[str]]:
        return [[format_answer(self.prompts(s), think="The zero-shot rules on the ground truth.")] * n
                for s in samples]


class UnmarginedReplay:
    """The answers of an evaluation run (``records.jsonl``) with every box shrunk by :func:`unmargin_box`;
    points, think text and everything else kept."""

    def __init__(self, run_dir: str | Path, image_size: Sequence[int]):
        self.image_size = tuple(image_size)
        self.records = {r["id"]: r for r in read_records(run_dir)}
        self.name = f"unmargined:{run_dir}"

    def prompts(self, sample: Sample) -> list[Instance]:
        rec = self.records.get(sample.id)
        if rec is None:
            raise KeyError(f"{self.name} has no answer for {sample.id}")
        out = []
        for inst in map(Instance.from_json, rec.get("instances") or []):
            box = unmargin_box(inst.box, self.image_size) if inst.box is not None else None
            if box is not None or inst.positive:
                out.append(replace(inst, box=box))
        return out

    def generate(self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0,
                 seed: int = 0) -> list[list[str]]:
        return [[format_answer(self.prompts(s), think=self.records[s.id].get("think") or "")] * n
                for s in samples]


def by_components(records: Sequence[dict[str, Any]], counts: dict[str, int]) -> dict[str, dict[str, float]]:
    """gIoU x 100 (None for an empty subset) and n of ``records`` per subset of :data:`SUBSETS`
    (``counts``: sample id -> components)."""
    out = {}
    for name in SUBSETS:
        ious = [r["iou"] for r in records if subset_of(counts[r["id"]]) == name]
        out[name] = {"gIoU": 100 * float(np.mean(ious)) if ious else None, "n": len(ious)}
    return out


def sampled_support(prompter: Any, samples: Sequence[Sample], n: int = 8, batch: int = 8,
                    seed: int = 0) -> dict[str, int]:
    """Answers sampled at temperature 1 (``n`` per sample), counted by instances (``"0"`` = ``[]``,
    ``"2+"``) and ``"error"`` (unparseable under the lenient policy, in the prompter's model space)."""
    size = getattr(prompter, "image_size", DEFAULT_MODEL_SIZE)
    c: Counter[str] = Counter()
    for i in range(0, len(samples), batch):
        for outs in prompter.generate(list(samples[i:i + batch]), n=n, temperature=1.0, seed=seed + i):
            for text in outs:
                res = parse_completion(text, image_size=size)
                c["error" if res.error else ("2+" if len(res.instances) >= 2 else str(len(res.instances)))] += 1
    return {k: c.get(k, 0) for k in ("0", "1", "2+", "error")}


def headroom(prompter: str, out: str | Path, *, segmenter: Any = "sam2:mini-t", data: str = "synthearth",
             split: str = "val", question_kind: str | None = "implicit", limit: int | None = None,
             support_every: int = 10, support_n: int = 8, progress: bool = True) -> dict[str, Any]:
    """Every row, subset and the support for the warm start ``prompter`` (a spec); writes
    ``out/headroom.json`` and returns the same dict. ``support_every``: sample every k-th question."""
    out = Path(out)
    warm = build_prompter(prompter)
    size = tuple(warm.image_size)
    seg = resolve_segmenter(segmenter)
    common = dict(data=data, split=split, segmenter=segmenter_name(segmenter), protocol="authors",
                  questions="all", question_kind=question_kind, limit=limit, image_size=size[0])
    samples = list(load_dataset(data, split, questions="all", question_kind=question_kind, limit=limit))
    counts = {s.id: component_count(resize_mask(s.load_mask(), size)) for s in samples}

    rows: dict[str, Any] = {}
    makers = {
        "warm": lambda: (prompter, warm),
        "unmargined": lambda: ("unmargined", UnmarginedReplay(out / "warm", size)),
        "rules": lambda: ("oracle:zeroshot-rules", RulesOracle(size)),
        "rules_per_instance": lambda: ("oracle:zeroshot-rules-per-instance", RulesOracle(size, per_instance=True)),
        "oracle_whole": lambda: (f"oracle:whole?image_size={size[0]}", None),
        "oracle": lambda: (f"oracle?image_size={size[0]}", None),
    }
    for row in ROWS:
        spec, obj = makers[row]()
        metrics = evaluate(EvalConfig(out=str(out / row), prompter=spec, **common), prompter=obj, segmenter=seg,
                           progress=progress)
        rows[row] = {"gIoU": 100 * metrics["gIoU"], "cIoU": 100 * metrics["cIoU"], "n": metrics["n"],
                     "empty_true": metrics["empty_true"],
                     "by_components": by_components(read_records(out / row), counts)}
    support = sampled_support(warm, samples[::support_every], n=support_n)
    rep = {"prompter": prompter, "segmenter": common["segmenter"], "data": data, "split": split,
           "question_kind": question_kind, "n": len(samples), "image_size": list(size),
           "subset_sizes": dict(Counter(subset_of(k) for k in counts.values())),
           "rows": rows, "support": support, "support_questions": len(samples[::support_every]),
           "support_n": support_n}
    (out / "headroom.json").write_text(json.dumps(rep, indent=1))
    return rep
