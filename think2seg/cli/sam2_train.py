"""``think2seg sam2-train``: train a mini SAM2 (sam2's own classes) and, with ``--ship``, ship it.

    think2seg sam2-train --config configs/sam2_mini/mini-t.yaml --out runs/sam2-mini-t --ship
    think2seg sam2-train --config configs/sam2_mini/mini-t.yaml --out /tmp/smoke --steps 2 --no-bars

Trains on the recipe's data (the embedded SynthEarth train split by default) with SAM-style prompts
(:mod:`think2seg.segmenters.sam2_train`), resumable: rerun the same command to continue from
``OUT/state.pt`` (a finished run only re-exports and re-measures). Writes ``OUT/<size>.pt`` (float16,
official ``{"model": state_dict}`` layout), ``OUT/training_curve.png`` and ``OUT/training_report.json``
(recipe, git sha, curve, and the executor figures of :mod:`think2seg.evaluation.executor_bars` on the val
split: oracle box+2 points / box / points, the constant near-whole-image box, gIoU against box margin).
``--ship`` copies the checkpoint to ``think2seg/assets/sam2_mini/`` (``sam2:<size>``) with its report.
How to train one for other imagery: docs/sam2.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from think2seg.core.errors import CLIError, config_file
from think2seg.evaluation.executor_bars import executor_bars
from think2seg.reports.sam2_training import REPORT, write_training_report
from think2seg.segmenters.checkpoints import MINI_DIR
from think2seg.segmenters.sam2_data import dataset_spec
from think2seg.segmenters.sam2_train import load_train_config, train_sam2

SHIP_LIMIT_MB = 20.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sam2-train", help="train (and ship) a mini SAM2 of sam2's own classes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="recipe YAML, e.g. configs/sam2_mini/mini-t.yaml")
    p.add_argument("--out", required=True, help="run folder (created; resumed if it holds state.pt)")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    p.add_argument("--max-minutes", type=float, default=None, help="override the recipe's wall-clock budget")
    p.add_argument("--val-images", type=int, default=None, help="override the recipe's val images per check")
    p.add_argument("--bars-limit", type=int, default=200, help="val images for the executor figures")
    p.add_argument("--no-bars", action="store_true", help="skip the executor figures (smoke runs)")
    p.add_argument("--ship", action="store_true", help="copy the float16 checkpoint into think2seg/assets/sam2_mini")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for opt in ("steps", "bars_limit"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise CLIError(f"--{opt.replace('_', '-')} must be >= 1 (got {v})")
    cfg = load_train_config(config_file(args.config), steps=args.steps, max_minutes=args.max_minutes,
                            val_images=args.val_images)
    out = Path(args.out)
    result = train_sam2(cfg, out)
    bars = None
    if not args.no_bars:
        spec = f"sam2:{cfg.model}:{Path(result['export']).resolve()}"
        bars = executor_bars(spec, out / "bars", data=dataset_spec(cfg.data), limit=args.bars_limit)
    report = write_training_report(result, bars, asdict(cfg), out, extra={"config_file": str(args.config)})
    print(json.dumps({k: result[k] for k in ("model", "steps_done", "stopped_by", "seconds", "export_mb",
                                              "peak_rss_mb")}, indent=1))
    if bars:
        print(json.dumps({"oracle": {k: v["gIoU"] for k, v in bars["oracle"].items()},
                          "reflected": bars["reflected"]["gIoU"], "fixed_box": bars["fixed_box"]["gIoU"],
                          "margin_curve": [(p["margin"], p["gIoU"]) for p in bars["margin_curve"]]}, indent=1))
    if args.ship:
        if result["export_mb"] > SHIP_LIMIT_MB:
            raise CLIError(f"--ship: {result['export']} is {result['export_mb']} MB (limit {SHIP_LIMIT_MB} MB)")
        shutil.copyfile(result["export"], MINI_DIR / Path(result["export"]).name)
        shutil.copyfile(report, MINI_DIR / f"{cfg.model}.{REPORT}")
        print(f"shipped {MINI_DIR / Path(result['export']).name} (sam2:{cfg.model})")
    print(f"report: {report}")
    return 0
