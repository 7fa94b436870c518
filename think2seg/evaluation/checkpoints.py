"""Every checkpoint of a training run, scored: ``think2seg eval --checkpoints RUN_DIR [--every K]``.

>>> df = evaluate_checkpoints("runs/cpu_demo", "runs/cpu_demo/checkpoint-evals", split="val",
...                           question_kind="implicit", limit=40)                        # doctest: +SKIP
>>> plot_checkpoints(df, out="runs/cpu_demo/checkpoint-evals/checkpoints.png")          # doctest: +SKIP

Each ``RUN_DIR/checkpoint-N`` (every one, or those with N a multiple of ``every``) and the final model
saved in ``RUN_DIR`` itself are evaluated by :func:`think2seg.evaluation.engine.evaluate` exactly as
``think2seg eval`` evaluates a prompter (its prompter construction and generation settings, greedy unless a
temperature is given), not with the training-time sampling. The prompter spec of a checkpoint carries the
template, style and input size the run trained with (``think2seg_train_config.json``). Under several
protocols the first generates and the others re-score its completions (``replay:``).

Output (``OUT``): ``step-<N>/<protocol>/`` run directories (resumable: a finished checkpoint is not
evaluated again, an interrupted one resumes per sample) and ``checkpoints.csv``, one row per (step,
protocol): ``step, checkpoint, protocol, gIoU, cIoU, P@0.5, rejection, format rate, mean completion
tokens, n`` (metrics x 100; ``rejection`` = empty-target questions answered ``[]`` / empty-target
questions, NaN without any), rewritten after every checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from think2seg.core.errors import UserError
from think2seg.core.records import read_metrics, read_records
from think2seg.evaluation.engine import RESULT_KEYS, EvalConfig, evaluate
from think2seg.prompters.tiny import check_checkpoint

CSV = "checkpoints.csv"
TRAIN_CONFIG = "think2seg_train_config.json"
COLUMNS = ["step", "checkpoint", "protocol", "gIoU", "cIoU", "P@0.5", "rejection", "format rate",
           "mean completion tokens", "n"]
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


class NotATrainingRun(UserError, FileNotFoundError):
    """``--checkpoints`` names a folder without a training config or without any checkpoint."""


def _has_weights(d: Path) -> bool:
    return any((d / w).is_file() for w in WEIGHTS)


def list_checkpoints(run_dir: str | Path, every: int | None = None) -> list[tuple[int, Path]]:
    """``[(step, folder)]`` sorted by step: ``checkpoint-N`` (N % every == 0 when ``every``) and the final
    model in ``run_dir`` (its step from ``think2seg_done.json`` / ``trainer_state.json``; a checkpoint of
    the same step is the same weights and is left out)."""
    run = Path(run_dir)
    if not (run / TRAIN_CONFIG).is_file():
        raise NotATrainingRun(f"--checkpoints {run}: no {TRAIN_CONFIG} (not a `think2seg train` output dir)")
    out = {}
    for d in run.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", d.name)
        if m and d.is_dir() and _has_weights(d) and (not every or int(m.group(1)) % every == 0):
            out[int(m.group(1))] = d
    if _has_weights(run):
        state = next((json.loads((run / f).read_text()) for f in ("think2seg_done.json", "trainer_state.json")
                      if (run / f).is_file()), {})
        out[int(state.get("global_step", max(out, default=0)))] = run
    if not out:
        raise NotATrainingRun(f"--checkpoints {run}: no checkpoint-N folder with weights and no final model")
    return sorted(out.items())


def checkpoint_spec(run_dir: str | Path, folder: str | Path | None) -> str:
    """The prompter spec of one checkpoint folder of ``run_dir`` (None: the run's starting model): ``tiny:``
    for runs that started from a tiny model, ``hf:`` otherwise, with the run's template, style and input size."""
    t2s = json.loads((Path(run_dir) / TRAIN_CONFIG).read_text())["think2seg"]
    start = str(t2s.get("model", ""))
    kind = "tiny" if start == "tiny" or start.startswith("tiny:") else "hf"
    q = f"?template={t2s['template']}&image_size={t2s['image_size']}&style={t2s['style']}"
    if folder is None:
        return f"{start}{q}" if kind == "tiny" or start.startswith("hf:") else f"hf:{start}{q}"
    return f"{kind}:{Path(folder)}{q}"


def start_folder(run_dir: str | Path) -> Path | str:
    """Where the starting model of ``run_dir`` lives (its tokenizer counts completion tokens)."""
    start = str(json.loads((Path(run_dir) / TRAIN_CONFIG).read_text())["think2seg"].get("model", ""))
    if start == "tiny" or start.startswith("tiny:"):
        return check_checkpoint(start[5:] or None)
    return start.removeprefix("hf:")


def _finished(out: Path, cfg: EvalConfig) -> bool:
    """``out`` already holds this evaluation, complete (metrics written with the same options)."""
    if not (out / "metrics.json").is_file() or not (out / "config.json").is_file():
        return False
    saved = json.loads((out / "config.json").read_text()).get("options", {})
    filled = ("image_size", "resolution", "parse_policy", "prompter_weights")  # set by evaluate() itself
    want = {k: v for k, v in asdict(cfg).items() if k in (*RESULT_KEYS, "limit", "protocol") and k not in filled}
    return all(saved.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in want.items())


def completion_tokens(folder: str | Path, texts: Sequence[str]) -> float:
    """Mean number of tokens of ``texts`` under the tokenizer saved in ``folder`` (NaN without one)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError):
        return float("nan")
    return float(np.mean([len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts])) if texts else 0.0


def checkpoint_row(step: int, folder: Path | str, run: Path, protocol: str, name: str | None = None) -> dict[str, Any]:
    m = read_metrics(run)
    recs = read_records(run)
    empty = m.get("empty_total", 0)
    return {"step": step, "checkpoint": name or Path(folder).name, "protocol": protocol, "gIoU": 100 * m["gIoU"],
            "cIoU": 100 * m["cIoU"], "P@0.5": 100 * m.get("P@0.5", float("nan")),
            "rejection": 100 * m["empty_true"] / empty if empty else float("nan"),
            "format rate": 100 * m.get("format_ok_rate", float("nan")),
            "mean completion tokens": completion_tokens(folder, [r["completion"] for r in recs]), "n": m["n"]}


def evaluate_checkpoints(
    run_dir: str | Path,
    out: str | Path,
    *,
    every: int | None = None,
    protocols: Sequence[str] = ("authors",),
    data: str | None = None,
    start: bool = False,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Evaluate every checkpoint of ``run_dir`` (module doc) into ``out``; returns the ``checkpoints.csv``
    table. ``options`` are :class:`~think2seg.evaluation.engine.EvalConfig` fields (split, limit,
    question_kind, temperature, seed...); ``data`` defaults to the run's training data. ``start`` adds the
    run's starting model as step 0 (checkpoint ``start``)."""
    run = Path(run_dir)
    ckpts: list[tuple[int, Path | None]] = list(list_checkpoints(run, every))
    if start:
        ckpts.insert(0, (0, None))
    t2s = json.loads((run / TRAIN_CONFIG).read_text())["think2seg"]
    data = data or t2s.get("data")
    options.setdefault("style", t2s.get("style", "bbox+2pos"))
    options.setdefault("segmenter", t2s.get("eval_segmenter") or t2s.get("segmenter", "grabcut"))
    out = Path(out)
    rows = []
    for k, (step, folder) in enumerate(ckpts):
        first = None
        name = "start" if folder is None else folder.name
        for protocol in protocols:
            d = out / f"step-{step}" / protocol
            prompter = checkpoint_spec(run, folder) if first is None else f"replay:{first}"
            cfg = EvalConfig(data=data, out=str(d), prompter=prompter, protocol=protocol, **options)
            if not _finished(d, cfg):
                if progress:
                    print(f"[{k + 1}/{len(ckpts)}] step {step} ({name}), protocol {protocol}", flush=True)
                evaluate(cfg, progress=progress)
            first = first or d
            rows.append(checkpoint_row(step, start_folder(run) if folder is None else folder, d, protocol, name))
        df = pd.DataFrame(rows, columns=COLUMNS)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / CSV, index=False, float_format="%.4f")
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_checkpoints(df: pd.DataFrame, out: str | Path | None = None, title: str = ""):
    """gIoU, cIoU, P@0.5 and format rate against the step, mean completion tokens on a second axis; one
    panel per protocol (and per ``run`` when the table has that column, e.g. several rewards)."""
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(df["run"])) if "run" in df else [None]
    panels = [(r, p) for r in runs for p in dict.fromkeys(df["protocol"] if r is None else df[df["run"] == r]["protocol"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False)
    for ax, (run, protocol) in zip(axes[0], panels, strict=True):
        d = df[(df["protocol"] == protocol) & ((df["run"] == run) if run is not None else True)].sort_values("step")
        for col, style in (("gIoU", "o-"), ("cIoU", "s-"), ("P@0.5", "^-"), ("format rate", "x--")):
            ax.plot(d["step"], d[col], style, label=col, ms=4)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("% (think2seg eval)")
        name = " ".join(str(x) for x in (title, run, protocol) if x)
        ax.set_title(f"{name}, n = {int(d['n'].iloc[0])}", fontsize=9)
        twin = ax.twinx()
        twin.plot(d["step"], d["mean completion tokens"], ":", color="gray", label="completion tokens")
        twin.set_ylabel("mean completion tokens", color="gray")
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="best")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig
