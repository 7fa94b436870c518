"""Results as files: metric tables from run directories, training curves, example-prediction figures.

>>> from think2seg.reports.results import metrics_table, save_table, plot_examples
>>> df = metrics_table({"oracle": "runs/02/oracle", "tiny": "runs/02/tiny"})    # doctest: +SKIP
>>> save_table(df, "02_zero_shot", reports_dir="reports")   # reports/tables/02_zero_shot.{csv,md}  # doctest: +SKIP
>>> plot_examples("runs/02/tiny", n=6, out="reports/figures/02_examples.png")                      # doctest: +SKIP

Tables show metrics x 100 (as in the paper) with the protocol name; file names are deterministic so the
next notebook, the tests and the README read files, never notebook internals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from think2seg.core.drawing import draw_prompts
from think2seg.core.geometry import resize_image, resize_mask
from think2seg.core.io import read_image, read_mask
from think2seg.core.records import decode_rle, read_metrics, read_records
from think2seg.core.types import Instance
from think2seg.evaluation.diagnostics import diagnose_answers, metrics_row

TABLE_COLUMNS = ["gIoU", "cIoU", "P@0.5", "n", "empty_true", "empty_total", "format_ok_rate", "s/sample", "protocol"]




def metrics_table(runs: Mapping[str, str | Path]):
    """A pandas DataFrame, one row per labelled run directory."""

    rows = {label: metrics_row(read_metrics(d)) for label, d in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[TABLE_COLUMNS]


def answer_diagnostics(runs: Mapping[str, str | Path]):
    """Does a prompter's answer depend on the question? One row per labelled run directory
    (:func:`diagnose_answers` of its records).

    A policy that collapsed onto one box (reward hacking) shows a high top-answer share and a category
    accuracy near chance; compare its gIoU with the ``fixed`` prompter's, a constant answer.
    """

    rows = {label: diagnose_answers(read_records(d)) for label, d in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index")



def save_table(df, name: str, reports_dir: str | Path = "reports", floatfmt: str = ".2f") -> Path:
    """``reports/tables/<name>.csv`` and ``.md``; returns the Markdown path."""
    out = Path(reports_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", float_format="%.4f")
    md = out / f"{name}.md"
    md.write_text(df.to_markdown(floatfmt=floatfmt) + "\n")
    return md


def pick_examples(records: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """A reproducible spread: best, worst and random records (empty targets included when present)."""
    rng = np.random.default_rng(seed)
    order = sorted(range(len(records)), key=lambda i: records[i]["iou"])
    picks: list[int] = []
    for i in [order[-1], order[0], *rng.permutation(len(records)).tolist()]:
        if i not in picks:
            picks.append(i)
        if len(picks) >= n:
            break
    return [records[i] for i in picks]


def plot_examples(run_dir: str | Path, n: int = 6, out: str | Path | None = None, seed: int = 0, cols: int = 3):
    """Image + GT (contour) + predicted mask (fill) + prompts for ``n`` records of a run; saved to ``out``."""
    import matplotlib.pyplot as plt

    recs = pick_examples(read_records(run_dir), n, seed)
    cols = max(1, min(cols, len(recs)))
    rows = int(np.ceil(len(recs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, recs, strict=False):
        w, h = r["score_size"]
        img = resize_image(read_image(r["image_path"]), (w, h))
        ax.imshow(img)
        if r.get("pred_rle"):
            pred = decode_rle(r["pred_rle"])
            ax.imshow(np.ma.masked_where(~pred, pred), cmap="autumn", alpha=0.45, vmin=0, vmax=1)
        if r.get("mask_path"):
            gt = resize_mask(read_mask(r["mask_path"]), (w, h))
            if gt.any():
                ax.contour(gt, levels=[0.5], colors="cyan", linewidths=1.2)
        insts = [Instance.from_json(o) for o in r.get("instances", [])]
        mw, mh = r.get("model_size", (w, h))
        draw_prompts(ax, [i.scaled(w / mw, h / mh) for i in insts])
        q = r["question"] if len(r["question"]) < 60 else r["question"][:57] + "..."
        ax.set_title(f"{q}\nIoU {r['iou']:.2f}" + ("  (empty GT)" if r["gt_empty"] else ""), fontsize=8)
    fig.suptitle(f"{Path(run_dir).name}: cyan = ground truth, orange = prediction, boxes/points = prompts", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


# ---------------------------------------------------------------------------------------------------
# training logs


def training_history(output_dir: str | Path):
    """trl's log history (one row per logging step) of a training output dir, as a DataFrame."""

    out = Path(output_dir)
    cands = [out / "trainer_state.json"] + sorted(
        out.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1])
    )
    cands = [c for c in cands if c.is_file()]
    if not cands:
        raise FileNotFoundError(f"{out}: no trainer_state.json (has the training run saved a checkpoint?)")
    state = json.loads(cands[-1].read_text())
    return pd.DataFrame([r for r in state["log_history"] if "loss" in r or "reward" in r])


def eval_curve(output_dir: str | Path):
    path = Path(output_dir) / "eval_curve.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation curve (train with --eval_split)")
    return pd.DataFrame([json.loads(x) for x in path.read_text().splitlines() if x.strip()])


def plot_training(output_dirs: Mapping[str, str | Path], out: str | Path | None = None):
    """Reward, IoU, format rate and completion length (training log); held-out gIoU, how often the
    held-out ``<think>`` names the asked category, the answers' box area, share of distinct answers, box
    IoU with the target and positive points on it (eval curve: :func:`diagnose_answers`) against step, one
    line per run."""
    import matplotlib.pyplot as plt

    panels = [  # (source: training log or eval curve, column, title)
        ("log", "reward", "total reward"),
        ("log", "rewards/mask_iou/mean", "train IoU (mean)"),
        ("log", "rewards/json_format/mean", "JSON format rate"),
        ("log", "completions/mean_length", "completion length"),
        ("eval", "gIoU", "held-out gIoU"),
        ("eval", "think names category", "held-out: <think> names the asked category"),
        ("eval", "box area", "held-out: box area, % of the image"),
        ("eval", "distinct answers", "held-out: distinct answers, %"),
        ("eval", "box IoU", "held-out: box IoU with the target's boxes, %"),
        ("eval", "points on target", "held-out: positive points on the target, %"),
    ]
    fig, axes = plt.subplots(2, 5, figsize=(21, 6.4))
    axes = axes.ravel()
    for label, d in output_dirs.items():
        hist = training_history(d)
        try:
            ev = eval_curve(d)
        except FileNotFoundError:
            ev = None
        for ax, (source, key, title) in zip(axes, panels, strict=True):
            if source == "eval":
                if ev is not None and key in ev:
                    ax.plot(ev["step"], 100 * ev[key].astype(float), marker="o", label=label)
            elif key in hist:
                y = hist[key].astype(float)
                ax.plot(hist["step"], y.rolling(max(1, len(y) // 20), min_periods=1).mean(), label=label)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig
