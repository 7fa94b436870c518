"""The ``sam2-train`` training report: loss / IoU curve figure and ``training_report.json``.

    >>> write_training_report(result, bars, recipe, "runs/sam2-mini-t")   # doctest: +SKIP
    >>> plot_curve(result["curve"], "runs/sam2-mini-t/training_curve.png")  # doctest: +SKIP

``result`` is :func:`think2seg.segmenters.sam2_train.train_sam2`'s dict, ``bars`` the
:func:`think2seg.evaluation.executor_bars.executor_bars` figures (or None).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.provenance import provenance

REPORT = "training_report.json"
CURVE = "training_curve.png"


def _smooth(values: list[float], k: int = 20) -> np.ndarray:
    v = np.asarray(values, float)
    if len(v) < k:
        return v
    return np.convolve(v, np.ones(k) / k, mode="valid")


def plot_curve(curve: dict[str, list[dict]], out: str | Path) -> Path:
    """Loss (left) and IoU (right: train token-0 / best-of-3 IoU, moving average of 20 steps; validation
    gIoU with oracle box + 2 points) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = curve.get("train", [])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        steps = np.array([r["step"] for r in train])
        for key, ax, label in (("loss", a, "loss"), ("iou0", b, "train IoU (token 0)"),
                               ("iou_best", b, "train IoU (best of 3)")):
            y = _smooth([r[key] for r in train])
            ax.plot(steps[len(steps) - len(y):], y, label=label)
    val = curve.get("val", [])
    if val:
        b.plot([r["step"] for r in val], [r["gIoU"] for r in val], "o-", label="val gIoU (oracle box+2pos)")
        if any("reflected_gIoU" in r for r in val):
            b.plot([r["step"] for r in val if "reflected_gIoU" in r], [r["reflected_gIoU"] for r in val
                   if "reflected_gIoU" in r], "x--", label="the same prompts reflected (control)")
    a.set_xlabel("step")
    a.set_ylabel("loss (focal + dice + IoU MSE, recipe weights)")
    b.set_xlabel("step")
    b.set_ylabel("IoU")
    b.set_ylim(0, 1)
    b.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_training_report(result: dict[str, Any], bars: dict[str, Any] | None, recipe: dict[str, Any],
                          out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """``out/training_report.json`` (recipe, git sha and versions, curve, timings, export, bars) and
    ``out/training_curve.png``."""
    out = Path(out)
    plot_curve(result["curve"], out / CURVE)
    report = {"recipe": recipe, **provenance(), "result": result, "bars": bars, "curve_png": CURVE,
              **(extra or {})}
    path = out / REPORT
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return path
