"""Spread, not one number: the same evaluation under several seeds, reported as mean ± std with n.

>>> s = spread([{"gIoU": 0.20}, {"gIoU": 0.24}, {"gIoU": 0.22}], keys=("gIoU",))
>>> fmt(s["gIoU"])
'22.0 ± 2.0 (n=3)'
>>> runs = evaluate_seeds(EvalConfig(data="synthearth", split="val", prompter="tiny-grpo", temperature=1.0,
...                                  out="runs/seeds"), seeds=(0, 1, 2))                 # doctest: +SKIP

What a seed changes (docs/protocols.md): with ``temperature > 0`` the sampled completions; with
``questions="random"`` (the default) the question drawn for each image; neither under greedy decoding with
``questions="all"``, where every seed gives the same records. Training seeds are ``think2seg train --seed``
(trl's ``seed``): each run is a separate output dir, evaluated like any other, and :func:`spread` of their
metrics is the training-seed spread. ``std`` is the sample standard deviation (ddof 1; 0 for n = 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from think2seg.core.records import read_metrics
from think2seg.evaluation.engine import EvalConfig, evaluate

SPREAD_FILE = "spread.json"
KEYS = ("gIoU", "cIoU", "P@0.5", "format_ok_rate")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``"0-4"`` -> ``[0, 1, 2, 3, 4]``; a ValueError naming the bad part."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",") if p.strip()):
        a, dash, b = part.partition("-")
        try:
            seeds += list(range(int(a), int(b) + 1)) if dash else [int(part)]
        except ValueError:
            raise ValueError(f"seeds {text!r}: {part!r} is not an integer or a range A-B") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r}: give distinct integers, e.g. 0,1,2")
    return seeds


def spread(metrics: Iterable[Mapping[str, Any]], keys: Sequence[str] = KEYS) -> dict[str, dict[str, Any]]:
    """``{key: {"mean", "std", "n", "values"}}`` over the metrics dicts (fractions stay fractions)."""
    metrics = list(metrics)
    out = {}
    for k in keys:
        vals = [float(m[k]) for m in metrics if k in m and m[k] is not None and not math.isnan(float(m[k]))]
        if not vals:
            continue
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out[k] = {"mean": mean, "std": std, "n": len(vals), "values": vals}
    return out


def fmt(s: Mapping[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    """``"22.0 ± 2.0 (n=3)"`` (x ``scale``)."""
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f} (n={s['n']})"


def evaluate_seeds(cfg: EvalConfig, seeds: Sequence[int], progress: bool = True) -> dict[str, Any]:
    """Evaluate ``cfg`` once per seed into ``<cfg.out>/seed-<s>`` (each resumable) and write
    ``<cfg.out>/spread.json``: ``{"seeds", "temperature", "questions", "runs", "spread"}``."""
    out = Path(cfg.out)
    runs = {}
    for s in seeds:
        run = out / f"seed-{s}"
        evaluate(replace(cfg, seed=int(s), out=str(run)), progress=progress)
        runs[int(s)] = run
    result = {"seeds": list(runs), "temperature": cfg.temperature, "questions": cfg.questions,
              "runs": {s: str(d) for s, d in runs.items()},
              "spread": spread(read_metrics(d) for d in runs.values())}
    (out / SPREAD_FILE).write_text(json.dumps(result, indent=1))
    return result


def spread_columns(metrics: Sequence[Mapping[str, Any]], split: str, keys: Sequence[str] = ("gIoU", "cIoU", "P@0.5"),
                   ) -> dict[str, Any]:
    """A table row's columns for one split from one metrics dict per seed: ``"<split> <key>"`` the mean
    x 100, ``"<split> <key> ±"`` the std x 100, ``"<split> n"`` samples per seed, ``"<split> seeds"``."""
    s = spread(metrics, keys)
    row: dict[str, Any] = {}
    for k in keys:
        if k in s:
            row[f"{split} {k}"] = 100 * s[k]["mean"]
            row[f"{split} {k} ±"] = 100 * s[k]["std"]
    row[f"{split} n"] = metrics[0]["n"] if metrics else 0
    row[f"{split} seeds"] = len(metrics)
    return row
